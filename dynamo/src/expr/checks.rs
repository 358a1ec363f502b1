//! The checks DynamoDB makes on a whole expression once its syntax holds and
//! before it looks at placeholders or types, in DynamoDB's order:
//! redundant parentheses, function names, where each function may stand,
//! reserved words (and, for updates, each clause at most once).
//!
//! Every walk here recurses along the tree, whose depth the parser bounds
//! by [`EXPRESSION_NESTING_DEPTH_MAX`](super::EXPRESSION_NESTING_DEPTH_MAX).

use super::ast::{Node, RawAction, RawClause, RawElement, RawPath};
use super::reserved::is_reserved;
use super::{ExpressionKind, invalid};
use crate::error::ApiError;

/// The functions of conditions, in condition position (all but `size`).
const CONDITION_FUNCTIONS: [&str; 5] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];
/// The function of conditions that yields an operand.
const SIZE_FUNCTION: &str = "size";
/// The functions of `SET` actions.
const UPDATE_FUNCTIONS: [&str; 2] = ["if_not_exists", "list_append"];

/// The checks of a condition, filter or key condition tree.
pub(crate) fn check_condition(node: &Node, kind: ExpressionKind) -> Result<(), ApiError> {
    visit(node, &mut |node| refuse_redundant_parentheses(node, kind))?;
    visit(node, &mut |node| refuse_unknown_function(node, kind))?;
    check_condition_places(node, Place::Condition, kind)?;
    visit(node, &mut |node| match node {
        Node::Path(path) => refuse_reserved(path, kind),
        _ => Ok(()),
    })
}

/// The checks of an update expression's clauses.
pub(crate) fn check_update(clauses: &[RawClause]) -> Result<(), ApiError> {
    let kind = ExpressionKind::Update;
    let values = || clauses.iter().flat_map(|clause| &clause.actions).filter_map(set_value);
    for value in values() {
        visit(value, &mut |node| refuse_unknown_function(node, kind))?;
    }
    for value in values() {
        visit(value, &mut refuse_condition_function_in_update)?;
    }
    for action in clauses.iter().flat_map(|clause| &clause.actions) {
        refuse_reserved(action.target(), kind)?;
        if let Some(value) = set_value(action) {
            visit(value, &mut |node| match node {
                Node::Path(path) => refuse_reserved(path, kind),
                _ => Ok(()),
            })?;
        }
    }
    refuse_repeated_clause(clauses)
}

/// The checks of a projection expression's paths.
pub(crate) fn check_projection(paths: &[RawPath]) -> Result<(), ApiError> {
    paths
        .iter()
        .try_for_each(|path| refuse_reserved(path, ExpressionKind::Projection))
}

fn set_value(action: &RawAction) -> Option<&Node> {
    match action {
        RawAction::Set { value, .. } => Some(value),
        _ => None,
    }
}

/// Calls `check` on every node, parents before children, left to right.
fn visit(node: &Node, check: &mut impl FnMut(&Node) -> Result<(), ApiError>) -> Result<(), ApiError> {
    check(node)?;
    match node {
        Node::Path(_) | Node::Value(_) => Ok(()),
        Node::Call { arguments: nodes, .. } | Node::And(nodes) | Node::Or(nodes) => {
            nodes.iter().try_for_each(|child| visit(child, check))
        }
        Node::Parenthesized(inner) | Node::Not(inner) => visit(inner, check),
        Node::Compare { left, right, .. } | Node::Arithmetic { left, right, .. } => {
            visit(left, check)?;
            visit(right, check)
        }
        Node::Between { value, low, high } => [value, low, high].into_iter().try_for_each(|child| visit(child, check)),
        Node::In { value, list } => {
            visit(value, check)?;
            list.iter().try_for_each(|child| visit(child, check))
        }
    }
}

fn refuse_redundant_parentheses(node: &Node, kind: ExpressionKind) -> Result<(), ApiError> {
    match node {
        Node::Parenthesized(inner) if matches!(**inner, Node::Parenthesized(_)) => {
            Err(invalid(kind, "The expression has redundant parentheses;"))
        }
        _ => Ok(()),
    }
}

fn refuse_unknown_function(node: &Node, kind: ExpressionKind) -> Result<(), ApiError> {
    match node {
        Node::Call { name, .. } if !is_known_function(name) => {
            Err(invalid(kind, format!("Invalid function name; function: {name}")))
        }
        _ => Ok(()),
    }
}

/// Function names are case-sensitive.
fn is_known_function(name: &str) -> bool {
    name == SIZE_FUNCTION || CONDITION_FUNCTIONS.contains(&name) || UPDATE_FUNCTIONS.contains(&name)
}

/// Where a node stands in a condition.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Condition,
    Operand,
}

/// Refuses a function where it may not stand: `size` as a condition, the
/// other condition functions as operands, update functions anywhere.
fn check_condition_places(node: &Node, place: Place, kind: ExpressionKind) -> Result<(), ApiError> {
    match node {
        Node::Call { name, arguments } => {
            if UPDATE_FUNCTIONS.contains(&name.as_str()) {
                return Err(invalid(
                    kind,
                    format!("The function is not allowed in a condition expression; function: {name}"),
                ));
            }
            if (name == SIZE_FUNCTION) != (place == Place::Operand) {
                return Err(invalid(
                    kind,
                    format!("The function is not allowed to be used this way in an expression; function: {name}"),
                ));
            }
            arguments
                .iter()
                .try_for_each(|argument| check_condition_places(argument, Place::Operand, kind))
        }
        Node::Parenthesized(inner) => check_condition_places(inner, place, kind),
        Node::Not(inner) => check_condition_places(inner, Place::Condition, kind),
        Node::And(nodes) | Node::Or(nodes) => nodes
            .iter()
            .try_for_each(|child| check_condition_places(child, Place::Condition, kind)),
        Node::Compare { left, right, .. } | Node::Arithmetic { left, right, .. } => {
            check_condition_places(left, Place::Operand, kind)?;
            check_condition_places(right, Place::Operand, kind)
        }
        Node::Between { value, low, high } => [value, low, high]
            .into_iter()
            .try_for_each(|child| check_condition_places(child, Place::Operand, kind)),
        Node::In { value, list } => {
            check_condition_places(value, Place::Operand, kind)?;
            list.iter()
                .try_for_each(|child| check_condition_places(child, Place::Operand, kind))
        }
        Node::Path(_) | Node::Value(_) => Ok(()),
    }
}

