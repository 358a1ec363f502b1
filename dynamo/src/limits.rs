//! Every DynamoDB limit the API enforces, as named constants, each with the
//! page of the AWS documentation that states it.
//!
//! Sizes follow DynamoDB's binary units (1 KB = 1,024 bytes, 1 MB = 1,024
//! KB), as the Developer Guide's "Constraints in Amazon DynamoDB" page says.
//! The limits of numbers (38 digits, 1E-130 to 9.9..9E+125) live with the
//! number type in [`crate::number`].
//!
//! Pages cited:
//! - Constraints: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html>
//! - Quotas: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>
//! - Item sizes: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>
//! - API reference: <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/> (the page of each operation
//!   or data type named)

const KIB: usize = 1_024;
const MIB: usize = 1_024 * KIB;

// ---------------------------------------------------------------- items

/// Largest item, its attribute names and values together (Constraints,
/// "Items": "The maximum item size in DynamoDB is 400 KB").
pub const ITEM_BYTES_MAX: usize = 400 * KIB;

/// Levels of nesting of lists and maps, the top-level attribute's value
/// being level 1 (Constraints, "Attributes": "DynamoDB supports nested
/// attributes up to 32 levels deep").
pub const NESTING_DEPTH_MAX: usize = 32;

/// Longest attribute name, in UTF-8 bytes (API reference, `AttributeValue`
/// `M` and `PutItem` `Item`: "Key Length Constraints: Maximum length of
/// 65535"; Constraints, "Naming rules": "less than 64 KB").
pub const ATTRIBUTE_NAME_BYTES_MAX: usize = 65_535;

/// Shortest attribute name (Constraints, "Naming rules": "at least one
/// character long").
pub const ATTRIBUTE_NAME_BYTES_MIN: usize = 1;

// ---------------------------------------------------------------- keys

/// Largest partition key value, in bytes (Constraints, "Partition key
/// length": "The maximum length is 2048 bytes").
pub const PARTITION_KEY_BYTES_MAX: usize = 2_048;

/// Largest sort key value, in bytes (Constraints, "Sort key length": "The
/// maximum length is 1024 bytes").
pub const SORT_KEY_BYTES_MAX: usize = 1_024;

/// Smallest key value, in bytes (Constraints, "Partition key length" and
/// "Sort key length": "The minimum length ... is 1 byte").
pub const KEY_VALUE_BYTES_MIN: usize = 1;

/// Longest name of a key attribute: in a `KeySchemaElement` and an
/// `AttributeDefinition` (API reference, `KeySchemaElement`: "Length
/// Constraints: Minimum length of 1. Maximum length of 255"; Constraints,
/// "Naming rules": secondary index key names at most 255 characters).
pub const KEY_ATTRIBUTE_NAME_BYTES_MAX: usize = 255;

/// Elements of a key schema: a partition key and an optional sort key (API
/// reference, `CreateTable` `KeySchema`: "Array Members: Minimum number of
/// 1 item. Maximum number of 2 items").
pub const KEY_SCHEMA_ELEMENTS_MAX: usize = 2;

// ---------------------------------------------------------------- names

/// Shortest table or index name (Constraints, "Naming rules": "at least 3
/// characters long").
pub const TABLE_NAME_LEN_MIN: usize = 3;

/// Longest table or index name (Constraints, "Naming rules": "no greater
/// than 255 characters long").
pub const TABLE_NAME_LEN_MAX: usize = 255;

/// Longest `TableName` parameter when it carries the table's ARN instead of
/// its name (API reference, e.g. `GetItem` `TableName`: "Maximum length of
/// 1024").
pub const TABLE_NAME_OR_ARN_LEN_MAX: usize = 1_024;

/// Whether `byte` may appear in a table or index name: `[a-zA-Z0-9_.-]`
/// (Constraints, "Naming rules"; API reference pattern `[a-zA-Z0-9_.-]+`).
pub const fn is_table_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || byte == b'.'
}

// ---------------------------------------------------------------- expressions

