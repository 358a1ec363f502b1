//! The legacy parameters older SDK mappers still send, checked with
//! DynamoDB's messages and turned into the trees expressions give, so one
//! evaluator serves both: `Expected` (with `ConditionalOperator`),
//! `ScanFilter` and `QueryFilter` become a [`Condition`]; `KeyConditions`
//! become [`KeyConditions`]; `AttributeUpdates` an [`Update`];
//! `AttributesToGet` a [`Projection`]. Reading them out of the request's
//! JSON is the request layer's job; these are their plain typed forms.

use super::ast::Comparator;
use super::condition::{Condition, Operand};
use super::key_condition::{KeyConditions, KeyTerm, SortCondition};
use super::path::Path;
use super::projection::Projection;
use super::update::{Action, Update, UpdateValue};
use crate::error::ApiError;
use crate::value::order;
use crate::value::{Kind, Value};
use std::cmp::Ordering;

/// How `AttributeValueList` compares with an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComparisonOperator {
    Eq,
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
    NotNull,
    Null,
    Contains,
    NotContains,
    BeginsWith,
    In,
    Between,
}

const OPERATORS: [ComparisonOperator; 13] = [
    ComparisonOperator::Eq,
    ComparisonOperator::Ne,
    ComparisonOperator::Le,
    ComparisonOperator::Lt,
    ComparisonOperator::Ge,
    ComparisonOperator::Gt,
    ComparisonOperator::NotNull,
    ComparisonOperator::Null,
    ComparisonOperator::Contains,
    ComparisonOperator::NotContains,
    ComparisonOperator::BeginsWith,
    ComparisonOperator::In,
    ComparisonOperator::Between,
];

impl ComparisonOperator {
    /// The operator the request names (`"EQ"`, `"NOT_NULL"`...).
    pub fn parse(text: &str) -> Option<ComparisonOperator> {
        OPERATORS.into_iter().find(|operator| operator.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            ComparisonOperator::Eq => "EQ",
            ComparisonOperator::Ne => "NE",
            ComparisonOperator::Le => "LE",
            ComparisonOperator::Lt => "LT",
            ComparisonOperator::Ge => "GE",
            ComparisonOperator::Gt => "GT",
            ComparisonOperator::NotNull => "NOT_NULL",
            ComparisonOperator::Null => "NULL",
            ComparisonOperator::Contains => "CONTAINS",
            ComparisonOperator::NotContains => "NOT_CONTAINS",
            ComparisonOperator::BeginsWith => "BEGINS_WITH",
            ComparisonOperator::In => "IN",
            ComparisonOperator::Between => "BETWEEN",
        }
    }

    fn takes_count(self, count: usize) -> bool {
        match self {
            ComparisonOperator::NotNull | ComparisonOperator::Null => count == 0,
            ComparisonOperator::In => count >= 1,
            ComparisonOperator::Between => count == 2,
            _ => count == 1,
        }
    }

    /// Whether the operator takes values of this type.
    fn takes_kind(self, kind: Kind) -> bool {
        let scalar = matches!(kind, Kind::S | Kind::N | Kind::B);
        match self {
            ComparisonOperator::Eq | ComparisonOperator::Ne => true,
            ComparisonOperator::Contains | ComparisonOperator::NotContains => {
                !matches!(kind, Kind::Ss | Kind::Ns | Kind::Bs | Kind::M | Kind::L)
            }
            ComparisonOperator::BeginsWith => matches!(kind, Kind::S | Kind::B),
            _ => scalar,
        }
    }
}

/// `AND` or `OR` between the conditions of one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionalOperator {
    And,
    Or,
}

impl ConditionalOperator {
    pub fn parse(text: &str) -> Option<ConditionalOperator> {
        match text {
            "AND" => Some(ConditionalOperator::And),
            "OR" => Some(ConditionalOperator::Or),
            _ => None,
        }
    }
}

/// One attribute's entry of `Expected`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedEntry {
    pub value: Option<Value>,
    pub exists: Option<bool>,
    pub operator: Option<ComparisonOperator>,
    /// `AttributeValueList`, if the request has it (even empty).
    pub values: Option<Vec<Value>>,
}

/// One attribute's entry of `ScanFilter`, `QueryFilter` or `KeyConditions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterEntry {
    pub operator: ComparisonOperator,
    pub values: Vec<Value>,
}

/// What an `AttributeUpdates` entry does (`PUT` when the request says nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttributeAction {
    #[default]
    Put,
    Delete,
    Add,
}

