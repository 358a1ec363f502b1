//! Key condition expressions (and the legacy `KeyConditions`): an equality
//! on the partition key and, optionally, `AND` one condition on the sort
//! key, in either order. Parsing checks what DynamoDB checks without the
//! table (the condition rules, then only `AND`, comparisons other than
//! `<>`, `BETWEEN` and `begins_with`, each between one attribute and
//! values); [`KeyConditions::resolve`] then matches the terms to the key
//! schema's names.

use super::ast::Comparator;
use super::condition::{Condition, Operand, parse_checked};
use super::evaluate::begins_with;
use super::names::Placeholders;
use super::path::Path;
use super::{ExpressionKind, invalid};
use crate::error::ApiError;
use crate::value::Value;
use crate::value::order;
use std::cmp::Ordering;

const KIND: ExpressionKind = ExpressionKind::KeyCondition;

/// A condition on the sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortCondition {
    Equal(Value),
    Less(Value),
    LessOrEqual(Value),
    Greater(Value),
    GreaterOrEqual(Value),
    Between(Value, Value),
    BeginsWith(Value),
}

impl SortCondition {
    /// Whether a sort key value meets the condition (values of another type
    /// never do).
    pub fn matches(&self, key: &Value) -> bool {
        let compared = |bound: &Value| order(key, bound);
        match self {
            SortCondition::Equal(bound) => compared(bound) == Some(Ordering::Equal),
            SortCondition::Less(bound) => compared(bound) == Some(Ordering::Less),
            SortCondition::LessOrEqual(bound) => matches!(compared(bound), Some(Ordering::Less | Ordering::Equal)),
            SortCondition::Greater(bound) => compared(bound) == Some(Ordering::Greater),
            SortCondition::GreaterOrEqual(bound) => {
                matches!(compared(bound), Some(Ordering::Greater | Ordering::Equal))
            }
            SortCondition::Between(low, high) => {
                matches!(compared(low), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(compared(high), Some(Ordering::Less | Ordering::Equal))
            }
            SortCondition::BeginsWith(prefix) => begins_with(key, prefix),
        }
    }
}

/// A query's key condition, matched to the key schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCondition {
    /// The partition key's name and value.
    pub partition: (String, Value),
    /// The sort key's name and condition, if the query has one.
    pub sort: Option<(String, SortCondition)>,
}

/// One term of a key condition: an attribute and its condition (an
/// equality on the partition key is a `SortCondition::Equal` here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyTerm {
    pub attribute: String,
    pub condition: SortCondition,
}

/// A key condition's terms, as written, before the key schema is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyConditions {
    pub(crate) terms: Vec<KeyTerm>,
}

impl KeyConditions {
    /// Parses and checks a `KeyConditionExpression`.
    pub fn parse(text: &str, placeholders: &mut Placeholders) -> Result<KeyConditions, ApiError> {
        let condition = parse_checked(text, KIND, placeholders)?;
        let mut conjuncts = Vec::new();
        flatten(&condition, &mut conjuncts)?;
        let terms = conjuncts
            .into_iter()
            .map(term)
            .collect::<Result<Vec<KeyTerm>, ApiError>>()?;
        Ok(KeyConditions { terms })
    }

    /// Matches the terms to the key schema: one equality on the partition
    /// key, at most one condition on the sort key, nothing else.
    pub fn resolve(&self, partition_key: &str, sort_key: Option<&str>) -> Result<KeyCondition, ApiError> {
        let on = |name: &'_ str| self.terms.iter().filter(|term| term.attribute == name).count();
        if on(partition_key) > 1 || sort_key.is_some_and(|sort| on(sort) > 1) {
            return Err(ApiError::validation(
                "KeyConditionExpressions must only contain one condition per key",
            ));
        }
        let Some(partition) = self.terms.iter().find(|term| term.attribute == partition_key) else {
            return Err(ApiError::validation(format!(
                "Query condition missed key schema element: {partition_key}"
            )));
        };
        let SortCondition::Equal(partition_value) = &partition.condition else {
            return Err(ApiError::validation("Query key condition not supported"));
        };
        let others = self.terms.iter().filter(|term| term.attribute != partition_key);
        let mut sort = None;
        for other in others {
            match sort_key {
                Some(sort_key) if other.attribute == sort_key => {
                    sort = Some((sort_key.to_owned(), other.condition.clone()))
                }
                Some(sort_key) => {
                    return Err(ApiError::validation(format!(
                        "Query condition missed key schema element: {sort_key}"
                    )));
                }
                None => return Err(ApiError::validation("Query key condition not supported")),
            }
        }
        Ok(KeyCondition {
            partition: (partition_key.to_owned(), partition_value.clone()),
            sort,
        })
    }
}

