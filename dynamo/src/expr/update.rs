//! Update expressions (and the legacy `AttributeUpdates`, turned into the
//! same actions): resolved from the syntax tree and checked in DynamoDB's
//! order: every placeholder defined (in the order written), `ADD` and
//! `DELETE` given values of a type they take, no two written paths that
//! overlap or conflict, then each `SET` value's functions and operators
//! (operand counts, a path where one is needed, literal operands of a
//! type the operator refuses). Applying them is `apply`'s job.

use super::ast::{ArithmeticOperator, Node, RawAction};
use super::checks::check_update;
use super::condition::operand_count_error;
use super::names::Placeholders;
use super::parser::parse_update;
use super::path::{Path, check_overlaps, resolve};
use super::{ExpressionKind, invalid};
use crate::error::ApiError;
use crate::value::{Kind, Value};
use std::collections::BTreeSet;

const KIND: ExpressionKind = ExpressionKind::Update;

/// The value a `SET` action writes, computed from the item as it was
/// before the update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateValue {
    Path(Path),
    Value(Value),
    /// The path's value if the item has it, else the fallback.
    IfNotExists(Path, Box<UpdateValue>),
    /// The first list followed by the second.
    ListAppend(Box<UpdateValue>, Box<UpdateValue>),
    Plus(Box<UpdateValue>, Box<UpdateValue>),
    Minus(Box<UpdateValue>, Box<UpdateValue>),
}

/// One change to an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Set(Path, UpdateValue),
    Remove(Path),
    /// A number added to a number, or a set's members to a set of the same type.
    Add(Path, Value),
    /// A set's members taken out of a set of the same type.
    Delete(Path, Value),
}

impl Action {
    /// The path the action writes.
    pub fn target(&self) -> &Path {
        match self {
            Action::Set(path, _) | Action::Remove(path) | Action::Add(path, _) | Action::Delete(path, _) => path,
        }
    }
}

/// The changes an update makes to an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub(crate) actions: Vec<Action>,
    /// Made from `AttributeUpdates`: its `ADD` also appends to lists, and
    /// its type mismatches say so in the legacy words.
    pub(crate) legacy: bool,
}

impl Update {
    /// Parses and checks an `UpdateExpression`.
    pub fn parse(text: &str, placeholders: &mut Placeholders) -> Result<Update, ApiError> {
        let clauses = parse_update(text)?;
        check_update(&clauses)?;
        let raw: Vec<&RawAction> = clauses.iter().flat_map(|clause| &clause.actions).collect();
        for action in &raw {
            resolve_placeholders(action, placeholders)?;
        }
        for action in &raw {
            check_add_or_delete_value(action, placeholders)?;
        }
        let targets = raw
            .iter()
            .map(|action| resolve(action.target(), placeholders, KIND))
            .collect::<Result<Vec<Path>, ApiError>>()?;
        check_overlaps(&targets.iter().collect::<Vec<&Path>>(), KIND)?;
        let mut actions = Vec::with_capacity(raw.len());
        for (action, target) in raw.into_iter().zip(targets) {
            actions.push(build_action(action, target, placeholders)?);
        }
        Ok(Update { actions, legacy: false })
    }

    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The item attributes the update writes (at the top or inside them).
    pub fn top_level_names(&self) -> BTreeSet<&str> {
        self.actions
            .iter()
            .map(|action| action.target().top_level_name())
            .collect()
    }

    /// Refuses an update that writes a key attribute (or inside one).
    pub fn check_key_attributes(&self, key_names: &[&str]) -> Result<(), ApiError> {
        let written = self.actions.iter().map(|action| action.target().top_level_name());
        match written.into_iter().find(|name| key_names.contains(name)) {
            Some(name) => Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part \
                 of the key"
            ))),
            None => Ok(()),
        }
    }
}

/// Looks up every placeholder of the action, in the order written.
fn resolve_placeholders(action: &RawAction, placeholders: &mut Placeholders) -> Result<(), ApiError> {
    resolve(action.target(), placeholders, KIND)?;
    match action {
        RawAction::Set { value, .. } => resolve_node_placeholders(value, placeholders),
        RawAction::Add { value, .. } | RawAction::Delete { value, .. } => placeholders.value(value, KIND).map(drop),
        RawAction::Remove(_) => Ok(()),
    }
}

