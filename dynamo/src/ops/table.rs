//! Tables: what the catalog holds of one ([`TableDescription`]), the
//! validation of `CreateTable`, `UpdateTable`, `DescribeTable`,
//! `DeleteTable` and `ListTables` requests, their responses, and the
//! description's versioned binary form for the node's catalog records.
//!
//! Tables have a primary key and no secondary indexes, streams or
//! replicas; a request for those is refused with a `ValidationException`
//! that names the parameter.

use super::fields::{Body, Violations, serialization, table_name};
use crate::error::{ApiError, ErrorKind};
use crate::key::{KeyAttr, KeySchema, ScalarKind};
use crate::limits::{
    KEY_ATTRIBUTE_NAME_BYTES_MAX, KEY_SCHEMA_ELEMENTS_MAX, LIST_TABLES_LIMIT_MAX, PROVISIONED_CAPACITY_UNITS_MIN,
};
use serde_json::{Value as Json, json};

/// The ARN prefix of a table, as DynamoDB Local writes it.
const TABLE_ARN_PREFIX: &str = "arn:aws:dynamodb:ddblocal:000000000000:table/";
/// `AttributeDefinitions` one `CreateTable` may hold: without indexes only
/// the key's attributes may be defined, so more are always an error; the
/// bound keeps the walk over a hostile list short.
const ATTRIBUTE_DEFINITIONS_MAX: usize = 64;
/// Version of [`TableDescription::encode`]'s format.
pub const DESCRIPTION_FORMAT_VERSION: u8 = 1;
/// Longest string the binary form holds (table ids, names).
const ENCODED_STRING_BYTES_MAX: usize = 1_024;
/// `CreateTable` and `UpdateTable` parameters this store does not offer.
const UNSUPPORTED_CREATE_PARAMETERS: [&str; 6] = [
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
    "SSESpecification",
    "OnDemandThroughput",
    "ResourcePolicy",
];
const UNSUPPORTED_UPDATE_PARAMETERS: [&str; 8] = [
    "AttributeDefinitions",
    "GlobalSecondaryIndexUpdates",
    "StreamSpecification",
    "SSESpecification",
    "ReplicaUpdates",
    "TableClass",
    "OnDemandThroughput",
    "GlobalTableWitnessUpdates",
];

/// A table's life stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl TableStatus {
    pub fn name(self) -> &'static str {
        match self {
            TableStatus::Creating => "CREATING",
            TableStatus::Active => "ACTIVE",
            TableStatus::Updating => "UPDATING",
            TableStatus::Deleting => "DELETING",
        }
    }

    /// Whether items may be read and written.
    pub fn serves_items(self) -> bool {
        matches!(self, TableStatus::Active | TableStatus::Updating)
    }

    fn code(self) -> u8 {
        match self {
            TableStatus::Creating => 0,
            TableStatus::Active => 1,
            TableStatus::Updating => 2,
            TableStatus::Deleting => 3,
        }
    }

    fn from_code(code: u8) -> Option<TableStatus> {
        [
            TableStatus::Creating,
            TableStatus::Active,
            TableStatus::Updating,
            TableStatus::Deleting,
        ]
        .into_iter()
        .find(|status| status.code() == code)
    }
}

/// How the table's capacity is billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Billing {
    PayPerRequest,
    Provisioned { read_units: u64, write_units: u64 },
}

/// What the catalog holds of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDescription {
    pub name: String,
    pub key_schema: KeySchema,
    pub status: TableStatus,
    /// When the node created it, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// The node's latest count, as `DescribeTable` reports it.
    pub item_count: u64,
    pub size_bytes: u64,
    /// A unique id the node gave the table (DynamoDB writes a UUID).
    pub table_id: String,
    pub billing: Billing,
}

/// A validated `CreateTable`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTable {
    pub name: String,
    pub key_schema: KeySchema,
    pub billing: Billing,
}

/// A validated `UpdateTable`: what changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateTable {
    pub name: String,
    pub billing_mode: Option<String>,
    pub throughput: Option<(u64, u64)>,
}

/// A validated `ListTables`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListTables {
    pub exclusive_start: Option<String>,
    pub limit: usize,
}