/// One attribute's entry of `AttributeUpdates`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeUpdate {
    pub action: AttributeAction,
    pub value: Option<Value>,
}

fn parameter_error(detail: impl std::fmt::Display) -> ApiError {
    ApiError::validation(format!("One or more parameter values were invalid: {detail}"))
}

/// `Expected` with its `ConditionalOperator`, as one condition (`None` when empty).
pub fn expected(
    entries: &[(String, ExpectedEntry)],
    operator: Option<ConditionalOperator>,
) -> Result<Option<Condition>, ApiError> {
    let conditions = entries
        .iter()
        .map(|(name, entry)| expected_entry(name, entry))
        .collect::<Result<Vec<Condition>, ApiError>>()?;
    Ok(joined(conditions, operator))
}

/// `ScanFilter` or `QueryFilter` with its `ConditionalOperator`, as one
/// condition (`None` when empty).
pub fn filter(
    entries: &[(String, FilterEntry)],
    operator: Option<ConditionalOperator>,
) -> Result<Option<Condition>, ApiError> {
    let conditions = entries
        .iter()
        .map(|(name, entry)| comparison(Path::attribute(name.as_str()), entry.operator, &entry.values))
        .collect::<Result<Vec<Condition>, ApiError>>()?;
    Ok(joined(conditions, operator))
}

fn joined(mut conditions: Vec<Condition>, operator: Option<ConditionalOperator>) -> Option<Condition> {
    match (conditions.len(), operator) {
        (0, _) => None,
        (1, _) => conditions.pop(),
        (_, Some(ConditionalOperator::Or)) => Some(Condition::Or(conditions)),
        _ => Some(Condition::And(conditions)),
    }
}

fn expected_entry(name: &str, entry: &ExpectedEntry) -> Result<Condition, ApiError> {
    if entry.value.is_some() && entry.values.is_some() {
        return Err(parameter_error(format!(
            "Value and AttributeValueList cannot be used together for Attribute: {name}"
        )));
    }
    let path = Path::attribute(name);
    if let Some(operator) = entry.operator {
        if entry.exists.is_some() {
            return Err(parameter_error(format!(
                "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
            )));
        }
        let values = match (&entry.values, &entry.value) {
            (Some(values), _) => values.clone(),
            (None, Some(value)) => vec![value.clone()],
            (None, None) if operator.takes_count(0) => Vec::new(),
            (None, None) => {
                return Err(parameter_error(format!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {} for Attribute: {name}",
                    operator.name()
                )));
            }
        };
        return comparison(path, operator, &values);
    }
    if entry.values.is_some() {
        return Err(parameter_error(format!(
            "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
        )));
    }
    match (entry.exists, &entry.value) {
        (Some(false), Some(_)) => Err(parameter_error(format!(
            "Value cannot be used when Exists is false for Attribute: {name}"
        ))),
        (Some(false), None) => Ok(Condition::AttributeNotExists(path)),
        (None, None) => Err(parameter_error(format!(
            "Value must be provided when Exists is null for Attribute: {name}"
        ))),
        (Some(true), None) => Err(parameter_error(format!(
            "Value must be provided when Exists is true for Attribute: {name}"
        ))),
        (_, Some(value)) => Ok(equal(path, value.clone())),
    }
}

fn equal(path: Path, value: Value) -> Condition {
    Condition::Compare {
        comparator: Comparator::Equal,
        left: Operand::Path(path),
        right: Operand::Value(value),
    }
}

