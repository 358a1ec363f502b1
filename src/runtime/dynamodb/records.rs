//! Items and tables as records of the node's store (the layout is
//! [`crate::storage::item_key`]'s): an item's key from its table's id and
//! its key attributes, its value from its order and its binary form; a
//! table's from its name and description.

use crate::storage::hash::BucketId;
use crate::storage::item_key::{self, CATALOG_TABLE, ITEM_KEY_BYTES};
use dynakv_dynamo::codec;
use dynakv_dynamo::key::Key;
use dynakv_dynamo::ops::{TableDescription, partition_hash, scan_order_bytes};
use dynakv_dynamo::value::Item;

/// Items whose record would pass it are kept in parts (see
/// [`super::chunked`]).
pub use crate::storage::item_key::ITEM_RECORD_BYTES_MAX;

/// A table's id in record keys: its `TableId`, 16 hex digits, never 0.
pub fn table_number(table: &TableDescription) -> u64 {
    u64::from_str_radix(&table.table_id, 16).unwrap_or(u64::MAX).max(1)
}

/// A new table's `TableId`: 16 hex digits of a random, non-zero number.
pub fn new_table_id(seed: &str) -> String {
    let digest = blake3::hash(format!("{seed} {:?}", std::time::SystemTime::now()).as_bytes());
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest.as_bytes()[..8]);
    format!("{:016x}", u64::from_le_bytes(word).max(1))
}

/// The record key of an item of `table`.
pub fn item_record_key(table: u64, key: &Key) -> [u8; ITEM_KEY_BYTES] {
    let order = scan_order_bytes(key);
    item_key::item_key(table, partition_hash(&key.partition), blake3::hash(&order).as_bytes())
}

/// The bucket a partition's items are in.
pub fn partition_bucket(table: u64, key: &Key) -> BucketId {
    item_key::bucket_of_partition(table, partition_hash(&key.partition))
}

/// The item of a record value; `None` if it is not one.
pub fn item_of_record(value: &[u8]) -> Option<Item> {
    let (_, payload) = item_key::split_record_value(value)?;
    codec::decode(payload).ok()
}

/// The record key of the table named `name` in the catalog.
pub fn table_record_key(name: &str) -> [u8; ITEM_KEY_BYTES] {
    item_key::item_key(CATALOG_TABLE, 0, blake3::hash(name.as_bytes()).as_bytes())
}

/// A table's record value: ordered by name (ListTables reads them so);
/// the payload is when its deletion began (Unix ms, 0 for never), then
/// its description.
pub fn table_record(table: &TableDescription, deleting_since_unix_ms: u64) -> Option<Vec<u8>> {
    let mut payload = deleting_since_unix_ms.to_le_bytes().to_vec();
    payload.extend_from_slice(&table.encode());
    item_key::record_value(table.name.as_bytes(), &payload)
}

fn table_payload(value: &[u8]) -> Option<(u64, &[u8])> {
    let (_, payload) = item_key::split_record_value(value)?;
    let (since, description) = payload.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*since), description))
}

/// The table of a record value; `None` if it is not one.
pub fn table_of_record(value: &[u8]) -> Option<TableDescription> {
    TableDescription::decode(table_payload(value)?.1).ok()
}

/// When the deletion of a table's record began (Unix ms), if it did.
pub fn deleting_since(value: &[u8]) -> Option<u64> {
    table_payload(value).map(|(since, _)| since).filter(|since| *since > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynakv_dynamo::number::Number;
    use dynakv_dynamo::value::Value;

    fn key(partition: &str, sort: i64) -> Key {
        Key {
            partition: Value::S(partition.to_owned()),
            sort: Number::parse(&sort.to_string()).ok().map(Value::N),
        }
    }

    #[test]
    fn a_partitions_items_share_a_bucket_and_a_key_prefix() {
        let (a, b) = (item_record_key(5, &key("p", 1)), item_record_key(5, &key("p", 2)));
        assert_ne!(a, b);
        assert_eq!(
            a[..item_key::PARTITION_PREFIX_BYTES],
            b[..item_key::PARTITION_PREFIX_BYTES]
        );
        assert_eq!(
            crate::storage::hash::named_bucket(&a),
            Some(partition_bucket(5, &key("p", 1)))
        );
        assert_ne!(item_record_key(6, &key("p", 1)), a, "tables never share keys");
    }

    #[test]
    fn a_table_record_round_trips_with_its_deletion_time() {
        let create = dynakv_dynamo::ops::parse(
            "CreateTable",
            br#"{"TableName":"tab","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}"#,
            &NoTables,
        );
        let Ok(dynakv_dynamo::ops::Request::CreateTable(create)) = create else {
            panic!("a valid CreateTable parses");
        };
        let table = create.description("00000000000000ab", 5);
        let record = table_record(&table, 0).unwrap();
        assert_eq!(table_of_record(&record), Some(table.clone()));
        assert_eq!(deleting_since(&record), None);
        let deleting = table_record(&table, 77).unwrap();
        assert_eq!(
            (table_of_record(&deleting), deleting_since(&deleting)),
            (Some(table.clone()), Some(77))
        );
        assert_eq!(table_number(&table), 0xab);
    }

    struct NoTables;

    impl dynakv_dynamo::ops::Catalog for NoTables {
        fn table(&self, _: &str) -> Option<TableDescription> {
            None
        }
    }

    #[test]
    fn table_ids_are_hex_and_never_zero() {
        let id = new_table_id("seed");
        assert_eq!(id.len(), 16);
        assert!(u64::from_str_radix(&id, 16).unwrap() > 0);
    }
}