impl TableDescription {
    pub fn arn(&self) -> String {
        format!("{TABLE_ARN_PREFIX}{}", self.name)
    }

    /// The `TableDescription` (or `Table`) object of the responses.
    pub fn to_json(&self) -> Json {
        let definitions: Vec<Json> = self
            .key_schema
            .attributes()
            .map(|attr| json!({"AttributeName": attr.name, "AttributeType": attr.kind.descriptor()}))
            .collect();
        let mut keys = vec![json!({"AttributeName": self.key_schema.partition.name, "KeyType": "HASH"})];
        if let Some(sort) = &self.key_schema.sort {
            keys.push(json!({"AttributeName": sort.name, "KeyType": "RANGE"}));
        }
        let (read_units, write_units) = match self.billing {
            Billing::PayPerRequest => (0, 0),
            Billing::Provisioned {
                read_units,
                write_units,
            } => (read_units, write_units),
        };
        let created_seconds = self.created_unix_ms as f64 / 1_000.0;
        let mut description = json!({
            "AttributeDefinitions": definitions,
            "TableName": self.name,
            "KeySchema": keys,
            "TableStatus": self.status.name(),
            "CreationDateTime": created_seconds,
            "ProvisionedThroughput": {
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": read_units,
                "WriteCapacityUnits": write_units,
            },
            "TableSizeBytes": self.size_bytes,
            "ItemCount": self.item_count,
            "TableArn": self.arn(),
            "TableId": self.table_id,
            "DeletionProtectionEnabled": false,
        });
        if self.billing == Billing::PayPerRequest
            && let Some(object) = description.as_object_mut()
        {
            object.insert(
                "BillingModeSummary".to_owned(),
                json!({"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": created_seconds}),
            );
        }
        description
    }
}

impl CreateTable {
    /// The description to store: `CREATING`, with the id and time the node gives.
    pub fn description(&self, table_id: impl Into<String>, created_unix_ms: u64) -> TableDescription {
        TableDescription {
            name: self.name.clone(),
            key_schema: self.key_schema.clone(),
            status: TableStatus::Creating,
            created_unix_ms,
            item_count: 0,
            size_bytes: 0,
            table_id: table_id.into(),
            billing: self.billing,
        }
    }
}

/// `CreateTable`'s, `UpdateTable`'s and `DeleteTable`'s response.
pub fn table_description_response(description: &TableDescription) -> Json {
    json!({ "TableDescription": description.to_json() })
}

/// `DescribeTable`'s response.
pub fn describe_table_response(description: &TableDescription) -> Json {
    json!({ "Table": description.to_json() })
}

/// `ListTables`' response from every table name (any order).
pub fn list_tables_response(request: &ListTables, mut names: Vec<String>) -> Json {
    names.sort_unstable();
    let after: Vec<String> = names
        .into_iter()
        .filter(|name| request.exclusive_start.as_ref().is_none_or(|start| name > start))
        .collect();
    let more = after.len() > request.limit;
    let page: Vec<String> = after.into_iter().take(request.limit).collect();
    let mut response = json!({ "TableNames": page });
    if more && let (Some(last), Some(object)) = (page.last(), response.as_object_mut()) {
        object.insert("LastEvaluatedTableName".to_owned(), Json::String(last.clone()));
    }
    response
}

/// The description of a table that exists, or DynamoDB's answer.
pub(crate) fn not_found(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("Requested resource not found: Table: {name} not found"),
    )
}

// ---------------------------------------------------------------- parsing

pub(crate) fn parse_create_table(body: &Body, exists: bool) -> Result<CreateTable, ApiError> {
    let mut violations = Violations::default();
    let name = table_name(body, &mut violations, false)?;
    let key_elements = read_key_schema(body, &mut violations)?;
    let definitions = read_definitions(body, &mut violations)?;
    let billing_mode = body.string("BillingMode")?;
    violations.one_of(billing_mode, "billingMode", &["PROVISIONED", "PAY_PER_REQUEST"]);
    let throughput = read_throughput(body, &mut violations)?;
    violations.finish()?;
    if let Some(parameter) = UNSUPPORTED_CREATE_PARAMETERS.iter().find(|name| body.has(name)) {
        return Err(ApiError::validation(format!(
            "CreateTable parameter {parameter} is not supported"
        )));
    }
    let billing = billing_of(billing_mode, throughput)?;
    let key_schema = key_schema_of(&key_elements, &definitions)?;
    if exists {
        return Err(ApiError::new(
            ErrorKind::ResourceInUse,
            format!("Table already exists: {name}"),
        ));
    }
    Ok(CreateTable {
        name,
        key_schema,
        billing,
    })
}