/// Recurses along a `SET` value, whose depth the parser bounds.
fn resolve_node_placeholders(node: &Node, placeholders: &mut Placeholders) -> Result<(), ApiError> {
    match node {
        Node::Path(path) => resolve(path, placeholders, KIND).map(drop),
        Node::Value(key) => placeholders.value(key, KIND).map(drop),
        Node::Parenthesized(inner) => resolve_node_placeholders(inner, placeholders),
        Node::Call { arguments, .. } => arguments
            .iter()
            .try_for_each(|argument| resolve_node_placeholders(argument, placeholders)),
        Node::Arithmetic { left, right, .. } => {
            resolve_node_placeholders(left, placeholders)?;
            resolve_node_placeholders(right, placeholders)
        }
        _ => Ok(()),
    }
}

/// `ADD` takes a number or a set, `DELETE` a set.
fn check_add_or_delete_value(action: &RawAction, placeholders: &mut Placeholders) -> Result<(), ApiError> {
    let (operator, key, allowed): (&str, &str, &[Kind]) = match action {
        RawAction::Add { value, .. } => ("ADD", value, &[Kind::N, Kind::Ss, Kind::Ns, Kind::Bs]),
        RawAction::Delete { value, .. } => ("DELETE", value, &[Kind::Ss, Kind::Ns, Kind::Bs]),
        _ => return Ok(()),
    };
    let kind = placeholders.value(key, KIND)?.kind();
    if allowed.contains(&kind) {
        return Ok(());
    }
    Err(invalid(
        KIND,
        format!(
            "Incorrect operand type for operator or function; operator: {operator}, operand type: {}",
            type_word(kind)
        ),
    ))
}

/// The words `ADD` and `DELETE` errors name types with.
fn type_word(kind: Kind) -> &'static str {
    match kind {
        Kind::S => "STRING",
        Kind::N => "NUMBER",
        Kind::B => "BINARY",
        Kind::Bool => "BOOLEAN",
        Kind::Null => "NULL",
        Kind::L => "LIST",
        Kind::M => "MAP",
        Kind::Ss => "STRING_SET",
        Kind::Ns => "NUMBER_SET",
        Kind::Bs => "BINARY_SET",
    }
}

fn build_action(action: &RawAction, target: Path, placeholders: &mut Placeholders) -> Result<Action, ApiError> {
    Ok(match action {
        RawAction::Set { value, .. } => Action::Set(target, build_value(value, placeholders)?),
        RawAction::Remove(_) => Action::Remove(target),
        RawAction::Add { value, .. } => Action::Add(target, placeholders.value(value, KIND)?),
        RawAction::Delete { value, .. } => Action::Delete(target, placeholders.value(value, KIND)?),
    })
}

/// Recurses along a `SET` value (depth bounded by the parser), children first.
fn build_value(node: &Node, placeholders: &mut Placeholders) -> Result<UpdateValue, ApiError> {
    match node {
        Node::Parenthesized(inner) => build_value(inner, placeholders),
        Node::Path(path) => Ok(UpdateValue::Path(resolve(path, placeholders, KIND)?)),
        Node::Value(key) => Ok(UpdateValue::Value(placeholders.value(key, KIND)?)),
        Node::Call { name, arguments } => {
            let mut operands = Vec::with_capacity(arguments.len());
            for argument in arguments {
                operands.push(build_value(argument, placeholders)?);
            }
            build_function(name, operands)
        }
        Node::Arithmetic { operator, left, right } => {
            let left = build_value(left, placeholders)?;
            let right = build_value(right, placeholders)?;
            for operand in [&left, &right] {
                require_kind(operator.symbol(), operand, Kind::N)?;
            }
            let (left, right) = (Box::new(left), Box::new(right));
            Ok(match operator {
                ArithmeticOperator::Plus => UpdateValue::Plus(left, right),
                ArithmeticOperator::Minus => UpdateValue::Minus(left, right),
            })
        }
        _ => Err(invalid(KIND, "The expression is not an operand")),
    }
}

