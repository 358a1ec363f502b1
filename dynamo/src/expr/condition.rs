//! Conditions (condition, filter and key condition expressions, and the
//! legacy `Expected`/`ScanFilter`/`QueryFilter` turned into the same tree):
//! resolved from the syntax tree with their placeholders looked up, and
//! checked as DynamoDB checks them before reading any item: functions'
//! operand counts, operands that must be paths, literal operands of a type
//! the operator refuses, a path compared with itself, `BETWEEN` bounds.
//!
//! The checks run node by node, children first, left to right; DynamoDB
//! reports the first it meets in that order (an undefined `:value` before
//! its function's operand count, `a = a` before a later undefined value).

use super::ast::{Comparator, Node};
use super::checks::check_condition;
use super::names::Placeholders;
use super::parser::parse_condition;
use super::path::{Path, resolve};
use super::{ExpressionKind, IN_OPERANDS_MAX, invalid};
use crate::error::ApiError;
use crate::json::base64;
use crate::value::order;
use crate::value::{Kind, Value};
use std::cmp::Ordering;

/// What a condition compares: an item's attribute, a value of the request,
/// or the size of either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    Path(Path),
    Value(Value),
    Size(Box<Operand>),
}

/// A condition on an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Compare {
        comparator: Comparator,
        left: Operand,
        right: Operand,
    },
    Between {
        value: Operand,
        low: Operand,
        high: Operand,
    },
    In {
        value: Operand,
        list: Vec<Operand>,
    },
    AttributeExists(Path),
    AttributeNotExists(Path),
    AttributeType {
        path: Path,
        type_name: Operand,
    },
    BeginsWith {
        value: Operand,
        prefix: Operand,
    },
    Contains {
        value: Operand,
        member: Operand,
    },
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

impl Condition {
    /// Parses and checks a `ConditionExpression`.
    pub fn parse_condition(text: &str, placeholders: &mut Placeholders) -> Result<Condition, ApiError> {
        parse_checked(text, ExpressionKind::Condition, placeholders)
    }

    /// Parses and checks a `FilterExpression`.
    pub fn parse_filter(text: &str, placeholders: &mut Placeholders) -> Result<Condition, ApiError> {
        parse_checked(text, ExpressionKind::Filter, placeholders)
    }
}

/// Parses, checks and resolves a condition of the given kind.
pub(crate) fn parse_checked(
    text: &str,
    kind: ExpressionKind,
    placeholders: &mut Placeholders,
) -> Result<Condition, ApiError> {
    let node = parse_condition(text, kind)?;
    check_condition(&node, kind)?;
    Resolver { kind, placeholders }.condition(&node)
}

/// The type an operand has whatever the item: a value's, or a size's.
fn static_kind(operand: &Operand) -> Option<Kind> {
    match operand {
        Operand::Path(_) => None,
        Operand::Value(value) => Some(value.kind()),
        Operand::Size(_) => Some(Kind::N),
    }
}

fn is_scalar(kind: Kind) -> bool {
    matches!(kind, Kind::S | Kind::N | Kind::B)
}

/// As DynamoDB's messages write a value: `{S:abc}` (binaries in base64).
fn shown(value: &Value) -> String {
    let text = match value {
        Value::S(text) => text.clone(),
        Value::N(number) => number.to_string(),
        Value::B(bytes) => base64(bytes),
        other => format!("{other:?}"),
    };
    format!("{{{}:{text}}}", value.kind().descriptor())
}

pub(crate) fn operand_count_error(kind: ExpressionKind, name: &str, count: usize) -> ApiError {
    invalid(
        kind,
        format!(
            "Incorrect number of operands for operator or function; operator or function: {name}, number of \
             operands: {count}"
        ),
    )
}

/// Turns checked syntax into a [`Condition`], looking placeholders up and
/// making the checks that need them.
struct Resolver<'p> {
    kind: ExpressionKind,
    placeholders: &'p mut Placeholders,
}