/// `KeySchema` as (name, key type) pairs, its constraints checked.
fn read_key_schema(body: &Body, violations: &mut Violations) -> Result<Vec<(String, String)>, ApiError> {
    let Some(elements) = body.list("KeySchema")? else {
        violations.null("keySchema");
        return Ok(Vec::new());
    };
    if elements.is_empty() || elements.len() > KEY_SCHEMA_ELEMENTS_MAX {
        let constraint = if elements.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 2"
        };
        violations.add(Some("[...]"), "keySchema", constraint);
        return Ok(Vec::new());
    }
    let mut pairs = Vec::with_capacity(elements.len());
    for (at, element) in elements.iter().enumerate() {
        let member = element_body(element)?;
        let field = format!("keySchema.{}.member", at + 1);
        let name = member.string("AttributeName")?;
        check_attribute_name(name, &format!("{field}.attributeName"), violations);
        let key_type = member.string("KeyType")?;
        if key_type.is_none() {
            violations.null(&format!("{field}.keyType"));
        }
        violations.one_of(key_type, &format!("{field}.keyType"), &["HASH", "RANGE"]);
        pairs.push((
            name.unwrap_or_default().to_owned(),
            key_type.unwrap_or_default().to_owned(),
        ));
    }
    Ok(pairs)
}

fn element_body(element: &Json) -> Result<Body, ApiError> {
    match element {
        Json::Object(members) => Ok(Body::object(members)),
        _ => Err(serialization("Unexpected value type in payload")),
    }
}

fn check_attribute_name(name: Option<&str>, field: &str, violations: &mut Violations) {
    match name {
        None => violations.null(field),
        Some("") => violations.add(Some(""), field, "Member must have length greater than or equal to 1"),
        Some(text) if text.len() > KEY_ATTRIBUTE_NAME_BYTES_MAX => violations.add(
            Some(text),
            field,
            &format!("Member must have length less than or equal to {KEY_ATTRIBUTE_NAME_BYTES_MAX}"),
        ),
        Some(_) => {}
    }
}

/// `AttributeDefinitions` as (name, type) pairs, their constraints checked.
fn read_definitions(body: &Body, violations: &mut Violations) -> Result<Vec<(String, ScalarKind)>, ApiError> {
    let Some(elements) = body.list("AttributeDefinitions")? else {
        violations.null("attributeDefinitions");
        return Ok(Vec::new());
    };
    if elements.len() > ATTRIBUTE_DEFINITIONS_MAX {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match \
             number of attributes defined in AttributeDefinitions",
        ));
    }
    let mut pairs = Vec::with_capacity(elements.len());
    for (at, element) in elements.iter().enumerate() {
        let member = element_body(element)?;
        let field = format!("attributeDefinitions.{}.member", at + 1);
        let name = member.string("AttributeName")?;
        check_attribute_name(name, &format!("{field}.attributeName"), violations);
        let kind_text = member.string("AttributeType")?;
        if kind_text.is_none() {
            violations.null(&format!("{field}.attributeType"));
        }
        violations.one_of(kind_text, &format!("{field}.attributeType"), &["B", "N", "S"]);
        if let Some(kind) = kind_text.and_then(ScalarKind::from_descriptor) {
            pairs.push((name.unwrap_or_default().to_owned(), kind));
        }
    }
    Ok(pairs)
}

/// `ProvisionedThroughput`, its constraints checked.
fn read_throughput(body: &Body, violations: &mut Violations) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(members) = body.members("ProvisionedThroughput")? else {
        return Ok(None);
    };
    let member = Body::object(members);
    let read = member.integer("ReadCapacityUnits")?;
    let write = member.integer("WriteCapacityUnits")?;
    let min = i64::try_from(PROVISIONED_CAPACITY_UNITS_MIN).unwrap_or(1);
    for (value, field) in [(read, "readCapacityUnits"), (write, "writeCapacityUnits")] {
        let field = format!("provisionedThroughput.{field}");
        if value.is_none() {
            violations.null(&field);
        }
        violations.range(value, &field, min, None);
    }
    let units = |value: Option<i64>| value.and_then(|units| u64::try_from(units).ok()).unwrap_or(0);
    Ok(Some((units(read), units(write))))
}