fn build_function(name: &str, operands: Vec<UpdateValue>) -> Result<UpdateValue, ApiError> {
    let count = operands.len();
    let [first, second] = <[UpdateValue; 2]>::try_from(operands).map_err(|_| operand_count_error(KIND, name, count))?;
    let second = Box::new(second);
    match name {
        "if_not_exists" => match first {
            UpdateValue::Path(path) => Ok(UpdateValue::IfNotExists(path, second)),
            _ => Err(invalid(
                KIND,
                format!("Operator or function requires a document path; operator or function: {name}"),
            )),
        },
        "list_append" => {
            require_kind(name, &first, Kind::L)?;
            require_kind(name, &second, Kind::L)?;
            Ok(UpdateValue::ListAppend(Box::new(first), second))
        }
        _ => Err(invalid(KIND, format!("Invalid function name; function: {name}"))),
    }
}

/// The type a `SET` value has whatever the item.
fn static_kind(value: &UpdateValue) -> Option<Kind> {
    match value {
        UpdateValue::Value(value) => Some(value.kind()),
        UpdateValue::ListAppend(..) => Some(Kind::L),
        UpdateValue::Plus(..) | UpdateValue::Minus(..) => Some(Kind::N),
        UpdateValue::Path(_) | UpdateValue::IfNotExists(..) => None,
    }
}

