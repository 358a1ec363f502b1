//! `Query` and `Scan`: their validation, where the node starts reading
//! ([`Query::start`], [`Scan::start_after`]), which scan segment a
//! partition key belongs to ([`partition_hash`], [`segment_of`]), and the
//! page built from the items the node reads ([`query_page`], [`scan_page`]).
//!
//! A page follows the API reference: `Limit` counts the items evaluated
//! (read), before the filter; a page stops at `Limit` items or once the
//! items read reach 1 MB, measured by item size as DynamoDB measures it,
//! before filtering and projection; `LastEvaluatedKey` is the key of the
//! last item read, given when `Limit` stopped the page, or when the 1 MB
//! stopped it and more items follow.

use super::Catalog;
use super::fields::{Body, Violations};
use super::request::{
    check_not_mixed, conditional_operator, enumerated, filter_entries, item_table, placeholders, projected, projection,
    read_capacity, wants_capacity,
};
use super::table::TableDescription;
use crate::error::ApiError;
use crate::expr::legacy;
use crate::expr::{
    Condition, EXPRESSION_NESTING_DEPTH_MAX, KeyConditions, Operand, Path, Placeholders, Projection, SortCondition,
};
use crate::json::item_to_json;
use crate::key::{Key, KeySchema, ScalarKind, sort_bytes};
use crate::limits::{PAGE_BYTES_MAX, TOTAL_SEGMENTS_MAX, TOTAL_SEGMENTS_MIN};
use crate::size;
use crate::value::{Item, Value};
use serde_json::{Map as JsonMap, Value as Json};
use std::cmp::Ordering;

/// Items one page looks at, matching or not: every stored item is at least
/// 2 bytes (a one-byte name and a one-byte key value), so the 1 MB of a
/// page is always reached first; this bounds a page whatever the iterator.
pub const PAGE_ITEMS_MAX: usize = PAGE_BYTES_MAX / 2;

const SELECT_VALUES: [&str; 4] = [
    "ALL_ATTRIBUTES",
    "ALL_PROJECTED_ATTRIBUTES",
    "SPECIFIC_ATTRIBUTES",
    "COUNT",
];

/// What a page returns of each matching item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    AllAttributes,
    Count,
    Specific(Projection),
}

/// What `Query` and `Scan` share once validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    pub table: String,
    pub key_schema: KeySchema,
    pub limit: Option<usize>,
    pub filter: Option<Condition>,
    pub select: Select,
    pub consistent: bool,
    pub return_capacity: bool,
    pub exclusive_start: Option<Key>,
}

/// A validated `Query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub read: ReadOptions,
    /// The partition to read: the node routes by it.
    pub partition: Value,
    pub sort_condition: Option<SortCondition>,
    /// `ScanIndexForward`: ascending sort key order.
    pub forward: bool,
}

/// A validated `Scan`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub read: ReadOptions,
    /// `(Segment, TotalSegments)` of a parallel scan.
    pub segment: Option<(u32, u32)>,
}

/// Where a query starts reading, in its direction, as sort key bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// The first item of the partition (the last one backwards).
    Edge,
    /// The first item whose sort key bytes are these or come after them.
    At(Vec<u8>),
    /// The first item whose sort key bytes come strictly after these.
    After(Vec<u8>),
    /// No item: the page after the one item of a table without a sort key.
    Nothing,
}

// ---------------------------------------------------------------- parsing

fn start_key_error(detail: &str) -> ApiError {
    ApiError::validation(format!("The provided starting key is invalid: {detail}"))
}