fn billing_of(mode: Option<&str>, throughput: Option<(u64, u64)>) -> Result<Billing, ApiError> {
    match (mode, throughput) {
        (Some("PAY_PER_REQUEST"), Some(_)) => Err(ApiError::validation(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be \
             specified when BillingMode is PAY_PER_REQUEST",
        )),
        (Some("PAY_PER_REQUEST"), None) => Ok(Billing::PayPerRequest),
        (_, None) => Err(ApiError::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be \
             specified when BillingMode is PROVISIONED",
        )),
        (_, Some((read_units, write_units))) => Ok(Billing::Provisioned {
            read_units,
            write_units,
        }),
    }
}

/// The key schema from its elements and the attribute definitions, with
/// DynamoDB's checks in its order.
fn key_schema_of(elements: &[(String, String)], definitions: &[(String, ScalarKind)]) -> Result<KeySchema, ApiError> {
    for (at, (name, _)) in definitions.iter().enumerate() {
        if definitions
            .get(..at)
            .unwrap_or_default()
            .iter()
            .any(|(other, _)| other == name)
        {
            return Err(ApiError::validation("Cannot have two attributes with the same name"));
        }
    }
    let (partition_name, sort_name) = match elements {
        [(hash, hash_type)] if hash_type == "HASH" => (hash, None),
        [(hash, hash_type), (range, range_type)] if hash_type == "HASH" => {
            if range_type != "RANGE" {
                return Err(invalid_key_schema(
                    "The second KeySchemaElement is not a RANGE key type",
                ));
            }
            if hash == range {
                return Err(invalid_key_schema(
                    "Both the Hash Key and the Range Key element in the KeySchema have the same name",
                ));
            }
            (hash, Some(range))
        }
        _ => return Err(invalid_key_schema("The first KeySchemaElement is not a HASH key type")),
    };
    let defined = |name: &String| {
        definitions
            .iter()
            .find(|(defined, _)| defined == name)
            .map(|(_, kind)| *kind)
    };
    let key_names: Vec<&String> = std::iter::once(partition_name).chain(sort_name).collect();
    if key_names.iter().any(|name| defined(name).is_none()) {
        let keys: Vec<&str> = key_names.iter().map(|name| name.as_str()).collect();
        let defined_names: Vec<&str> = definitions.iter().map(|(name, _)| name.as_str()).collect();
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Some index key attributes are not defined in \
             AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            keys.join(", "),
            defined_names.join(", ")
        )));
    }
    if definitions.len() != key_names.len() {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match \
             number of attributes defined in AttributeDefinitions",
        ));
    }
    let attr = |name: &String| KeyAttr {
        name: name.clone(),
        kind: defined(name).unwrap_or(ScalarKind::S),
    };
    Ok(KeySchema {
        partition: attr(partition_name),
        sort: sort_name.map(attr),
    })
}

fn invalid_key_schema(detail: &str) -> ApiError {
    ApiError::validation(format!("Invalid KeySchema: {detail}"))
}

/// The checked `TableName` (or ARN) of `DescribeTable` and `DeleteTable`.
pub(crate) fn parse_table_name(body: &Body) -> Result<String, ApiError> {
    let mut violations = Violations::default();
    let name = table_name(body, &mut violations, true)?;
    violations.finish()?;
    Ok(name)
}

pub(crate) fn parse_list_tables(body: &Body) -> Result<ListTables, ApiError> {
    let mut violations = Violations::default();
    let start = body.string("ExclusiveStartTableName")?;
    if start.is_some() {
        violations.table_name(start, "exclusiveStartTableName", false);
    }
    let limit = body.integer("Limit")?;
    let limit_max = i64::try_from(LIST_TABLES_LIMIT_MAX).unwrap_or(i64::MAX);
    violations.range(limit, "limit", 1, Some(limit_max));
    violations.finish()?;
    Ok(ListTables {
        exclusive_start: start.map(str::to_owned),
        limit: limit
            .and_then(|limit| usize::try_from(limit).ok())
            .unwrap_or(LIST_TABLES_LIMIT_MAX),
    })
}