/// Longest expression string of any kind, in bytes (Constraints,
/// "Expression parameters": "The maximum length of any expression string
/// is 4 KB").
pub const EXPRESSION_BYTES_MAX: usize = 4 * KIB;

/// Longest single expression attribute name or value placeholder, e.g.
/// `#name` or `:val` (Constraints, "Expression parameters": "The maximum
/// length of any single expression attribute name or expression attribute
/// value is 255 bytes").
pub const EXPRESSION_PLACEHOLDER_BYTES_MAX: usize = 255;

/// Largest sum of all `ExpressionAttributeNames` and
/// `ExpressionAttributeValues` of a request (Constraints, "Expression
/// parameters": "The maximum length of all substitution variables in an
/// expression is 2 MB").
pub const EXPRESSION_SUBSTITUTIONS_BYTES_MAX: usize = 2 * MIB;

/// Operators and functions in one `UpdateExpression` (Constraints,
/// "Expression parameters": "The maximum number of operators or functions
/// allowed in an UpdateExpression is 300").
pub const UPDATE_EXPRESSION_OPERATORS_MAX: usize = 300;

/// Operands of one `IN` comparator (Constraints, "Expression parameters":
/// "The maximum number of operands for the IN comparator is 100").
pub const IN_OPERANDS_MAX: usize = 100;

// ---------------------------------------------------------------- operations

/// Keys one `BatchGetItem` may ask for, over all its tables (API reference,
/// `BatchGetItem`: "A single operation can retrieve up to 16 MB of data,
/// which can contain as many as 100 items").
pub const BATCH_GET_KEYS_MAX: usize = 100;

/// Data one `BatchGetItem` answers at most; past it the rest comes back as
/// `UnprocessedKeys` (API reference, `BatchGetItem`: "up to 16 MB").
pub const BATCH_GET_RESPONSE_BYTES_MAX: usize = 16 * MIB;

/// Put and delete requests in one `BatchWriteItem`, over all its tables
/// (API reference, `BatchWriteItem`: "as many as 25 put or delete
/// requests").
pub const BATCH_WRITE_REQUESTS_MAX: usize = 25;

/// Data one `BatchWriteItem` may write (API reference, `BatchWriteItem`:
/// "up to 16 MB of data").
pub const BATCH_WRITE_REQUEST_BYTES_MAX: usize = 16 * MIB;

/// Items of one `TransactWriteItems` or `TransactGetItems` (Constraints,
/// "DynamoDB transactions": "A transaction cannot contain more than 100
/// unique items").
pub const TRANSACT_ITEMS_MAX: usize = 100;

/// Data of one transaction (Constraints, "DynamoDB transactions": "A
/// transaction cannot contain more than 4 MB of data").
pub const TRANSACT_REQUEST_BYTES_MAX: usize = 4 * MIB;

/// Data one `Query` or `Scan` page reads before it stops and returns
/// `LastEvaluatedKey` (API reference, `Query` and `Scan`: "A single Query
/// operation will read up to the maximum number of items set (if using the
/// Limit parameter) or a maximum of 1 MB of data").
pub const PAGE_BYTES_MAX: usize = MIB;

/// Smallest `Limit` of `Query` and `Scan` (API reference: "Minimum value of
/// 1").
pub const PAGE_LIMIT_MIN: usize = 1;

/// Smallest `TotalSegments` of a parallel `Scan` (API reference, `Scan`:
/// "Minimum value of 1").
pub const TOTAL_SEGMENTS_MIN: u32 = 1;

/// Largest `TotalSegments` of a parallel `Scan` (API reference, `Scan`:
/// "Maximum value of 1000000"); `Segment` lies in `0..TotalSegments`.
pub const TOTAL_SEGMENTS_MAX: u32 = 1_000_000;

/// Largest `Limit` of `ListTables` (API reference, `ListTables`: "Minimum
/// value of 1. Maximum value of 100").
pub const LIST_TABLES_LIMIT_MAX: usize = 100;