fn refuse_condition_function_in_update(node: &Node) -> Result<(), ApiError> {
    match node {
        Node::Call { name, .. } if !UPDATE_FUNCTIONS.contains(&name.as_str()) => Err(invalid(
            ExpressionKind::Update,
            format!("The function is not allowed in an update expression; function: {name}"),
        )),
        _ => Ok(()),
    }
}

fn refuse_reserved(path: &RawPath, kind: ExpressionKind) -> Result<(), ApiError> {
    for element in &path.elements {
        if let RawElement::Name(name) = element
            && is_reserved(name)
        {
            return Err(invalid(
                kind,
                format!("Attribute name is a reserved keyword; reserved keyword: {name}"),
            ));
        }
    }
    Ok(())
}

fn refuse_repeated_clause(clauses: &[RawClause]) -> Result<(), ApiError> {
    for (at, clause) in clauses.iter().enumerate() {
        let earlier = clauses.get(..at).unwrap_or_default();
        if earlier.iter().any(|other| other.kind == clause.kind) {
            return Err(invalid(
                ExpressionKind::Update,
                format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    clause.kind.keyword()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parser::{parse_condition, parse_projection, parse_update};

    fn filter_error(source: &str) -> String {
        let checked = parse_condition(source, ExpressionKind::Filter)
            .and_then(|node| check_condition(&node, ExpressionKind::Filter));
        match checked {
            Ok(()) => panic!("{source:?} passed"),
            Err(error) => error.message,
        }
    }

    fn update_error(source: &str) -> String {
        match parse_update(source).and_then(|clauses| check_update(&clauses)) {
            Ok(()) => panic!("{source:?} passed"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn redundant_parentheses_come_first() {
        for source in [
            "a=a and a > ((views))",
            "a > whatever((:things), ((a)))",
            "a=a AND ((a=a AND a=a)) AND a=a",
            "a=a OR ((a=a OR (a=a OR a=a)))",
        ] {
            assert_eq!(
                filter_error(source),
                "Invalid FilterExpression: The expression has redundant parentheses;",
                "{source}"
            );
        }
    }

    #[test]
    fn function_names_are_known_and_case_sensitive() {
        for (source, name) in [
            ("a=a and whatever((:things)) > a", "whatever"),
            ("attRIbute_exIsts((views), #a)", "attRIbute_exIsts"),
        ] {
            assert_eq!(
                filter_error(source),
                format!("Invalid FilterExpression: Invalid function name; function: {name}")
            );
        }
    }

    #[test]
    fn functions_stand_only_where_they_may() {
        for (source, name) in [
            ("a=a and attribute_exists((views), (#a)) > b", "attribute_exists"),
            ("attribute_not_exists(things) > b", "attribute_not_exists"),
            ("contains(:things, c) > b", "contains"),
            ("size(contains(a, b)) > a", "contains"),
            ("size(things)", "size"),
            ("a between b and attribute_exists(things)", "attribute_exists"),
            ("a in (b, attribute_exists(things))", "attribute_exists"),
        ] {
            assert_eq!(
                filter_error(source),
                format!(
                    "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: {name}"
                ),
                "{source}"
            );
        }
        assert_eq!(
            filter_error("if_not_exists(a, :b) = c"),
            "Invalid FilterExpression: The function is not allowed in a condition expression; function: if_not_exists"
        );
        assert_eq!(
            update_error("SET x = size(:val)"),
            "Invalid UpdateExpression: The function is not allowed in an update expression; function: size"
        );
    }

    #[test]
    fn reserved_words_must_be_aliased() {
        assert_eq!(
            filter_error("attribute_exists(views, #a)"),
            "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: views"
        );
        assert_eq!(
            filter_error(":a < abOrT"),
            "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: abOrT"
        );
        assert_eq!(
            filter_error("a.b.status = :v"),
            "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: status"
        );
        assert_eq!(
            update_error(" set #c = :c set abOrt = true "),
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: abOrt"
        );
        assert_eq!(
            update_error(" remove Absolute "),
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: Absolute"
        );
        let projected = parse_projection("a, Comment").and_then(|paths| check_projection(&paths));
        assert_eq!(
            projected.map_err(|e| e.message),
            Err(
                "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: Comment"
                    .to_owned()
            )
        );
    }

    #[test]
    fn each_update_clause_appears_once() {
        for (source, keyword) in [
            ("set a = #c set c = :d", "SET"),
            ("remove #d set a = b remove e", "REMOVE"),
            ("add #d :e set a = b add e :f", "ADD"),
            ("delete #d :e set a = b delete #e :f", "DELETE"),
        ] {
            assert_eq!(
                update_error(source),
                format!(
                    "Invalid UpdateExpression: The \"{keyword}\" section can only be used once in an update expression;"
                )
            );
        }
        assert_eq!(
            update_error("set #c = if_not_exist(:c) set c = d"),
            "Invalid UpdateExpression: Invalid function name; function: if_not_exist"
        );
    }
}