pub(crate) fn parse_update_table(body: &Body) -> Result<UpdateTable, ApiError> {
    let mut violations = Violations::default();
    let name = table_name(body, &mut violations, true)?;
    let billing_mode = body.string("BillingMode")?;
    violations.one_of(billing_mode, "billingMode", &["PROVISIONED", "PAY_PER_REQUEST"]);
    let throughput = read_throughput(body, &mut violations)?;
    violations.finish()?;
    if let Some(parameter) = UNSUPPORTED_UPDATE_PARAMETERS.iter().find(|name| body.has(name)) {
        return Err(ApiError::validation(format!(
            "UpdateTable parameter {parameter} is not supported"
        )));
    }
    if billing_mode.is_none() && throughput.is_none() {
        return Err(ApiError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates \
             or SSESpecification or ReplicaUpdates is required",
        ));
    }
    Ok(UpdateTable {
        name,
        billing_mode: billing_mode.map(str::to_owned),
        throughput,
    })
}

impl UpdateTable {
    /// The description after the update, `UPDATING` (the node stores it and
    /// marks it `ACTIVE` once the change is in place), or why it cannot be made.
    pub fn apply(&self, current: &TableDescription) -> Result<TableDescription, ApiError> {
        if current.status != TableStatus::Active {
            return Err(ApiError::new(
                ErrorKind::ResourceInUse,
                format!(
                    "Attempt to change a resource which is still in use: Table is being {}: {}",
                    current.status.name().to_lowercase(),
                    current.name
                ),
            ));
        }
        let mode = self.billing_mode.as_deref().unwrap_or(match current.billing {
            Billing::PayPerRequest => "PAY_PER_REQUEST",
            Billing::Provisioned { .. } => "PROVISIONED",
        });
        let billing = billing_of(Some(mode), self.throughput)?;
        if let (
            Billing::Provisioned {
                read_units,
                write_units,
            },
            Billing::Provisioned { .. },
        ) = (current.billing, billing)
            && billing == current.billing
        {
            return Err(ApiError::validation(format!(
                "The provisioned throughput for the table will not change. The requested value equals the current \
                 value. Current ReadCapacityUnits provisioned for the table: {read_units}. Requested \
                 ReadCapacityUnits: {read_units}. Current WriteCapacityUnits provisioned for the table: \
                 {write_units}. Requested WriteCapacityUnits: {write_units}. Refer to the Amazon DynamoDB Developer \
                 Guide for current limits and how to request higher limits."
            )));
        }
        Ok(TableDescription {
            billing,
            status: TableStatus::Updating,
            ..current.clone()
        })
    }
}

// ---------------------------------------------------------------- binary form

/// Why a stored description could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptionDecodeError {
    UnknownVersion,
    Truncated,
    BadString,
    BadCode,
    TrailingBytes,
}