/// The conditions joined by `AND`, refusing any other operator. Recurses
/// along nested `AND`s, whose depth the parser bounds.
fn flatten<'c>(condition: &'c Condition, conjuncts: &mut Vec<&'c Condition>) -> Result<(), ApiError> {
    let operator = match condition {
        Condition::And(inner) => return inner.iter().try_for_each(|inner| flatten(inner, conjuncts)),
        Condition::Compare {
            comparator: Comparator::NotEqual,
            ..
        } => "<>",
        Condition::Or(_) => "OR",
        Condition::Not(_) => "NOT",
        Condition::In { .. } => "IN",
        Condition::AttributeExists(_) => "attribute_exists",
        Condition::AttributeNotExists(_) => "attribute_not_exists",
        Condition::AttributeType { .. } => "attribute_type",
        Condition::Contains { .. } => "contains",
        Condition::Compare { .. } | Condition::Between { .. } | Condition::BeginsWith { .. } => {
            conjuncts.push(condition);
            return Ok(());
        }
    };
    Err(invalid(
        KIND,
        format!("Invalid operator used in KeyConditionExpression: {operator}"),
    ))
}

/// A term: a top-level attribute on one side, values on the other.
fn term(condition: &Condition) -> Result<KeyTerm, ApiError> {
    let unsupported = || ApiError::validation("Query key condition not supported");
    let (attribute, condition) = match condition {
        Condition::Compare {
            comparator,
            left,
            right,
        } => match (left, right) {
            (Operand::Path(path), Operand::Value(value)) => (path, compared(*comparator, value)),
            (Operand::Value(value), Operand::Path(path)) => (path, compared(comparator.swapped(), value)),
            _ => return Err(unsupported()),
        },
        Condition::Between {
            value: Operand::Path(path),
            low: Operand::Value(low),
            high: Operand::Value(high),
        } => (path, SortCondition::Between(low.clone(), high.clone())),
        Condition::BeginsWith {
            value: Operand::Path(path),
            prefix: Operand::Value(prefix),
        } => (path, SortCondition::BeginsWith(prefix.clone())),
        _ => return Err(unsupported()),
    };
    let attribute = top_level(attribute).ok_or_else(unsupported)?;
    Ok(KeyTerm { attribute, condition })
}

fn compared(comparator: Comparator, value: &Value) -> SortCondition {
    let value = value.clone();
    match comparator {
        Comparator::Less => SortCondition::Less(value),
        Comparator::LessOrEqual => SortCondition::LessOrEqual(value),
        Comparator::Greater => SortCondition::Greater(value),
        Comparator::GreaterOrEqual => SortCondition::GreaterOrEqual(value),
        Comparator::Equal | Comparator::NotEqual => SortCondition::Equal(value),
    }
}