/// Longest `ClientRequestToken` of `TransactWriteItems` (API reference:
/// "Minimum length of 1. Maximum length of 36").
pub const CLIENT_REQUEST_TOKEN_LEN_MAX: usize = 36;

// ---------------------------------------------------------------- account and tables

/// Tables an account may have in a Region, the default quota (Quotas,
/// "Tables": an initial quota of 2,500 tables per Region).
pub const TABLES_PER_ACCOUNT_DEFAULT: usize = 2_500;

/// Global secondary indexes per table, the default quota (Quotas,
/// "Secondary indexes": 20 global secondary indexes per table).
pub const GLOBAL_INDEXES_PER_TABLE_DEFAULT: usize = 20;

/// Local secondary indexes per table (Quotas, "Secondary indexes": 5 local
/// secondary indexes per table).
pub const LOCAL_INDEXES_PER_TABLE_MAX: usize = 5;

/// Attributes projected into all of a table's indexes, summed over them
/// (Quotas, "Projected secondary index attributes per table": up to 100).
pub const PROJECTED_ATTRIBUTES_MAX: usize = 100;

/// Size of an item collection (the items of one partition key value) in a
/// table with local secondary indexes (Constraints, "Item collections":
/// 10 GB).
pub const ITEM_COLLECTION_BYTES_MAX: u64 = 10 * 1_024 * 1_024 * 1_024;

/// Tags on one resource (Quotas, "Tags": 50 per resource).
pub const TAGS_PER_RESOURCE_MAX: usize = 50;

/// Smallest provisioned read or write capacity of a table or index (Quotas,
/// "Throughput default quotas": minimum 1 read and 1 write capacity unit).
pub const PROVISIONED_CAPACITY_UNITS_MIN: u64 = 1;

/// Largest provisioned read or write capacity of one table, the default
/// quota `DescribeLimits` reports (Quotas, "Throughput default quotas":
/// 40,000 per table).
pub const TABLE_CAPACITY_UNITS_DEFAULT_MAX: u64 = 40_000;

/// Largest provisioned read or write capacity of all tables of an account
/// together, the default quota `DescribeLimits` reports (Quotas,
/// "Throughput default quotas": 80,000 per account).
pub const ACCOUNT_CAPACITY_UNITS_DEFAULT_MAX: u64 = 80_000;

// ---------------------------------------------------------------- PartiQL

/// Longest PartiQL statement (API reference, `ExecuteStatement`
/// `Statement`: "Maximum length of 8192").
pub const PARTIQL_STATEMENT_LEN_MAX: usize = 8_192;

/// Statements of one `BatchExecuteStatement` (API reference: "Maximum
/// number of 25 items").
pub const PARTIQL_BATCH_STATEMENTS_MAX: usize = 25;

const _: () = assert!(SORT_KEY_BYTES_MAX < PARTITION_KEY_BYTES_MAX);
const _: () = assert!(PARTITION_KEY_BYTES_MAX < ITEM_BYTES_MAX);
const _: () = assert!(ITEM_BYTES_MAX < PAGE_BYTES_MAX);
const _: () = assert!(TABLE_NAME_LEN_MAX < TABLE_NAME_OR_ARN_LEN_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_name_bytes_are_the_documented_set() {
        let allowed: Vec<u8> = (0..=u8::MAX).filter(|&b| is_table_name_byte(b)).collect();
        let mut expected: Vec<u8> = (b'a'..=b'z').chain(b'A'..=b'Z').chain(b'0'..=b'9').collect();
        expected.extend_from_slice(b"_-.");
        expected.sort_unstable();
        assert_eq!(allowed, expected);
    }

    #[test]
    fn sizes_are_in_binary_units() {
        assert_eq!(ITEM_BYTES_MAX, 409_600);
        assert_eq!(PAGE_BYTES_MAX, 1_048_576);
        assert_eq!(BATCH_GET_RESPONSE_BYTES_MAX, 16_777_216);
        assert_eq!(EXPRESSION_BYTES_MAX, 4_096);
        assert_eq!(ITEM_COLLECTION_BYTES_MAX, 10_737_418_240);
    }
}