impl TableDescription {
    /// The versioned binary form: version, name, key attributes, status,
    /// creation time, item count, size, table id, billing.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![DESCRIPTION_FORMAT_VERSION];
        put_string(&mut out, &self.name);
        put_attr(&mut out, &self.key_schema.partition);
        match &self.key_schema.sort {
            Some(attr) => {
                out.push(1);
                put_attr(&mut out, attr);
            }
            None => out.push(0),
        }
        out.push(self.status.code());
        out.extend_from_slice(&self.created_unix_ms.to_be_bytes());
        out.extend_from_slice(&self.item_count.to_be_bytes());
        out.extend_from_slice(&self.size_bytes.to_be_bytes());
        put_string(&mut out, &self.table_id);
        match self.billing {
            Billing::PayPerRequest => out.push(0),
            Billing::Provisioned {
                read_units,
                write_units,
            } => {
                out.push(1);
                out.extend_from_slice(&read_units.to_be_bytes());
                out.extend_from_slice(&write_units.to_be_bytes());
            }
        }
        out
    }

    /// Reads [`TableDescription::encode`]'s form; any other bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<TableDescription, DescriptionDecodeError> {
        let mut reader = Reader { bytes };
        if reader.byte()? != DESCRIPTION_FORMAT_VERSION {
            return Err(DescriptionDecodeError::UnknownVersion);
        }
        let name = reader.string()?;
        let partition = reader.attr()?;
        let sort = match reader.byte()? {
            0 => None,
            1 => Some(reader.attr()?),
            _ => return Err(DescriptionDecodeError::BadCode),
        };
        let status = TableStatus::from_code(reader.byte()?).ok_or(DescriptionDecodeError::BadCode)?;
        let created_unix_ms = reader.u64()?;
        let item_count = reader.u64()?;
        let size_bytes = reader.u64()?;
        let table_id = reader.string()?;
        let billing = match reader.byte()? {
            0 => Billing::PayPerRequest,
            1 => Billing::Provisioned {
                read_units: reader.u64()?,
                write_units: reader.u64()?,
            },
            _ => return Err(DescriptionDecodeError::BadCode),
        };
        if !reader.bytes.is_empty() {
            return Err(DescriptionDecodeError::TrailingBytes);
        }
        Ok(TableDescription {
            name,
            key_schema: KeySchema { partition, sort },
            status,
            created_unix_ms,
            item_count,
            size_bytes,
            table_id,
            billing,
        })
    }
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let len = bytes.len().min(ENCODED_STRING_BYTES_MAX);
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(bytes.get(..len).unwrap_or_default());
}