/// The members `Query` and `Scan` share, their filter parameter named.
fn read_options(
    body: &Body,
    table: &TableDescription,
    placeholders: &mut Placeholders,
    filter_member: &str,
) -> Result<ReadOptions, ApiError> {
    let mut violations = Violations::default();
    let limit = body.integer("Limit")?;
    violations.range(limit, "limit", 1, None);
    let select = enumerated(body, "Select", "select", &SELECT_VALUES, "", &mut violations)?;
    let return_capacity = wants_capacity(body, &mut violations)?;
    violations.finish()?;
    if let Some(index) = body.string("IndexName")? {
        return Err(ApiError::validation(format!(
            "The table does not have the specified index: {index}"
        )));
    }
    let filter = match body.string("FilterExpression")? {
        Some(text) => Some(Condition::parse_filter(text, placeholders)?),
        None => match filter_entries(body, filter_member)? {
            Some(entries) => legacy::filter(&entries, conditional_operator(body)?)?,
            None => None,
        },
    };
    let projection = projection(body, placeholders)?;
    let select = select_of(select, projection, body.has("ProjectionExpression"))?;
    let exclusive_start = match body.item("ExclusiveStartKey")? {
        Some(map) => Some(
            table
                .key_schema
                .key_from_map(&map)
                .map_err(|error| start_key_error(&error.message))?,
        ),
        None => None,
    };
    Ok(ReadOptions {
        table: table.name.clone(),
        key_schema: table.key_schema.clone(),
        limit: limit.and_then(|limit| usize::try_from(limit).ok()),
        filter,
        select,
        consistent: body.bool("ConsistentRead")?.unwrap_or(false),
        return_capacity,
        exclusive_start,
    })
}

/// `Select` with the projection, by DynamoDB's rules.
fn select_of(select: &str, projection: Option<Projection>, expression: bool) -> Result<Select, ApiError> {
    let parameter = if expression {
        "ProjectionExpression"
    } else {
        "AttributesToGet"
    };
    match (select, projection) {
        ("ALL_PROJECTED_ATTRIBUTES", _) => Err(ApiError::validation(
            "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is not supported in \
             the absence of an IndexName",
        )),
        ("SPECIFIC_ATTRIBUTES" | "", Some(projection)) => Ok(Select::Specific(projection)),
        ("SPECIFIC_ATTRIBUTES", None) => Err(ApiError::validation(
            "One or more parameter values were invalid: Must specify the AttributesToGet or ProjectionExpression \
             when choosing to get SPECIFIC_ATTRIBUTES",
        )),
        (other, Some(_)) => Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Cannot specify the {parameter} when choosing to get {other}"
        ))),
        ("COUNT", None) => Ok(Select::Count),
        (_, None) => Ok(Select::AllAttributes),
    }
}

pub(crate) fn parse_query(body: &Body, catalog: &dyn Catalog) -> Result<Query, ApiError> {
    let table = item_table(body, catalog)?;
    check_not_mixed(
        body,
        &["AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"],
        &["ProjectionExpression", "FilterExpression", "KeyConditionExpression"],
    )?;
    let mut placeholders = placeholders(
        body,
        &["ProjectionExpression", "FilterExpression", "KeyConditionExpression"],
        &["FilterExpression", "KeyConditionExpression"],
    )?;
    let conditions = match body.string("KeyConditionExpression")? {
        Some(text) => KeyConditions::parse(text, &mut placeholders)?,
        None => match filter_entries(body, "KeyConditions")? {
            Some(entries) => legacy::key_conditions(&entries)?,
            None => {
                return Err(ApiError::validation(
                    "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
                ));
            }
        },
    };
    let read = read_options(body, &table, &mut placeholders, "QueryFilter")?;
    placeholders.check_all_used()?;
    let schema = &table.key_schema;
    let resolved = conditions.resolve(
        &schema.partition.name,
        schema.sort.as_ref().map(|attr| attr.name.as_str()),
    )?;
    let partition = resolved.partition.1;
    let sort_condition = resolved.sort.map(|(_, condition)| condition);
    check_key_condition_types(schema, &partition, sort_condition.as_ref())?;
    let filter_parameter = if body.has("FilterExpression") {
        "Filter Expression"
    } else {
        "QueryFilter"
    };
    check_filter_keys(read.filter.as_ref(), schema, filter_parameter)?;
    let query = Query {
        read,
        partition,
        sort_condition,
        forward: body.bool("ScanIndexForward")?.unwrap_or(true),
    };
    check_query_start(&query)?;
    Ok(query)
}

/// The key condition's values have the key attributes' types.
fn check_key_condition_types(
    schema: &KeySchema,
    partition: &Value,
    sort: Option<&SortCondition>,
) -> Result<(), ApiError> {
    let mismatch = || {
        ApiError::validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        )
    };
    if ScalarKind::of(partition) != Some(schema.partition.kind) {
        return Err(mismatch());
    }
    let (Some(condition), Some(attr)) = (sort, &schema.sort) else {
        return Ok(());
    };
    let values = condition_values(condition);
    if values.iter().any(|value| ScalarKind::of(value) != Some(attr.kind)) {
        return Err(mismatch());
    }
    if matches!(condition, SortCondition::BeginsWith(_)) && attr.kind == ScalarKind::N {
        return Err(ApiError::validation(
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: \
             begins_with, operand type: N",
        ));
    }
    Ok(())
}