fn require_kind(name: &str, value: &UpdateValue, wanted: Kind) -> Result<(), ApiError> {
    match static_kind(value) {
        Some(kind) if kind != wanted => Err(invalid(
            KIND,
            format!(
                "Incorrect operand type for operator or function; operator or function: {name}, operand type: {}",
                kind.descriptor()
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::{n, s};
    use std::collections::BTreeMap;

    fn placeholders(values: &[(&str, Value)]) -> Placeholders {
        crate::test_values::placeholders(&[("#a", "a"), ("#b", "b"), ("#c", "c"), ("#d", "[3]")], values)
    }

    fn update_error(source: &str, values: &[(&str, Value)]) -> String {
        match Update::parse(source, &mut placeholders(values)) {
            Ok(update) => panic!("{source:?} accepted: {update:?}"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn empty_updates_are_refused() {
        assert_eq!(
            update_error("", &[]),
            "Invalid UpdateExpression: The expression can not be empty;"
        );
    }

    #[test]
    fn undefined_placeholders_in_the_order_written() {
        assert_eq!(
            update_error("SET #x = if_not_exists(:c)", &[]),
            "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; \
             attribute name: #x"
        );
        assert_eq!(
            update_error("SET #a = if_not_exists(:c)", &[]),
            "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute \
             value: :c"
        );
    }

    #[test]
    fn add_and_delete_take_numbers_and_sets() {
        for (source, value, operator, word) in [
            (
                "set b = list_append(:a, a), c = if_not_exists(a) add a.b :a",
                s("a"),
                "ADD",
                "STRING",
            ),
            ("delete a.b :a", s("a"), "DELETE", "STRING"),
            ("add a.b :a", Value::Null, "ADD", "NULL"),
            ("add a.b :a", Value::Bool(false), "ADD", "BOOLEAN"),
            ("delete a.b :a", Value::B(vec![1]), "DELETE", "BINARY"),
            ("add a.b :a", Value::M(BTreeMap::new()), "ADD", "MAP"),
            ("delete a.b :a", Value::L(vec![]), "DELETE", "LIST"),
            ("delete a.b :a", n("1"), "DELETE", "NUMBER"),
        ] {
            assert_eq!(
                update_error(source, &[(":a", value)]),
                format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: \
                     {operator}, operand type: {word}"
                ),
                "{source}"
            );
        }
    }

    #[test]
    fn written_paths_neither_overlap_nor_conflict() {
        assert_eq!(
            update_error("set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a)", &[]),
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of \
             these paths; path one: [c, [1], a], path two: [c]"
        );
        assert_eq!(
            update_error("set #c[3].#d = a, #c[3] = a", &[]),
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of \
             these paths; path one: [c, [3], [3]], path two: [c, [3]]"
        );
        assert_eq!(
            update_error("set #c[3].#d = a, #c.#d[3] = if_not_exists(a)", &[]),
            "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of \
             these paths; path one: [c, [3], [3]], path two: [c, [3], [3]]"
        );
        assert_eq!(
            update_error("remove a.#c set a[1] = #d", &[]),
            "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of \
             these paths; path one: [a, c], path two: [a, [1]]"
        );
        assert!(update_error("SET a = :v REMOVE a", &[(":v", n("1"))]).contains("overlap"));
    }

    #[test]
    fn functions_and_operators_in_set_values() {
        for source in ["set a = if_not_exists(c)", "set a = list_append(c)"] {
            let name = if source.contains("if_not") {
                "if_not_exists"
            } else {
                "list_append"
            };
            assert_eq!(
                update_error(source, &[]),
                format!(
                    "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or \
                     function: {name}, number of operands: 1"
                )
            );
        }
        assert_eq!(
            update_error("set a = if_not_exists(:a, c)", &[(":a", s("a"))]),
            "Invalid UpdateExpression: Operator or function requires a document path; operator or function: \
             if_not_exists"
        );
        assert_eq!(
            update_error("set a = if_not_exists(if_not_exists(a, b), c)", &[]),
            "Invalid UpdateExpression: Operator or function requires a document path; operator or function: \
             if_not_exists"
        );
        for (source, operator, kind) in [
            ("set a = list_append(:a, a)", "list_append", "S"),
            ("set a = list_append(a, :b)", "list_append", "N"),
            ("set a = a + :a", "+", "S"),
            ("set a = :a + :c", "+", "S"),
            ("set a = :c - a", "-", "B"),
            ("set a = a - :j", "-", "L"),
            ("set a = list_append((a + b), c)", "list_append", "N"),
        ] {
            let values = [
                (":a", s("a")),
                (":b", n("1")),
                (":c", Value::B(vec![1])),
                (":j", Value::L(vec![])),
            ];
            let used: Vec<(&str, Value)> = values
                .iter()
                .filter(|(key, _)| source.contains(key))
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            assert_eq!(
                update_error(source, &used),
                format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or \
                     function: {operator}, operand type: {kind}"
                ),
                "{source}"
            );
        }
    }

    #[test]
    fn placeholders_count_as_used_by_any_expression_of_the_request() {
        let values: BTreeMap<String, Value> = [(":a", s("a")), (":b", s("b"))].map(|(k, v)| (k.to_owned(), v)).into();
        let names: BTreeMap<String, String> = [("#a".to_owned(), "a".to_owned())].into();
        let Ok(mut placeholders) = Placeholders::new(Some(names), Some(values)) else {
            panic!("placeholders refused");
        };
        assert!(Update::parse("remove a set b = :a", &mut placeholders).is_ok());
        assert_eq!(
            placeholders.check_all_used().map_err(|e| e.message),
            Err("Value provided in ExpressionAttributeNames unused in expressions: keys: {#a}".to_owned())
        );
        let condition = crate::expr::Condition::parse_condition("#a = :b", &mut placeholders);
        assert!(condition.is_ok(), "{condition:?}");
        assert_eq!(placeholders.check_all_used(), Ok(()));
    }

    #[test]
    fn updates_resolve_to_their_actions() {
        let mut placeholders = placeholders(&[(":p", n("15")), (":s", Value::string_set(vec!["x".into()]))]);
        let parsed = Update::parse(
            "SET #a = #a - :p, b = list_append(b, c) REMOVE x[1] ADD n :p DELETE t :s",
            &mut placeholders,
        );
        let Ok(update) = parsed else {
            panic!("{parsed:?}");
        };
        let a = Path::attribute("a");
        assert_eq!(
            update.actions()[0],
            Action::Set(
                a.clone(),
                UpdateValue::Minus(Box::new(UpdateValue::Path(a)), Box::new(UpdateValue::Value(n("15"))))
            )
        );
        assert_eq!(update.actions().len(), 5);
        assert_eq!(update.top_level_names(), BTreeSet::from(["a", "b", "n", "t", "x"]));
        assert_eq!(update.check_key_attributes(&["pk", "sk"]), Ok(()));
        assert_eq!(
            update.check_key_attributes(&["pk", "x"]).map_err(|e| e.message),
            Err(
                "One or more parameter values were invalid: Cannot update attribute x. This attribute is part of \
                 the key"
                    .to_owned()
            )
        );
    }
}