impl Resolver<'_> {
    /// Recurses along the tree (depth bounded by the parser).
    fn condition(&mut self, node: &Node) -> Result<Condition, ApiError> {
        match node {
            Node::Parenthesized(inner) => self.condition(inner),
            Node::Not(inner) => Ok(Condition::Not(Box::new(self.condition(inner)?))),
            Node::And(nodes) => Ok(Condition::And(self.conditions(nodes)?)),
            Node::Or(nodes) => Ok(Condition::Or(self.conditions(nodes)?)),
            Node::Compare {
                comparator,
                left,
                right,
            } => self.compare(*comparator, left, right),
            Node::Between { value, low, high } => self.between(value, low, high),
            Node::In { value, list } => self.in_list(value, list),
            Node::Call { name, arguments } => self.function(name, arguments),
            Node::Path(_) | Node::Value(_) | Node::Arithmetic { .. } => {
                Err(invalid(self.kind, "The expression is not a condition"))
            }
        }
    }

    fn conditions(&mut self, nodes: &[Node]) -> Result<Vec<Condition>, ApiError> {
        nodes.iter().map(|node| self.condition(node)).collect()
    }

    fn operand(&mut self, node: &Node) -> Result<Operand, ApiError> {
        match node {
            Node::Parenthesized(inner) => self.operand(inner),
            Node::Path(path) => Ok(Operand::Path(resolve(path, self.placeholders, self.kind)?)),
            Node::Value(key) => Ok(Operand::Value(self.placeholders.value(key, self.kind)?)),
            Node::Call { name, arguments } if name == "size" => self.size(arguments),
            _ => Err(invalid(self.kind, "The expression is not an operand")),
        }
    }

    fn operands(&mut self, nodes: &[Node]) -> Result<Vec<Operand>, ApiError> {
        nodes.iter().map(|node| self.operand(node)).collect()
    }

    fn size(&mut self, arguments: &[Node]) -> Result<Operand, ApiError> {
        let operands = self.operands(arguments)?;
        let [argument] = self.take("size", operands)?;
        let sized = |kind: Kind| !matches!(kind, Kind::N | Kind::Bool | Kind::Null);
        self.require_kind("size", &argument, sized)?;
        Ok(Operand::Size(Box::new(argument)))
    }

    fn compare(&mut self, comparator: Comparator, left: &Node, right: &Node) -> Result<Condition, ApiError> {
        let left = self.operand(left)?;
        let right = self.operand(right)?;
        if comparator.is_ordering() {
            self.require_kind(comparator.symbol(), &left, is_scalar)?;
            self.require_kind(comparator.symbol(), &right, is_scalar)?;
        }
        self.require_distinct(comparator.symbol(), &left, std::slice::from_ref(&right))?;
        Ok(Condition::Compare {
            comparator,
            left,
            right,
        })
    }

    fn between(&mut self, value: &Node, low: &Node, high: &Node) -> Result<Condition, ApiError> {
        let value = self.operand(value)?;
        let low = self.operand(low)?;
        let high = self.operand(high)?;
        for operand in [&value, &low, &high] {
            self.require_kind("BETWEEN", operand, is_scalar)?;
        }
        self.require_distinct("BETWEEN", &value, &[low.clone(), high.clone()])?;
        if let (Operand::Value(low), Operand::Value(high)) = (&low, &high) {
            self.check_bounds(low, high)?;
        }
        Ok(Condition::Between { value, low, high })
    }

    fn check_bounds(&self, low: &Value, high: &Value) -> Result<(), ApiError> {
        let bounds = format!(
            "lower bound operand: AttributeValue: {}, upper bound operand: AttributeValue: {}",
            shown(low),
            shown(high)
        );
        if low.kind() != high.kind() {
            return Err(invalid(
                self.kind,
                format!("The BETWEEN operator requires same data type for lower and upper bounds; {bounds}"),
            ));
        }
        if order(low, high) == Some(Ordering::Greater) {
            return Err(invalid(
                self.kind,
                format!(
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; {bounds}"
                ),
            ));
        }
        Ok(())
    }

    fn in_list(&mut self, value: &Node, list: &[Node]) -> Result<Condition, ApiError> {
        let value = self.operand(value)?;
        let list = self.operands(list)?;
        if list.len() > IN_OPERANDS_MAX {
            return Err(invalid(
                self.kind,
                format!(
                    "The IN operator is provided with too many operands; number of operands: {}",
                    list.len()
                ),
            ));
        }
        self.require_distinct("IN", &value, &list)?;
        Ok(Condition::In { value, list })
    }

    fn function(&mut self, name: &str, arguments: &[Node]) -> Result<Condition, ApiError> {
        let operands = self.operands(arguments)?;
        match name {
            "attribute_exists" | "attribute_not_exists" => {
                let [operand] = self.take(name, operands)?;
                let path = self.require_path(name, operand)?;
                Ok(match name {
                    "attribute_exists" => Condition::AttributeExists(path),
                    _ => Condition::AttributeNotExists(path),
                })
            }
            "attribute_type" => self.attribute_type(operands),
            "begins_with" => {
                let [value, prefix] = self.take(name, operands)?;
                let textual = |kind: Kind| matches!(kind, Kind::S | Kind::B);
                self.require_kind(name, &value, textual)?;
                self.require_kind(name, &prefix, textual)?;
                self.require_distinct(name, &value, std::slice::from_ref(&prefix))?;
                Ok(Condition::BeginsWith { value, prefix })
            }
            "contains" => {
                let [value, member] = self.take(name, operands)?;
                self.require_distinct(name, &value, std::slice::from_ref(&member))?;
                Ok(Condition::Contains { value, member })
            }
            _ => Err(invalid(self.kind, format!("Invalid function name; function: {name}"))),
        }
    }

    fn attribute_type(&mut self, operands: Vec<Operand>) -> Result<Condition, ApiError> {
        let name = "attribute_type";
        let [path, type_name] = self.take(name, operands)?;
        let path = self.require_path(name, path)?;
        self.require_kind(name, &type_name, |kind| kind == Kind::S)?;
        if let Operand::Value(Value::S(text)) = &type_name
            && Kind::from_descriptor(text).is_none()
        {
            return Err(invalid(
                self.kind,
                format!(
                    "Invalid attribute type name found; type: {text}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                ),
            ));
        }
        self.require_distinct(name, &Operand::Path(path.clone()), std::slice::from_ref(&type_name))?;
        Ok(Condition::AttributeType { path, type_name })
    }

    /// The function's operands, refusing any other number of them.
    fn take<const COUNT: usize>(&self, name: &str, operands: Vec<Operand>) -> Result<[Operand; COUNT], ApiError> {
        let count = operands.len();
        operands
            .try_into()
            .map_err(|_| operand_count_error(self.kind, name, count))
    }

    fn require_path(&self, name: &str, operand: Operand) -> Result<Path, ApiError> {
        match operand {
            Operand::Path(path) => Ok(path),
            _ => Err(invalid(
                self.kind,
                format!("Operator or function requires a document path; operator or function: {name}"),
            )),
        }
    }

    /// Refuses an operand whose type is known now and not one `allowed`.
    fn require_kind(&self, name: &str, operand: &Operand, allowed: impl Fn(Kind) -> bool) -> Result<(), ApiError> {
        match static_kind(operand) {
            Some(kind) if !allowed(kind) => Err(invalid(
                self.kind,
                format!(
                    "Incorrect operand type for operator or function; operator or function: {name}, operand type: {}",
                    kind.descriptor()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses a first operand that is a path also among the others.
    fn require_distinct(&self, name: &str, first: &Operand, others: &[Operand]) -> Result<(), ApiError> {
        let Operand::Path(path) = first else {
            return Ok(());
        };
        if !others
            .iter()
            .any(|other| matches!(other, Operand::Path(other) if other == path))
        {
            return Ok(());
        }
        Err(invalid(
            self.kind,
            format!(
                "The first operand must be distinct from the remaining operands for this operator or function; \
                 operator: {name}, first operand: {path}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::{n, s};

    fn placeholders(values: &[(&str, Value)]) -> Placeholders {
        crate::test_values::placeholders(&[("#a", "a")], values)
    }

    fn filter_error(source: &str, values: &[(&str, Value)]) -> String {
        match Condition::parse_filter(source, &mut placeholders(values)) {
            Ok(condition) => panic!("{source:?} accepted: {condition:?}"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn placeholders_resolve_in_the_order_written() {
        assert_eq!(
            filter_error("attribute_exists(#Pictures.RearView, :a) and a=a", &[]),
            "Invalid FilterExpression: An expression attribute name used in the document path is not defined; \
             attribute name: #Pictures"
        );
        assert_eq!(
            filter_error("begins_with(:hello, #a, #b)", &[]),
            "Invalid FilterExpression: An expression attribute value used in expression is not defined; attribute \
             value: :hello"
        );
        assert_eq!(
            filter_error("a = a AND #a = b AND :views > a", &[]),
            "Invalid FilterExpression: The first operand must be distinct from the remaining operands for this \
             operator or function; operator: =, first operand: [a]"
        );
    }

    #[test]
    fn functions_take_their_number_of_operands() {
        for (source, name, count) in [
            ("attribute_exists(things, a) and a=a", "attribute_exists", 2),
            ("attribute_not_exists(things, b)", "attribute_not_exists", 2),
            ("attribute_type(things)", "attribute_type", 1),
            ("begins_with(things)", "begins_with", 1),
            ("begins_with(things, size(a), b)", "begins_with", 3),
            ("contains(things)", "contains", 1),
            ("size(things, a) > b", "size", 2),
        ] {
            assert_eq!(
                filter_error(source, &[]),
                format!(
                    "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or \
                     function: {name}, number of operands: {count}"
                ),
                "{source}"
            );
        }
    }

    #[test]
    fn literal_operands_of_a_refused_type() {
        let set = Value::string_set(vec!["1".into()]);
        for (source, name, value) in [
            ("attribute_type(a, size(a)) and a=a and a=:a", "attribute_type", n("1")),
            ("attribute_type(a, :a)", "attribute_type", Value::Bool(true)),
            ("begins_with(a, size(a)) and a=:a", "begins_with", n("1")),
            ("begins_with(a, :a)", "begins_with", set.clone()),
            ("begins_with(:a, a)", "begins_with", Value::Null),
            ("size(size(a)) > :a", "size", n("1")),
            ("attribute_not_exists(size(:a))", "size", n("1")),
            ("size(:a) > a", "size", Value::Bool(true)),
            ("a < :a", "<", Value::Bool(false)),
            (":a >= b", ">=", Value::L(vec![])),
            ("a BETWEEN :a AND b", "BETWEEN", set),
        ] {
            let kind = value.kind().descriptor();
            assert_eq!(
                filter_error(source, &[(":a", value)]),
                format!(
                    "Invalid FilterExpression: Incorrect operand type for operator or function; operator or \
                     function: {name}, operand type: {kind}"
                ),
                "{source}"
            );
        }
    }

    #[test]
    fn attribute_types_are_named_by_descriptors() {
        assert_eq!(
            filter_error("attribute_type(a, :a)", &[(":a", s("1"))]),
            "Invalid FilterExpression: Invalid attribute type name found; type: 1, valid types: \
             {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
        );
        assert_eq!(
            filter_error("attribute_exists(:a) and a=a", &[(":a", s("1"))]),
            "Invalid FilterExpression: Operator or function requires a document path; operator or function: \
             attribute_exists"
        );
        let mut placeholders = placeholders(&[(":t", s("SS"))]);
        let parsed = Condition::parse_filter("attribute_type(#a.b, :t)", &mut placeholders);
        assert!(matches!(parsed, Ok(Condition::AttributeType { .. })), "{parsed:?}");
    }

    #[test]
    fn a_path_is_not_compared_with_itself() {
        for (source, operator, path) in [
            ("#a <> a", "<>", "[a]"),
            ("((a=a) OR (a=a))", "=", "[a]"),
            ("contains(ab.bc[1].a, ab.bc[1].#a)", "contains", "[ab, bc, [1], a]"),
            (
                "attribute_type(ab.bc[1].#a, ab.bc[1].a)",
                "attribute_type",
                "[ab, bc, [1], a]",
            ),
            (
                "begins_with(ab.bc[1].a, ab.bc[1].#a)",
                "begins_with",
                "[ab, bc, [1], a]",
            ),
            ("a BETWEEN b AND a", "BETWEEN", "[a]"),
            ("a IN (b, #a)", "IN", "[a]"),
        ] {
            assert_eq!(
                filter_error(source, &[]),
                format!(
                    "Invalid FilterExpression: The first operand must be distinct from the remaining operands for \
                     this operator or function; operator: {operator}, first operand: {path}"
                ),
                "{source}"
            );
        }
        let mut same_values = placeholders(&[(":a", s("x"))]);
        assert!(Condition::parse_filter(":a > :a", &mut same_values).is_ok());
    }

    #[test]
    fn between_bounds_must_agree_and_ascend() {
        assert_eq!(
            filter_error("a between :b and :a", &[(":a", s("a")), (":b", n("1"))]),
            "Invalid FilterExpression: The BETWEEN operator requires same data type for lower and upper bounds; \
             lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}"
        );
        assert_eq!(
            filter_error("a between :b and :a", &[(":a", s("a")), (":b", s("b"))]),
            "Invalid FilterExpression: The BETWEEN operator requires upper bound to be greater than or equal to \
             lower bound; lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}"
        );
        assert_eq!(
            filter_error(
                "a between :b and :a",
                &[(":a", Value::B(vec![0])), (":b", Value::B(vec![255]))]
            ),
            "Invalid FilterExpression: The BETWEEN operator requires upper bound to be greater than or equal to \
             lower bound; lower bound operand: AttributeValue: {B:/w==}, upper bound operand: AttributeValue: {B:AA==}"
        );
        let mut equal_bounds = placeholders(&[(":a", n("5"))]);
        assert!(Condition::parse_filter("a between :a and :a", &mut equal_bounds).is_ok());
    }

    #[test]
    fn in_lists_hold_at_most_a_hundred_operands() {
        let list = |count: usize| (0..count).map(|i| format!("b{i}")).collect::<Vec<_>>().join(", ");
        let mut none = Placeholders::default();
        assert!(Condition::parse_filter(&format!("a IN ({})", list(IN_OPERANDS_MAX)), &mut none).is_ok());
        assert_eq!(
            filter_error(&format!("a IN ({})", list(IN_OPERANDS_MAX + 1)), &[]),
            "Invalid FilterExpression: The IN operator is provided with too many operands; number of operands: 101"
        );
    }

    #[test]
    fn conditions_resolve_to_their_tree() {
        let mut placeholders = placeholders(&[(":v", n("3")), (":p", s("ab"))]);
        let parsed = Condition::parse_condition("NOT (size(#a) > :v) OR begins_with(b[1], :p)", &mut placeholders);
        let expected = Condition::Or(vec![
            Condition::Not(Box::new(Condition::Compare {
                comparator: Comparator::Greater,
                left: Operand::Size(Box::new(Operand::Path(Path::attribute("a")))),
                right: Operand::Value(n("3")),
            })),
            Condition::BeginsWith {
                value: Operand::Path(
                    Path::from_elements(vec![
                        crate::expr::PathElement::Name("b".into()),
                        crate::expr::PathElement::Index(1),
                    ])
                    .unwrap_or_else(|| Path::attribute("?")),
                ),
                prefix: Operand::Value(s("ab")),
            },
        ]);
        assert_eq!(parsed, Ok(expected));
        assert_eq!(placeholders.check_all_used(), Ok(()));
    }
}