fn top_level(path: &Path) -> Option<String> {
    path.is_top_level().then(|| path.top_level_name().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::{n, s};
    use std::collections::BTreeMap;

    fn parse(text: &str) -> Result<KeyConditions, String> {
        let values: BTreeMap<String, Value> = [(":pk", s("p1")), (":a", s("a")), (":z", s("z")), (":n", n("5"))]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
        let values: BTreeMap<String, Value> = values
            .into_iter()
            .filter(|(key, _)| text.contains(key.as_str()))
            .collect();
        let names: BTreeMap<String, String> = [("#s".to_owned(), "status".to_owned())].into();
        let names = text.contains("#s").then_some(names);
        let mut placeholders = Placeholders::new(names, (!values.is_empty()).then_some(values)).unwrap_or_default();
        KeyConditions::parse(text, &mut placeholders).map_err(|e| e.message)
    }

    fn resolve(text: &str, sort_key: Option<&str>) -> Result<KeyCondition, String> {
        parse(text)?.resolve("pk", sort_key).map_err(|e| e.message)
    }

    #[test]
    fn partition_alone_or_with_one_sort_condition_in_either_order() {
        assert_eq!(
            resolve("pk = :pk", None),
            Ok(KeyCondition {
                partition: ("pk".into(), s("p1")),
                sort: None
            })
        );
        for (text, sort) in [
            ("pk = :pk AND sk = :a", SortCondition::Equal(s("a"))),
            ("sk < :a AND pk = :pk", SortCondition::Less(s("a"))),
            (":a >= sk AND pk = :pk", SortCondition::LessOrEqual(s("a"))),
            ("pk = :pk AND sk > :a", SortCondition::Greater(s("a"))),
            ("(pk = :pk) AND (sk >= :a)", SortCondition::GreaterOrEqual(s("a"))),
            (
                "pk = :pk AND sk BETWEEN :a AND :z",
                SortCondition::Between(s("a"), s("z")),
            ),
            ("begins_with(sk, :a) AND :pk = pk", SortCondition::BeginsWith(s("a"))),
        ] {
            assert_eq!(
                resolve(text, Some("sk")),
                Ok(KeyCondition {
                    partition: ("pk".into(), s("p1")),
                    sort: Some(("sk".into(), sort))
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn operators_a_key_condition_cannot_use() {
        for (text, operator) in [
            ("pk = :pk OR sk = :a", "OR"),
            ("pk = :pk AND NOT sk = :a", "NOT"),
            ("pk = :pk AND sk <> :a", "<>"),
            ("pk IN (:pk, :a)", "IN"),
            ("pk = :pk AND attribute_exists(sk)", "attribute_exists"),
            ("pk = :pk AND contains(sk, :a)", "contains"),
        ] {
            assert_eq!(
                parse(text),
                Err(format!(
                    "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: {operator}"
                )),
                "{text}"
            );
        }
        assert_eq!(
            parse("pk = :pk AND begins_with(sk, :n)"),
            Err(
                "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or \
                 function: begins_with, operand type: N"
                    .to_owned()
            )
        );
        assert_eq!(
            parse("status = :a"),
            Err(
                "Invalid KeyConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"
                    .to_owned()
            )
        );
        assert_eq!(
            parse("pk = :pk AND sk BETWEEN :z AND :a")
                .err()
                .map(|m| m.contains("requires upper bound")),
            Some(true)
        );
        for text in ["pk = sk", "pk.x = :pk", "size(pk) = :n", "pk[0] = :pk"] {
            assert_eq!(
                parse(text),
                Err("Query key condition not supported".to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn terms_must_match_the_key_schema() {
        assert_eq!(
            resolve("sk = :a", Some("sk")),
            Err("Query condition missed key schema element: pk".to_owned())
        );
        assert_eq!(
            resolve("pk < :pk", Some("sk")),
            Err("Query key condition not supported".to_owned())
        );
        assert_eq!(
            resolve("pk = :pk AND #s = :a", Some("sk")),
            Err("Query condition missed key schema element: sk".to_owned())
        );
        assert_eq!(
            resolve("pk = :pk AND extra = :a", None),
            Err("Query key condition not supported".to_owned())
        );
        assert_eq!(
            resolve("pk = :pk AND sk > :a AND sk < :z", Some("sk")),
            Err("KeyConditionExpressions must only contain one condition per key".to_owned())
        );
        assert_eq!(
            resolve("pk = :pk AND pk = :a", Some("sk")),
            Err("KeyConditionExpressions must only contain one condition per key".to_owned())
        );
    }

    #[test]
    fn sort_conditions_match_values_of_their_type() {
        assert!(SortCondition::Between(n("1"), n("10")).matches(&n("10")));
        assert!(!SortCondition::Between(n("1"), n("10")).matches(&n("10.5")));
        assert!(!SortCondition::Less(n("1")).matches(&s("0")));
        assert!(SortCondition::BeginsWith(s("ab")).matches(&s("abc")));
        assert!(SortCondition::BeginsWith(Value::B(vec![1])).matches(&Value::B(vec![1, 2])));
        assert!(SortCondition::Equal(n("2")).matches(&n("2.0")));
        assert!(SortCondition::GreaterOrEqual(Value::B(vec![0x7f])).matches(&Value::B(vec![0x80])));
    }
}
