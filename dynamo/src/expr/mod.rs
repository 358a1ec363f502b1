//! DynamoDB's expressions: condition, filter, key condition, update and
//! projection expressions parsed from their text, checked as DynamoDB checks
//! them (with its messages), and evaluated on items; and the legacy
//! parameters (`Expected`, `AttributeUpdates`, `KeyConditions`...) turned
//! into the same trees, so one evaluator serves both.
//!
//! # How the request layer uses it
//! ```text
//! let mut placeholders = Placeholders::new(names, values)?;    // ExpressionAttributeNames/Values
//! let condition = Condition::parse_condition(text, &mut placeholders)?;
//! let update = Update::parse(text, &mut placeholders)?;
//! placeholders.check_all_used()?;                               // once, after every expression
//! update.check_key_attributes(&["pk", "sk"])?;
//! if !condition.evaluate(old_item.as_ref())? { /* ConditionalCheckFailed */ }
//! update.apply(&mut item)?;                                     // then size::check_item(&item)
//! ```
//! - [`Condition::parse_condition`] / [`Condition::parse_filter`], then
//!   [`Condition::evaluate`]`(Option<&Item>) -> Result<bool, ApiError>`.
//! - [`Update::parse`], [`Update::apply`]`(&mut Item)`,
//!   [`Update::top_level_names`] and [`Update::check_key_attributes`].
//! - [`Projection::parse`], [`Projection::apply`]`(&Item) -> Item`.
//! - [`KeyConditions::parse`], then [`KeyConditions::resolve`] with the key
//!   schema's names gives a [`KeyCondition`].
//! - The legacy parameters: [`legacy`]'s `expected`, `filter`,
//!   `key_conditions`, `attribute_updates`, `attributes_to_get`, and the
//!   message for a request that mixes them with expressions;
//!   [`names_without_expressions_error`] and
//!   [`values_without_expressions_error`] for placeholders with no
//!   expression to use them.
//!
//! # Layout
//! - `lexer`: the text into tokens.
//! - `ast`: the syntax trees the parser builds, placeholders unresolved.
//! - `parser`: the grammars, and the syntax errors with DynamoDB's `near`.
//! - `checks`: the checks DynamoDB makes on a whole tree before resolving
//!   it (parentheses, function names and places, reserved words).
//! - `names`: the expression attribute names and values, and which were used.
//! - `path`: document paths, and their overlaps and conflicts.
//! - `condition`: conditions resolved and checked; `evaluate`: their truth on an item.
//! - `update`: update expressions resolved and checked; `apply`: applying them.
//! - `projection`, `key_condition`: the other two kinds.
//! - [`legacy`]: the legacy parameters, into the same trees.
//! - `reserved`: DynamoDB's reserved words.

mod apply;
mod ast;
mod checks;
mod condition;
mod evaluate;
mod key_condition;
pub mod legacy;
mod lexer;
mod names;
mod parser;
mod path;
mod projection;
mod reserved;
mod update;

#[cfg(test)]
mod soup;

pub use ast::Comparator;
pub use condition::{Condition, Operand};
pub use key_condition::{KeyCondition, KeyConditions, SortCondition};
pub use names::{Placeholders, names_without_expressions_error, values_without_expressions_error};
pub use path::{Path, PathElement};
pub use projection::Projection;
pub use update::{Action, Update, UpdateValue};

use crate::error::ApiError;
use std::fmt;

pub(crate) use crate::limits::{EXPRESSION_BYTES_MAX, IN_OPERANDS_MAX};

/// Operators and functions one expression may hold: the documented limit of
/// an update expression, applied to every kind.
pub(crate) const OPERATORS_MAX: usize = crate::limits::UPDATE_EXPRESSION_OPERATORS_MAX;
/// Elements a document path may have: items nest at most this deep.
pub(crate) const PATH_ELEMENTS_MAX: usize = crate::limits::NESTING_DEPTH_MAX;
/// Bytes an expression attribute name or value placeholder may have.
pub(crate) const PLACEHOLDER_BYTES_MAX: usize = crate::limits::EXPRESSION_PLACEHOLDER_BYTES_MAX;
/// Parentheses, `NOT`s and function calls nested in one another: a bound of
/// ours (DynamoDB documents none) that keeps the parser's recursion, and
/// every walk over the trees it builds, shallow whatever the request holds.
pub const EXPRESSION_NESTING_DEPTH_MAX: usize = 64;

/// Which parameter an expression came in: its errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpressionKind {
    Condition,
    Filter,
    KeyCondition,
    Update,
    Projection,
}

impl ExpressionKind {
    /// The request parameter's name, as error messages write it.
    pub fn parameter_name(self) -> &'static str {
        match self {
            ExpressionKind::Condition => "ConditionExpression",
            ExpressionKind::Filter => "FilterExpression",
            ExpressionKind::KeyCondition => "KeyConditionExpression",
            ExpressionKind::Update => "UpdateExpression",
            ExpressionKind::Projection => "ProjectionExpression",
        }
    }
}

/// A `ValidationException` for an expression: `Invalid <parameter>: <detail>`.
pub(crate) fn invalid(kind: ExpressionKind, detail: impl fmt::Display) -> ApiError {
    ApiError::validation(format!("Invalid {}: {detail}", kind.parameter_name()))
}