/// Checks the values an operator is given, in DynamoDB's order: their
/// number, each one's type, one type for all, ascending `BETWEEN` bounds.
fn check_values(
    operator: ComparisonOperator,
    values: &[Value],
    count_error: impl Fn() -> ApiError,
) -> Result<(), ApiError> {
    if !operator.takes_count(values.len()) {
        return Err(count_error());
    }
    if let Some(refused) = values.iter().find(|value| !operator.takes_kind(value.kind())) {
        return Err(parameter_error(format!(
            "ComparisonOperator {} is not valid for {} AttributeValue type",
            operator.name(),
            refused.kind().descriptor()
        )));
    }
    if let Some(first) = values.first()
        && values.iter().any(|value| value.kind() != first.kind())
    {
        return Err(parameter_error(
            "AttributeValues inside AttributeValueList must be of same type",
        ));
    }
    if let [low, high] = values
        && operator == ComparisonOperator::Between
        && order(low, high) == Some(Ordering::Greater)
    {
        return Err(ApiError::validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(())
}

/// One attribute compared with its values, as the condition tree says it.
fn comparison(path: Path, operator: ComparisonOperator, values: &[Value]) -> Result<Condition, ApiError> {
    check_values(operator, values, || {
        parameter_error(format!(
            "Invalid number of argument(s) for the {} ComparisonOperator",
            operator.name()
        ))
    })?;
    let value = |at: usize| Operand::Value(values.get(at).cloned().unwrap_or(Value::Null));
    let compare = |comparator| Condition::Compare {
        comparator,
        left: Operand::Path(path.clone()),
        right: value(0),
    };
    Ok(match operator {
        ComparisonOperator::Eq => compare(Comparator::Equal),
        ComparisonOperator::Ne => compare(Comparator::NotEqual),
        ComparisonOperator::Le => compare(Comparator::LessOrEqual),
        ComparisonOperator::Lt => compare(Comparator::Less),
        ComparisonOperator::Ge => compare(Comparator::GreaterOrEqual),
        ComparisonOperator::Gt => compare(Comparator::Greater),
        ComparisonOperator::NotNull => Condition::AttributeExists(path),
        ComparisonOperator::Null => Condition::AttributeNotExists(path),
        ComparisonOperator::Contains => Condition::Contains {
            value: Operand::Path(path),
            member: value(0),
        },
        ComparisonOperator::NotContains => Condition::Not(Box::new(Condition::Contains {
            value: Operand::Path(path),
            member: value(0),
        })),
        ComparisonOperator::BeginsWith => Condition::BeginsWith {
            value: Operand::Path(path),
            prefix: value(0),
        },
        ComparisonOperator::In => Condition::In {
            value: Operand::Path(path),
            list: values.iter().cloned().map(Operand::Value).collect(),
        },
        ComparisonOperator::Between => Condition::Between {
            value: Operand::Path(path),
            low: value(0),
            high: value(1),
        },
    })
}

/// `KeyConditions`: one or two entries, each a comparison a key condition
/// may make (match them to the key schema with [`KeyConditions::resolve`]).
pub fn key_conditions(entries: &[(String, FilterEntry)]) -> Result<KeyConditions, ApiError> {
    for (_, entry) in entries {
        if !entry.operator.takes_count(entry.values.len()) {
            return Err(ApiError::validation(
                "The attempted filter operation is not supported for the provided filter argument count",
            ));
        }
    }
    if !(1..=2).contains(&entries.len()) {
        return Err(ApiError::validation("Conditions can be of length 1 or 2 only"));
    }
    let mut terms = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        terms.push(key_term(name, entry)?);
    }
    Ok(KeyConditions { terms })
}

fn key_term(name: &str, entry: &FilterEntry) -> Result<KeyTerm, ApiError> {
    let values = &entry.values;
    check_values(entry.operator, values, || {
        ApiError::validation("The attempted filter operation is not supported for the provided filter argument count")
    })?;
    let value = |at: usize| values.get(at).cloned().unwrap_or(Value::Null);
    let condition = match entry.operator {
        ComparisonOperator::Eq => SortCondition::Equal(value(0)),
        ComparisonOperator::Le => SortCondition::LessOrEqual(value(0)),
        ComparisonOperator::Lt => SortCondition::Less(value(0)),
        ComparisonOperator::Ge => SortCondition::GreaterOrEqual(value(0)),
        ComparisonOperator::Gt => SortCondition::Greater(value(0)),
        ComparisonOperator::BeginsWith => SortCondition::BeginsWith(value(0)),
        ComparisonOperator::Between => SortCondition::Between(value(0), value(1)),
        _ => return Err(ApiError::validation("Query key condition not supported")),
    };
    Ok(KeyTerm {
        attribute: name.to_owned(),
        condition,
    })
}

/// `AttributeUpdates` as an update of top-level attributes: `PUT` sets,
/// `DELETE` removes the attribute (or, given a set, members of it), `ADD`
/// adds to a number or a set (or appends to a list).
pub fn attribute_updates(entries: &[(String, AttributeUpdate)]) -> Result<Update, ApiError> {
    let mut actions = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        let path = Path::attribute(name.as_str());
        let action = match (entry.action, &entry.value) {
            (AttributeAction::Delete, None) => Action::Remove(path),
            (_, None) => {
                return Err(parameter_error(
                    "Only DELETE action is allowed when no attribute value is specified",
                ));
            }
            (AttributeAction::Put, Some(value)) => Action::Set(path, UpdateValue::Value(value.clone())),
            (AttributeAction::Delete, Some(value)) => {
                if !matches!(value.kind(), Kind::Ss | Kind::Ns | Kind::Bs) {
                    return Err(parameter_error(format!(
                        "DELETE action with value is not supported for the type {}",
                        value.kind().descriptor()
                    )));
                }
                Action::Delete(path, value.clone())
            }
            (AttributeAction::Add, Some(value)) => {
                if matches!(value.kind(), Kind::S | Kind::B | Kind::Null | Kind::Bool | Kind::M) {
                    return Err(parameter_error(format!(
                        "ADD action is not supported for the type {}",
                        value.kind().descriptor()
                    )));
                }
                Action::Add(path, value.clone())
            }
        };
        actions.push(action);
    }
    Ok(Update { actions, legacy: true })
}