fn condition_values(condition: &SortCondition) -> Vec<&Value> {
    match condition {
        SortCondition::Equal(value)
        | SortCondition::Less(value)
        | SortCondition::LessOrEqual(value)
        | SortCondition::Greater(value)
        | SortCondition::GreaterOrEqual(value)
        | SortCondition::BeginsWith(value) => vec![value],
        SortCondition::Between(low, high) => vec![low, high],
    }
}

/// Refuses a query filter that reads a key attribute: the key condition
/// alone may (API reference, `Query` `FilterExpression`).
fn check_filter_keys(filter: Option<&Condition>, schema: &KeySchema, parameter: &str) -> Result<(), ApiError> {
    let Some(filter) = filter else {
        return Ok(());
    };
    let mut paths = Vec::new();
    condition_paths(filter, 0, &mut paths);
    let key_name = paths
        .iter()
        .map(|path| path.top_level_name())
        .find(|name| schema.attributes().any(|attr| attr.name == *name));
    match key_name {
        Some(name) => Err(ApiError::validation(format!(
            "{parameter} can only contain non-primary key attributes: Primary key attribute: {name}"
        ))),
        None => Ok(()),
    }
}

/// The paths a condition reads. Conditions nest no deeper than the parser
/// allows; past that depth (never reached) the walk stops.
fn condition_paths<'c>(condition: &'c Condition, depth: usize, out: &mut Vec<&'c Path>) {
    if depth > EXPRESSION_NESTING_DEPTH_MAX {
        return;
    }
    let mut operand = |operand: &'c Operand| operand_paths(operand, depth + 1, out);
    match condition {
        Condition::Compare { left, right, .. } => [left, right].into_iter().for_each(&mut operand),
        Condition::Between { value, low, high } => [value, low, high].into_iter().for_each(&mut operand),
        Condition::In { value, list } => std::iter::once(value).chain(list).for_each(&mut operand),
        Condition::BeginsWith { value, prefix } => [value, prefix].into_iter().for_each(&mut operand),
        Condition::Contains { value, member } => [value, member].into_iter().for_each(&mut operand),
        Condition::AttributeType { path, type_name } => {
            out.push(path);
            operand_paths(type_name, depth + 1, out);
        }
        Condition::AttributeExists(path) | Condition::AttributeNotExists(path) => out.push(path),
        Condition::Not(inner) => condition_paths(inner, depth + 1, out),
        Condition::And(inner) | Condition::Or(inner) => {
            inner.iter().for_each(|inner| condition_paths(inner, depth + 1, out))
        }
    }
}

fn operand_paths<'c>(operand: &'c Operand, depth: usize, out: &mut Vec<&'c Path>) {
    match operand {
        Operand::Path(path) => out.push(path),
        Operand::Size(inner) if depth <= EXPRESSION_NESTING_DEPTH_MAX => operand_paths(inner, depth + 1, out),
        _ => {}
    }
}

/// `ExclusiveStartKey` of a query lies in the partition it reads.
fn check_query_start(query: &Query) -> Result<(), ApiError> {
    let Some(start) = &query.read.exclusive_start else {
        return Ok(());
    };
    if start.partition != query.partition {
        return Err(start_key_error(
            "The provided starting key is outside query boundaries based on provided conditions",
        ));
    }
    Ok(())
}

pub(crate) fn parse_scan(body: &Body, catalog: &dyn Catalog) -> Result<Scan, ApiError> {
    let segment = segment_members(body)?;
    let table = item_table(body, catalog)?;
    check_not_mixed(
        body,
        &["AttributesToGet", "ScanFilter", "ConditionalOperator"],
        &["ProjectionExpression", "FilterExpression"],
    )?;
    let mut placeholders = placeholders(
        body,
        &["ProjectionExpression", "FilterExpression"],
        &["FilterExpression"],
    )?;
    let read = read_options(body, &table, &mut placeholders, "ScanFilter")?;
    placeholders.check_all_used()?;
    if let (Some(start), Some((segment, total))) = (&read.exclusive_start, segment)
        && segment_of(partition_hash(&start.partition), total) != segment
    {
        return Err(start_key_error(&format!(
            "Exclusive start key does not belong to segment {segment} of {total}"
        )));
    }
    Ok(Scan { read, segment })
}