fn put_attr(out: &mut Vec<u8>, attr: &KeyAttr) {
    put_string(out, &attr.name);
    out.push(match attr.kind {
        ScalarKind::S => 0,
        ScalarKind::N => 1,
        ScalarKind::B => 2,
    });
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], DescriptionDecodeError> {
        if self.bytes.len() < count {
            return Err(DescriptionDecodeError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, DescriptionDecodeError> {
        self.take(1)?.first().copied().ok_or(DescriptionDecodeError::Truncated)
    }

    fn u64(&mut self) -> Result<u64, DescriptionDecodeError> {
        let bytes: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| DescriptionDecodeError::Truncated)?;
        Ok(u64::from_be_bytes(bytes))
    }

    fn string(&mut self) -> Result<String, DescriptionDecodeError> {
        let len_bytes: [u8; 2] = self
            .take(2)?
            .try_into()
            .map_err(|_| DescriptionDecodeError::Truncated)?;
        let len = usize::from(u16::from_be_bytes(len_bytes));
        if len > ENCODED_STRING_BYTES_MAX {
            return Err(DescriptionDecodeError::BadString);
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| DescriptionDecodeError::BadString)
    }

    fn attr(&mut self) -> Result<KeyAttr, DescriptionDecodeError> {
        let name = self.string()?;
        let kind = match self.byte()? {
            0 => ScalarKind::S,
            1 => ScalarKind::N,
            2 => ScalarKind::B,
            _ => return Err(DescriptionDecodeError::BadCode),
        };
        Ok(KeyAttr { name, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &str) -> Result<CreateTable, ApiError> {
        parse_create_table(&Body::parse(body.as_bytes()).unwrap(), false)
    }

    const KEYS: &str = r#""KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}]"#;

    pub(crate) fn sample() -> TableDescription {
        let request = create(&format!(
            r#"{{"TableName": "Music", {KEYS}, "BillingMode": "PAY_PER_REQUEST"}}"#
        ))
        .unwrap();
        request.description("id-1", 1_700_000_000_500)
    }

    #[test]
    fn create_table_builds_the_schema() {
        let table = sample();
        assert_eq!(
            table.key_schema.partition,
            KeyAttr {
                name: "pk".into(),
                kind: ScalarKind::S
            }
        );
        assert_eq!(
            table.key_schema.sort,
            Some(KeyAttr {
                name: "sk".into(),
                kind: ScalarKind::N
            })
        );
        let json = table_description_response(&table);
        assert_eq!(json["TableDescription"]["TableStatus"], "CREATING");
        assert_eq!(
            json["TableDescription"]["TableArn"],
            "arn:aws:dynamodb:ddblocal:000000000000:table/Music"
        );
        assert_eq!(json["TableDescription"]["CreationDateTime"], 1_700_000_000.5);
        assert_eq!(
            json["TableDescription"]["BillingModeSummary"]["BillingMode"],
            "PAY_PER_REQUEST"
        );
        assert_eq!(json["TableDescription"]["KeySchema"][1]["KeyType"], "RANGE");
    }

    #[test]
    fn create_table_refusals() {
        let cases = [
            (
                r#"{"TableName": "Tab", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}]}"#,
                "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
            ),
            (
                r#"{"TableName": "Tab", "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "a", "KeyType": "RANGE"}], "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}]}"#,
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ),
            (
                r#"{"TableName": "Tab", "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}]}"#,
                "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ),
            (
                r#"{"TableName": "Tab", "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "AttributeDefinitions": [{"AttributeName": "b", "AttributeType": "S"}]}"#,
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [a], AttributeDefinitions: [b]",
            ),
            (
                r#"{"TableName": "Tab", "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "BOOL"}]}"#,
                "1 validation error detected: Value 'BOOL' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]",
            ),
            (
                r#"{"TableName": "Tab", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}, "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}]}"#,
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ),
            (
                r#"{"TableName": "Tab", "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 1}, "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}]}"#,
                "1 validation error detected: Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ),
        ];
        for (body, message) in cases {
            let error = create(body).unwrap_err();
            assert_eq!(
                (error.kind, error.message.as_str()),
                (ErrorKind::Validation, message),
                "{body}"
            );
        }
    }

    #[test]
    fn create_table_of_an_existing_name_is_in_use() {
        let body = format!(r#"{{"TableName": "Music", {KEYS}, "BillingMode": "PAY_PER_REQUEST"}}"#);
        let error = parse_create_table(&Body::parse(body.as_bytes()).unwrap(), true).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ResourceInUse);
        assert_eq!(error.message, "Table already exists: Music");
    }

    #[test]
    fn list_tables_pages() {
        let names = vec!["c".to_owned(), "a".to_owned(), "b".to_owned()];
        let request = ListTables {
            exclusive_start: None,
            limit: 2,
        };
        assert_eq!(
            list_tables_response(&request, names.clone()),
            json!({"TableNames": ["a", "b"], "LastEvaluatedTableName": "b"})
        );
        let request = ListTables {
            exclusive_start: Some("b".into()),
            limit: 2,
        };
        assert_eq!(list_tables_response(&request, names), json!({"TableNames": ["c"]}));
        let error = parse_list_tables(&Body::parse(br#"{"Limit": 101}"#).unwrap()).unwrap_err();
        assert_eq!(
            error.message,
            "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value \
             less than or equal to 100"
        );
    }

    #[test]
    fn update_table_changes_billing_only() {
        let mut table = sample();
        table.status = TableStatus::Active;
        let update = parse_update_table(
            &Body::parse(br#"{"TableName": "Music", "BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 6}}"#).unwrap(),
        )
        .unwrap();
        let mut updated = update.apply(&table).unwrap();
        assert_eq!(
            updated.billing,
            Billing::Provisioned {
                read_units: 5,
                write_units: 6
            }
        );
        assert_eq!(updated.status, TableStatus::Updating);
        assert_eq!(update.apply(&updated).unwrap_err().kind, ErrorKind::ResourceInUse);
        updated.status = TableStatus::Active;
        assert!(
            update
                .apply(&updated)
                .unwrap_err()
                .message
                .starts_with("The provisioned throughput for the table will not change.")
        );
        let error = parse_update_table(&Body::parse(br#"{"TableName": "Music", "StreamSpecification": {}}"#).unwrap())
            .unwrap_err();
        assert_eq!(
            error.message,
            "UpdateTable parameter StreamSpecification is not supported"
        );
    }

    #[test]
    fn descriptions_round_trip_and_hostile_bytes_are_errors() {
        let table = sample();
        let bytes = table.encode();
        assert_eq!(TableDescription::decode(&bytes), Ok(table));
        for len in 0..bytes.len() {
            assert!(TableDescription::decode(bytes.get(..len).unwrap()).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            TableDescription::decode(&longer),
            Err(DescriptionDecodeError::TrailingBytes)
        );
        let mut other_version = bytes;
        other_version[0] = 9;
        assert_eq!(
            TableDescription::decode(&other_version),
            Err(DescriptionDecodeError::UnknownVersion)
        );
    }
}