/// `AttributesToGet`: top-level attributes (a dot is part of the name).
pub fn attributes_to_get(names: &[String]) -> Result<Projection, ApiError> {
    for (at, name) in names.iter().enumerate() {
        if names.get(..at).unwrap_or_default().contains(name) {
            return Err(parameter_error(format!("Duplicate value in attribute name: {name}")));
        }
    }
    Ok(Projection::of_paths(
        names.iter().map(|name| Path::attribute(name.as_str())).collect(),
    ))
}

/// The message for a request that mixes legacy parameters with expression
/// parameters; each list in the order the caller found them.
pub fn mixed_parameters_error(non_expression: &[&str], expression: &[&str]) -> ApiError {
    ApiError::validation(format!(
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: \
         {{{}}} Expression parameters: {{{}}}",
        non_expression.join(", "),
        expression.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use crate::test_values::{n, s};
    use crate::value::Item;

    fn entry(
        value: Option<Value>,
        exists: Option<bool>,
        operator: Option<ComparisonOperator>,
        values: Option<Vec<Value>>,
    ) -> Vec<(String, ExpectedEntry)> {
        vec![(
            "a".to_owned(),
            ExpectedEntry {
                value,
                exists,
                operator,
                values,
            },
        )]
    }

    fn expected_error(entries: &[(String, ExpectedEntry)]) -> String {
        match expected(entries, None) {
            Ok(condition) => panic!("accepted: {condition:?}"),
            Err(error) => error.message,
        }
    }

    fn item() -> Item {
        [
            ("a".to_owned(), s("apple")),
            ("n".to_owned(), n("5")),
            ("tags".to_owned(), Value::string_set(vec!["x".into(), "y".into()])),
        ]
        .into()
    }

    fn holds(entries: &[(String, FilterEntry)], operator: Option<ConditionalOperator>) -> bool {
        let condition = filter(entries, operator).unwrap_or_else(|e| panic!("{e}"));
        condition.is_none_or(|c| c.evaluate(Some(&item())) == Ok(true))
    }

    fn filter_entry(name: &str, operator: ComparisonOperator, values: Vec<Value>) -> (String, FilterEntry) {
        (name.to_owned(), FilterEntry { operator, values })
    }

    #[test]
    fn operators_parse_by_their_names() {
        for operator in OPERATORS {
            assert_eq!(ComparisonOperator::parse(operator.name()), Some(operator));
        }
        assert_eq!(ComparisonOperator::parse("eq"), None);
        assert_eq!(ConditionalOperator::parse("OR"), Some(ConditionalOperator::Or));
        assert_eq!(ConditionalOperator::parse("AN"), None);
    }

    #[test]
    fn expected_entries_are_checked() {
        use ComparisonOperator::*;
        let prefix = "One or more parameter values were invalid: ";
        for (entries, detail) in [
            (
                entry(None, None, None, None),
                "Value must be provided when Exists is null for Attribute: a",
            ),
            (
                entry(None, Some(true), None, None),
                "Value must be provided when Exists is true for Attribute: a",
            ),
            (
                entry(Some(s("a")), Some(false), None, None),
                "Value cannot be used when Exists is false for Attribute: a",
            ),
            (
                entry(None, None, Some(Lt), None),
                "Value or AttributeValueList must be used with ComparisonOperator: LT for Attribute: a",
            ),
            (
                entry(None, Some(true), Some(Lt), None),
                "Exists and ComparisonOperator cannot be used together for Attribute: a",
            ),
            (
                entry(Some(s("a")), None, Some(Lt), Some(vec![s("a")])),
                "Value and AttributeValueList cannot be used together for Attribute: a",
            ),
            (
                entry(None, Some(true), None, Some(vec![])),
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
            ),
            (
                entry(None, None, Some(Eq), Some(vec![])),
                "Invalid number of argument(s) for the EQ ComparisonOperator",
            ),
            (
                entry(Some(s("a")), None, Some(Null), None),
                "Invalid number of argument(s) for the NULL ComparisonOperator",
            ),
            (
                entry(Some(s("a")), None, Some(Between), None),
                "Invalid number of argument(s) for the BETWEEN ComparisonOperator",
            ),
            (
                entry(None, None, Some(In), Some(vec![s("b"), n("1")])),
                "AttributeValues inside AttributeValueList must be of same type",
            ),
            (
                entry(None, None, Some(Gt), Some(vec![Value::Bool(true)])),
                "ComparisonOperator GT is not valid for BOOL AttributeValue type",
            ),
            (
                entry(None, None, Some(Contains), Some(vec![Value::L(vec![])])),
                "ComparisonOperator CONTAINS is not valid for L AttributeValue type",
            ),
            (
                entry(None, None, Some(BeginsWith), Some(vec![n("1")])),
                "ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type",
            ),
        ] {
            assert_eq!(expected_error(&entries), format!("{prefix}{detail}"));
        }
        assert_eq!(
            expected_error(&entry(None, None, Some(Between), Some(vec![s("b"), s("a")]))),
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
        );
    }

    #[test]
    fn expected_entries_become_conditions() {
        let evaluate = |entries: Vec<(String, ExpectedEntry)>, operator| {
            expected(&entries, operator).map(|c| c.map(|c| c.evaluate(Some(&item())) == Ok(true)))
        };
        assert_eq!(
            evaluate(entry(Some(s("apple")), None, None, None), None),
            Ok(Some(true))
        );
        assert_eq!(
            evaluate(entry(Some(s("pear")), Some(true), None, None), None),
            Ok(Some(false))
        );
        assert_eq!(evaluate(entry(None, Some(false), None, None), None), Ok(Some(false)));
        assert_eq!(
            evaluate(
                entry(Some(s("app")), None, Some(ComparisonOperator::BeginsWith), None),
                None
            ),
            Ok(Some(true))
        );
        let mut two = entry(Some(s("pear")), None, None, None);
        two.push((
            "missing".to_owned(),
            ExpectedEntry {
                exists: Some(false),
                ..ExpectedEntry::default()
            },
        ));
        assert_eq!(evaluate(two.clone(), Some(ConditionalOperator::Or)), Ok(Some(true)));
        assert_eq!(evaluate(two, Some(ConditionalOperator::And)), Ok(Some(false)));
        assert_eq!(expected(&[], None), Ok(None));
    }

    #[test]
    fn filters_compare_as_their_operators_say() {
        use ComparisonOperator::*;
        assert!(holds(
            &[
                filter_entry("n", Between, vec![n("1"), n("5")]),
                filter_entry("a", Contains, vec![s("ppl")])
            ],
            None
        ));
        assert!(holds(
            &[
                filter_entry("tags", Contains, vec![s("x")]),
                filter_entry("n", In, vec![n("4"), n("5")])
            ],
            None
        ));
        assert!(holds(
            &[
                filter_entry("tags", NotContains, vec![s("z")]),
                filter_entry("gone", Null, vec![])
            ],
            None
        ));
        assert!(holds(
            &[filter_entry("n", Ne, vec![s("5")]), filter_entry("a", NotNull, vec![])],
            None
        ));
        assert!(!holds(
            &[filter_entry("n", Lt, vec![n("5")]), filter_entry("a", Ge, vec![s("b")])],
            None
        ));
        assert!(holds(
            &[
                filter_entry("n", Lt, vec![n("5")]),
                filter_entry("a", Le, vec![s("apple")])
            ],
            Some(ConditionalOperator::Or)
        ));
        assert!(!holds(&[filter_entry("n", Gt, vec![s("1")])], None));
        assert_eq!(
            filter(&[filter_entry("n", In, vec![Value::Null])], None).map_err(|e| e.message),
            Err("One or more parameter values were invalid: ComparisonOperator IN is not valid for NULL AttributeValue type".to_owned())
        );
    }

    #[test]
    fn key_conditions_are_checked_then_matched() {
        use ComparisonOperator::*;
        let count_error =
            Err("The attempted filter operation is not supported for the provided filter argument count".to_owned());
        let three = [
            filter_entry("a", Eq, vec![]),
            filter_entry("b", Null, vec![]),
            filter_entry("c", Null, vec![]),
        ];
        assert_eq!(key_conditions(&three).map_err(|e| e.message), count_error);
        let three = [
            filter_entry("a", Null, vec![]),
            filter_entry("b", Null, vec![]),
            filter_entry("c", Null, vec![]),
        ];
        assert_eq!(
            key_conditions(&three).map_err(|e| e.message),
            Err("Conditions can be of length 1 or 2 only".to_owned())
        );
        assert_eq!(
            key_conditions(&[]).map_err(|e| e.message),
            Err("Conditions can be of length 1 or 2 only".to_owned())
        );
        let unsupported = [
            filter_entry("pk", Eq, vec![s("p")]),
            filter_entry("sk", Contains, vec![s("x")]),
        ];
        assert_eq!(
            key_conditions(&unsupported).map_err(|e| e.message),
            Err("Query key condition not supported".to_owned())
        );
        let good = [
            filter_entry("sk", BeginsWith, vec![s("ab")]),
            filter_entry("pk", Eq, vec![s("p")]),
        ];
        let resolved = key_conditions(&good).and_then(|k| k.resolve("pk", Some("sk")));
        assert_eq!(
            resolved.map(|k| (k.partition, k.sort)),
            Ok((
                ("pk".to_owned(), s("p")),
                Some(("sk".to_owned(), SortCondition::BeginsWith(s("ab"))))
            ))
        );
    }

    #[test]
    fn attribute_updates_are_checked_and_applied() {
        let update = |name: &str, action, value| (name.to_owned(), AttributeUpdate { action, value });
        let prefix = "One or more parameter values were invalid: ";
        for (entry, detail) in [
            (
                update("a", AttributeAction::Put, None),
                "Only DELETE action is allowed when no attribute value is specified",
            ),
            (
                update("a", AttributeAction::Delete, Some(n("1"))),
                "DELETE action with value is not supported for the type N",
            ),
            (
                update("a", AttributeAction::Add, Some(Value::Bool(true))),
                "ADD action is not supported for the type BOOL",
            ),
            (
                update("a", AttributeAction::Add, Some(Value::B(vec![1]))),
                "ADD action is not supported for the type B",
            ),
        ] {
            assert_eq!(
                attribute_updates(&[entry]).map_err(|e| e.message),
                Err(format!("{prefix}{detail}"))
            );
        }
        let entries = [
            update("a", AttributeAction::Delete, None),
            update("n", AttributeAction::Add, Some(n("3"))),
            update("list", AttributeAction::Add, Some(Value::L(vec![s("x")]))),
            update(
                "tags",
                AttributeAction::Delete,
                Some(Value::string_set(vec!["x".into(), "y".into()])),
            ),
            update("b", AttributeAction::Put, Some(s("new"))),
        ];
        let mut item = item();
        assert_eq!(attribute_updates(&entries).and_then(|u| u.apply(&mut item)), Ok(()));
        let expected: Item = [
            ("b".to_owned(), s("new")),
            ("list".to_owned(), Value::L(vec![s("x")])),
            ("n".to_owned(), n("8")),
        ]
        .into();
        assert_eq!(item, expected);
        let mismatch = [update(
            "n",
            AttributeAction::Delete,
            Some(Value::number_set(vec![Number::from_i64(1)])),
        )];
        assert_eq!(
            attribute_updates(&mismatch)
                .and_then(|u| u.apply(&mut item))
                .map_err(|e| e.message),
            Err("Type mismatch for attribute to update".to_owned())
        );
    }

    #[test]
    fn attributes_to_get_and_mixed_parameters() {
        let names = ["a".to_owned(), "x.y".to_owned()];
        let projected =
            attributes_to_get(&names).map(|p| p.apply(&[("x.y".to_owned(), n("1")), ("z".to_owned(), n("2"))].into()));
        assert_eq!(projected, Ok([("x.y".to_owned(), n("1"))].into()));
        assert_eq!(
            attributes_to_get(&["a".to_owned(), "a".to_owned()]).map_err(|e| e.message),
            Err("One or more parameter values were invalid: Duplicate value in attribute name: a".to_owned())
        );
        assert_eq!(
            mixed_parameters_error(
                &["AttributeUpdates", "Expected"],
                &["UpdateExpression", "ConditionExpression"]
            )
            .message,
            "Can not use both expression and non-expression parameters in the same request: Non-expression \
             parameters: {AttributeUpdates, Expected} Expression parameters: {UpdateExpression, ConditionExpression}"
        );
    }
}