/// `Segment` and `TotalSegments`: both or neither, `Segment` below the total.
fn segment_members(body: &Body) -> Result<Option<(u32, u32)>, ApiError> {
    let segment = body.integer("Segment")?;
    let total = body.integer("TotalSegments")?;
    let mut violations = Violations::default();
    violations.range(segment, "segment", 0, Some(i64::from(TOTAL_SEGMENTS_MAX) - 1));
    violations.range(
        total,
        "totalSegments",
        i64::from(TOTAL_SEGMENTS_MIN),
        Some(i64::from(TOTAL_SEGMENTS_MAX)),
    );
    violations.finish()?;
    let as_u32 = |value: i64| u32::try_from(value).unwrap_or(u32::MAX);
    match (segment, total) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is \
             present",
        )),
        (None, Some(_)) => Err(ApiError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is \
             present",
        )),
        (Some(segment), Some(total)) if segment >= total => Err(ApiError::validation(format!(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is \
             not less than TotalSegments: {total}"
        ))),
        (Some(segment), Some(total)) => Ok(Some((as_u32(segment), as_u32(total)))),
    }
}

// ---------------------------------------------------------------- positions

/// A partition key value's hash: FNV-1a over its key bytes, then a
/// SplitMix64 finish so that its high bits (which pick the segment) are
/// well mixed. The node may route and order scans by it.
pub fn partition_hash(partition: &Value) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = sort_bytes(partition).unwrap_or_default();
    let mut hash = bytes.iter().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    });
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The segment (of `total`) a partition hash belongs to: segments are
/// equal, contiguous ranges of hashes, segment 0 the lowest.
pub fn segment_of(hash: u64, total: u32) -> u32 {
    let scaled = (u128::from(hash) * u128::from(total.max(1))) >> 64;
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

/// Whether an item's key belongs to the scan's segment (every key does
/// when the scan is not parallel).
pub fn in_segment(scan: &Scan, key: &Key) -> bool {
    match scan.segment {
        Some((segment, total)) => segment_of(partition_hash(&key.partition), total) == segment,
        None => true,
    }
}

/// An order for scans the node may use: partition hash, then partition
/// key bytes (length first), then sort key bytes.
pub fn scan_order_bytes(key: &Key) -> Vec<u8> {
    let partition = sort_bytes(&key.partition).unwrap_or_default();
    let mut out = partition_hash(&key.partition).to_be_bytes().to_vec();
    out.extend_from_slice(&u16::try_from(partition.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&partition);
    if let Some(sort) = key.sort.as_ref().and_then(sort_bytes) {
        out.extend_from_slice(&sort);
    }
    out
}

impl Scan {
    /// Where the scan resumes: after this key in [`scan_order_bytes`]'s order.
    pub fn start_after(&self) -> Option<Vec<u8>> {
        self.read.exclusive_start.as_ref().map(scan_order_bytes)
    }
}

/// What a query does with an item the node hands it.
enum Admit {
    Read,
    /// Not the query's: outside the partition or the range, or not after
    /// `ExclusiveStartKey`.
    Skip,
    /// Past the range: no later item can match.
    End,
}

impl Query {
    fn admit(&self, key: &Key) -> Admit {
        if key.partition != self.partition {
            return Admit::Skip;
        }
        let Some(sort) = &key.sort else {
            // A table without a sort key has one item per partition.
            return if self.read.exclusive_start.is_some() {
                Admit::End
            } else {
                Admit::Read
            };
        };
        let sort_key_bytes = sort_bytes(sort).unwrap_or_default();
        if !self.after_start(&sort_key_bytes) {
            return Admit::Skip;
        }
        match &self.sort_condition {
            Some(_) if self.past_range(&sort_key_bytes) => Admit::End,
            Some(condition) if !condition.matches(sort) => Admit::Skip,
            _ => Admit::Read,
        }
    }

    /// Whether sort key bytes come after `ExclusiveStartKey` in the
    /// reading direction (all do without one).
    fn after_start(&self, sort_key_bytes: &[u8]) -> bool {
        let Some(start) = self.read.exclusive_start.as_ref().and_then(|key| key.sort.as_ref()) else {
            return true;
        };
        let ordering = sort_key_bytes.cmp(&sort_bytes(start).unwrap_or_default());
        if self.forward {
            ordering == Ordering::Greater
        } else {
            ordering == Ordering::Less
        }
    }

    /// Where the node starts reading the partition, in the query's
    /// direction: after `ExclusiveStartKey`, else at the range's near end.
    pub fn start(&self) -> Start {
        if let Some(start) = &self.read.exclusive_start {
            return match &start.sort {
                Some(sort) => Start::After(sort_bytes(sort).unwrap_or_default()),
                None => Start::Nothing,
            };
        }
        let bytes = |value: &Value| sort_bytes(value).unwrap_or_default();
        match (&self.sort_condition, self.forward) {
            (None, _) => Start::Edge,
            (Some(SortCondition::Equal(value)), _) => Start::At(bytes(value)),
            (Some(SortCondition::GreaterOrEqual(value) | SortCondition::BeginsWith(value)), true) => {
                Start::At(bytes(value))
            }
            (Some(SortCondition::Between(low, _)), true) => Start::At(bytes(low)),
            (Some(SortCondition::Greater(value)), true) => Start::After(bytes(value)),
            (Some(SortCondition::LessOrEqual(value)), false) => Start::At(bytes(value)),
            (Some(SortCondition::Between(_, high)), false) => Start::At(bytes(high)),
            (Some(SortCondition::Less(value)), false) => Start::After(bytes(value)),
            (Some(_), _) => Start::Edge,
        }
    }

    /// Whether a sort key lies beyond the range in the reading direction,
    /// so that no later item can match.
    fn past_range(&self, sort: &[u8]) -> bool {
        let Some(condition) = &self.sort_condition else {
            return false;
        };
        let bytes = |value: &Value| sort_bytes(value).unwrap_or_default();
        let beyond = |bound: &Value, inclusive: bool| {
            let ordering = sort.cmp(&bytes(bound));
            let ordering = if self.forward { ordering } else { ordering.reverse() };
            ordering == Ordering::Greater || (!inclusive && ordering == Ordering::Equal)
        };
        match (condition, self.forward) {
            (SortCondition::Equal(value), _) => beyond(value, true),
            (SortCondition::LessOrEqual(value), true) | (SortCondition::GreaterOrEqual(value), false) => {
                beyond(value, true)
            }
            (SortCondition::Less(value), true) | (SortCondition::Greater(value), false) => beyond(value, false),
            (SortCondition::Between(_, high), true) => beyond(high, true),
            (SortCondition::Between(low, _), false) => beyond(low, true),
            (SortCondition::BeginsWith(prefix), _) => {
                let prefix = bytes(prefix);
                !sort.starts_with(&prefix) && beyond_prefix(sort, &prefix, self.forward)
            }
            _ => false,
        }
    }
}

/// Whether bytes not starting with `prefix` lie past every string that does.
fn beyond_prefix(sort: &[u8], prefix: &[u8], forward: bool) -> bool {
    let ordering = sort.cmp(prefix);
    if forward {
        ordering == Ordering::Greater
    } else {
        ordering == Ordering::Less
    }
}

// ---------------------------------------------------------------- pages

/// A page being filled.
struct PageBuilder<'a> {
    options: &'a ReadOptions,
    items: Vec<Json>,
    count: usize,
    scanned: usize,
    read_bytes: usize,
    last_key: Option<Key>,
}

/// Why a page stopped.
enum Stop {
    Exhausted,
    Limit,
    Full,
}

impl<'a> PageBuilder<'a> {
    fn new(options: &'a ReadOptions) -> PageBuilder<'a> {
        PageBuilder {
            options,
            items: Vec::new(),
            count: 0,
            scanned: 0,
            read_bytes: 0,
            last_key: None,
        }
    }

    /// Reads one item; `Some` when the page is now complete.
    fn read(&mut self, item: &Item, key: Key) -> Result<Option<Stop>, ApiError> {
        self.scanned += 1;
        self.read_bytes = self.read_bytes.saturating_add(size::item_bytes(item));
        self.last_key = Some(key);
        let matches = match &self.options.filter {
            Some(filter) => filter.evaluate(Some(item))?,
            None => true,
        };
        if matches {
            self.count += 1;
            match &self.options.select {
                Select::Count => {}
                Select::AllAttributes => self.items.push(item_to_json(item)),
                Select::Specific(projection) => self.items.push(item_to_json(&projected(item, Some(projection)))),
            }
        }
        if self.options.limit.is_some_and(|limit| self.scanned >= limit) {
            return Ok(Some(Stop::Limit));
        }
        if self.read_bytes >= PAGE_BYTES_MAX {
            return Ok(Some(Stop::Full));
        }
        Ok(None)
    }

    fn finish(self, stop: Stop) -> Json {
        let mut response = JsonMap::new();
        if self.options.select != Select::Count {
            response.insert("Items".to_owned(), Json::Array(self.items));
        }
        response.insert("Count".to_owned(), Json::from(self.count));
        response.insert("ScannedCount".to_owned(), Json::from(self.scanned));
        if let (Stop::Limit | Stop::Full, Some(key)) = (stop, &self.last_key) {
            let key_map = self.options.key_schema.key_map(key);
            response.insert("LastEvaluatedKey".to_owned(), item_to_json(&key_map));
        }
        if self.options.return_capacity {
            let capacity = read_capacity(&self.options.table, self.read_bytes, self.options.consistent);
            response.insert("ConsumedCapacity".to_owned(), capacity);
        }
        Json::Object(response)
    }
}

/// The query's page from the partition's items in the query's direction,
/// starting where [`Query::start`] says. Items outside the partition or the
/// sort key range are passed over; the first past the range ends the page.
pub fn query_page(query: &Query, items: impl IntoIterator<Item = Item>) -> Result<Json, ApiError> {
    let mut page = PageBuilder::new(&query.read);
    let schema = &query.read.key_schema;
    let mut items = items.into_iter().take(PAGE_ITEMS_MAX).peekable();
    while let Some(item) = items.next() {
        let Ok(key) = schema.item_key(&item) else {
            continue;
        };
        match query.admit(&key) {
            Admit::Skip => continue,
            Admit::End => break,
            Admit::Read => {}
        }
        match page.read(&item, key)? {
            Some(Stop::Full) if items.peek().is_none() => break,
            Some(stop) => return Ok(page.finish(stop)),
            None => {}
        }
    }
    Ok(page.finish(Stop::Exhausted))
}

/// The scan's page from the table's items in the node's stable order,
/// starting after `ExclusiveStartKey`; items of other segments are passed over.
pub fn scan_page(scan: &Scan, items: impl IntoIterator<Item = Item>) -> Result<Json, ApiError> {
    let mut page = PageBuilder::new(&scan.read);
    let schema = &scan.read.key_schema;
    let mut items = items.into_iter().take(PAGE_ITEMS_MAX).peekable();
    while let Some(item) = items.next() {
        let Ok(key) = schema.item_key(&item) else {
            continue;
        };
        if !in_segment(scan, &key) {
            continue;
        }
        match page.read(&item, key)? {
            Some(Stop::Full) if items.peek().is_none() => return Ok(page.finish(Stop::Exhausted)),
            Some(stop) => return Ok(page.finish(stop)),
            None => {}
        }
    }
    Ok(page.finish(Stop::Exhausted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::number::Number;
    use crate::ops::tests::{FakeCatalog, body};
    use serde_json::json;

    fn query(text: &str) -> Result<Query, ApiError> {
        parse_query(&body(text), &FakeCatalog::new())
    }

    fn scan(text: &str) -> Result<Scan, ApiError> {
        parse_scan(&body(text), &FakeCatalog::new())
    }

    /// Items of partition "p" with sort keys 0..count, `even` set on each.
    fn partition(count: i64) -> Vec<Item> {
        (0..count)
            .map(|n| {
                Item::from([
                    ("pk".to_owned(), Value::S("p".to_owned())),
                    ("sk".to_owned(), Value::N(Number::from_i64(n))),
                    ("even".to_owned(), Value::Bool(n % 2 == 0)),
                ])
            })
            .collect()
    }

    const BASE: &str =
        r#""TableName": "range", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}"#;

    #[test]
    fn limit_counts_items_before_the_filter() {
        let request = query(&format!(
            r#"{{{BASE}, ":t": {{"BOOL": true}}}}, "FilterExpression": "even = :t", "Limit": 4}}"#
        ))
        .unwrap();
        let page = query_page(&request, partition(10)).unwrap();
        assert_eq!(page["Count"], 2);
        assert_eq!(page["ScannedCount"], 4);
        assert_eq!(page["LastEvaluatedKey"], json!({"pk": {"S": "p"}, "sk": {"N": "3"}}));
        assert_eq!(page["Items"][1]["sk"], json!({"N": "2"}));
    }

    #[test]
    fn a_whole_partition_has_no_last_key() {
        let request = query(&format!(r#"{{{BASE}}}, "Select": "COUNT"}}"#)).unwrap();
        let page = query_page(&request, partition(10)).unwrap();
        assert_eq!(page, json!({"Count": 10, "ScannedCount": 10}));
    }

    #[test]
    fn the_sort_range_selects_and_ends_the_page() {
        let request = query(
            r#"{"TableName": "range", "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "3"}, ":b": {"N": "5"}}, "ScanIndexForward": false}"#,
        )
        .unwrap();
        assert_eq!(
            request.start(),
            Start::At(sort_bytes(&Value::N(Number::from_i64(5))).unwrap())
        );
        let mut items = partition(10);
        items.reverse();
        let page = query_page(&request, items).unwrap();
        let sks: Vec<&Json> = page["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| &item["sk"]["N"])
            .collect();
        assert_eq!(sks, vec!["5", "4", "3"]);
        assert_eq!(page["ScannedCount"], 3);
    }

    #[test]
    fn a_page_stops_at_one_megabyte() {
        let request = query(&format!(r#"{{{BASE}}}, "ProjectionExpression": "sk"}}"#)).unwrap();
        let blob = Value::S("x".repeat(300 * 1024));
        let items: Vec<Item> = partition(5)
            .into_iter()
            .map(|mut item| {
                item.insert("blob".to_owned(), blob.clone());
                item
            })
            .collect();
        let page = query_page(&request, items.clone()).unwrap();
        assert_eq!(page["Count"], 4);
        assert_eq!(page["Items"][0], json!({"sk": {"N": "0"}}));
        assert_eq!(page["LastEvaluatedKey"], json!({"pk": {"S": "p"}, "sk": {"N": "3"}}));
        let page = query_page(&request, items.into_iter().take(4)).unwrap();
        assert!(page.get("LastEvaluatedKey").is_none());
    }

    #[test]
    fn a_query_resumes_after_its_start_key_whatever_the_node_hands_it() {
        let request = query(&format!(
            r#"{{{BASE}}}, "ExclusiveStartKey": {{"pk": {{"S": "p"}}, "sk": {{"N": "6.5"}}}}}}"#
        ))
        .unwrap();
        assert_eq!(
            request.start(),
            Start::After(sort_bytes(&Value::N(Number::parse("6.5").unwrap())).unwrap())
        );
        let page = query_page(&request, partition(10)).unwrap();
        assert_eq!(page["Count"], 3);
        assert_eq!(page["Items"][0]["sk"], json!({"N": "7"}));
        let hash_only = parse_query(
            &body(r#"{"TableName": "hash", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}, "ExclusiveStartKey": {"pk": {"S": "p"}}}"#),
            &FakeCatalog::new(),
        )
        .unwrap();
        assert_eq!(hash_only.start(), Start::Nothing);
        let item = Item::from([("pk".to_owned(), Value::S("p".to_owned()))]);
        assert_eq!(
            query_page(&hash_only, [item]).unwrap(),
            json!({"Items": [], "Count": 0, "ScannedCount": 0})
        );
    }

    #[test]
    fn query_refusals() {
        let cases = [
            (format!(r#"{{{BASE}}}, "Select": "ALL_PROJECTED_ATTRIBUTES"}}"#), "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is not supported in the absence of an IndexName"),
            (format!(r#"{{{BASE}}}, "Select": "ALL_ATTRIBUTES", "ProjectionExpression": "even"}}"#), "One or more parameter values were invalid: Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES"),
            (format!(r#"{{{BASE}}}, "Limit": 0}}"#), "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
            (format!(r#"{{{BASE}}}, "ExclusiveStartKey": {{"pk": {{"S": "p"}}}}}}"#), "The provided starting key is invalid: The provided key element does not match the schema"),
            (format!(r#"{{{BASE}, ":z": {{"N": "1"}}}}, "FilterExpression": "size(sk) > :z"}}"#), "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"),
            (r#"{"TableName": "range"}"#.to_owned(), "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."),
            (r#"{"TableName": "range", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"N": "1"}}}"#.to_owned(), "One or more parameter values were invalid: Condition parameter type does not match schema type"),
        ];
        for (text, message) in cases {
            let error = query(&text).unwrap_err();
            assert_eq!(
                (error.kind, error.message.as_str()),
                (ErrorKind::Validation, message),
                "{text}"
            );
        }
    }

    #[test]
    fn legacy_key_conditions_work() {
        let request = query(
            r#"{"TableName": "range", "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                "sk": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "7"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            request.start(),
            Start::After(sort_bytes(&Value::N(Number::from_i64(7))).unwrap())
        );
        assert_eq!(query_page(&request, partition(10)).unwrap()["Count"], 2);
    }

    #[test]
    fn scan_segments_partition_the_keys() {
        let total = 4;
        let mut seen = 0;
        for segment in 0..total {
            let request = scan(&format!(
                r#"{{"TableName": "range", "Segment": {segment}, "TotalSegments": {total}, "Select": "COUNT"}}"#
            ))
            .unwrap();
            let items = (0..100).map(|n| {
                Item::from([
                    ("pk".to_owned(), Value::S(format!("p{n}"))),
                    ("sk".to_owned(), Value::N(Number::from_i64(n))),
                ])
            });
            let count = scan_page(&request, items).unwrap()["Count"].as_u64().unwrap();
            assert!(count > 0 && count < 100);
            seen += count;
        }
        assert_eq!(seen, 100);
        assert_eq!(segment_of(u64::MAX, 1_000_000), 999_999);
        assert_eq!(segment_of(0, 3), 0);
    }

    #[test]
    fn a_scan_start_key_must_lie_in_its_segment() {
        let partition = Value::S("p".to_owned());
        let segment = segment_of(partition_hash(&partition), 2);
        let text = |segment: u32| {
            format!(
                r#"{{"TableName": "range", "Segment": {segment}, "TotalSegments": 2, "ExclusiveStartKey": {{"pk": {{"S": "p"}}, "sk": {{"N": "1"}}}}}}"#
            )
        };
        assert!(scan(&text(segment)).is_ok());
        assert_eq!(
            scan(&text(1 - segment)).unwrap_err().message,
            format!(
                "The provided starting key is invalid: Exclusive start key does not belong to segment {} of 2",
                1 - segment
            )
        );
    }

    #[test]
    fn scan_refusals() {
        let cases = [
            (
                r#"{"TableName": "range", "Segment": 2, "TotalSegments": 2}"#,
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 2 is not less than TotalSegments: 2",
            ),
            (
                r#"{"TableName": "range", "Segment": 0}"#,
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ),
            (
                r#"{"TableName": "range", "TotalSegments": 1000001, "Segment": 0}"#,
                "1 validation error detected: Value '1000001' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000",
            ),
            (
                r#"{"TableName": "range", "IndexName": "idx"}"#,
                "The table does not have the specified index: idx",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(scan(text).unwrap_err().message, message, "{text}");
        }
    }

    #[test]
    fn scan_limit_gives_the_last_key() {
        let request = scan(r#"{"TableName": "range", "Limit": 3}"#).unwrap();
        let page = scan_page(&request, partition(10)).unwrap();
        assert_eq!(page["Count"], 3);
        assert_eq!(page["LastEvaluatedKey"], json!({"pk": {"S": "p"}, "sk": {"N": "2"}}));
        let start =
            scan(r#"{"TableName": "range", "ExclusiveStartKey": {"pk": {"S": "p"}, "sk": {"N": "2"}}}"#).unwrap();
        let key = Key {
            partition: Value::S("p".into()),
            sort: Some(Value::N(Number::from_i64(2))),
        };
        assert_eq!(start.start_after(), Some(scan_order_bytes(&key)));
    }
}
