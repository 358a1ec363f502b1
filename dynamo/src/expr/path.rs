//! Document paths: an attribute, then map members and list elements
//! (`a.b[3].c`), with placeholders resolved. Finding what a path names in
//! an item, and the rule that the paths one expression writes (or projects)
//! may neither overlap nor conflict.

use super::ast::{RawElement, RawPath};
use super::names::Placeholders;
use super::{ExpressionKind, invalid};
use crate::error::ApiError;
use crate::value::{Item, Value};
use std::fmt;

/// One step of a path: a map member or a list element.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    Name(String),
    Index(usize),
}

/// A document path; it always starts with a name (the item's attribute).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path {
    elements: Vec<PathElement>,
}

impl Path {
    /// The path of a top-level attribute.
    pub fn attribute(name: impl Into<String>) -> Path {
        Path {
            elements: vec![PathElement::Name(name.into())],
        }
    }

    /// The path these elements make, if they start with a name.
    pub fn from_elements(elements: Vec<PathElement>) -> Option<Path> {
        match elements.first() {
            Some(PathElement::Name(_)) => Some(Path { elements }),
            _ => None,
        }
    }

    pub fn elements(&self) -> &[PathElement] {
        &self.elements
    }

    /// The item attribute the path starts at.
    pub fn top_level_name(&self) -> &str {
        match self.elements.first() {
            Some(PathElement::Name(name)) => name,
            _ => "",
        }
    }

    /// Whether the path is a top-level attribute alone.
    pub fn is_top_level(&self) -> bool {
        self.elements.len() == 1
    }

    /// What the path names in `item`, if anything.
    pub fn get<'a>(&self, item: &'a Item) -> Option<&'a Value> {
        let mut value = item.get(self.top_level_name())?;
        for element in self.elements.get(1..)? {
            value = child(value, element)?;
        }
        Some(value)
    }

    /// Whether one path is the other or lies inside it.
    pub fn overlaps(&self, other: &Path) -> bool {
        self.elements.iter().zip(&other.elements).all(|(a, b)| a == b)
    }

    /// Whether the paths part where one takes a member and the other an
    /// element of the same value (it cannot be both a map and a list).
    pub fn conflicts(&self, other: &Path) -> bool {
        let parting = self.elements.iter().zip(&other.elements).find(|(a, b)| a != b);
        matches!(
            parting,
            Some((PathElement::Name(_), PathElement::Index(_)) | (PathElement::Index(_), PathElement::Name(_)))
        )
    }
}

/// As DynamoDB's messages write a path: `[a, b, [3]]`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (position, element) in self.elements.iter().enumerate() {
            if position > 0 {
                f.write_str(", ")?;
            }
            match element {
                PathElement::Name(name) => f.write_str(name)?,
                PathElement::Index(index) => write!(f, "[{index}]")?,
            }
        }
        f.write_str("]")
    }
}

/// The member or element `element` names in `value`, if it has one.
pub(crate) fn child<'a>(value: &'a Value, element: &PathElement) -> Option<&'a Value> {
    match (value, element) {
        (Value::M(map), PathElement::Name(name)) => map.get(name),
        (Value::L(list), PathElement::Index(index)) => list.get(*index),
        _ => None,
    }
}

/// The path a written path stands for, its `#name`s looked up.
pub(crate) fn resolve(raw: &RawPath, placeholders: &mut Placeholders, kind: ExpressionKind) -> Result<Path, ApiError> {
    let mut elements = Vec::with_capacity(raw.elements.len());
    for element in &raw.elements {
        elements.push(match element {
            RawElement::Name(name) => PathElement::Name(name.clone()),
            RawElement::Placeholder(key) => PathElement::Name(placeholders.name(key, kind)?),
            RawElement::Index(index) => PathElement::Index(*index),
        });
    }
    // The parser starts every path with a name or a `#name`.
    Path::from_elements(elements).ok_or_else(|| invalid(kind, "The document path must start with an attribute name"))
}

/// A relation two paths may not have.
type PathRule = fn(&Path, &Path) -> bool;

/// Refuses two paths that overlap, then two that conflict: the first such
/// pair, the earlier path first.
pub(crate) fn check_overlaps(paths: &[&Path], kind: ExpressionKind) -> Result<(), ApiError> {
    let rules: [(PathRule, &str); 2] = [(Path::overlaps, "overlap with"), (Path::conflicts, "conflict with")];
    for (rule, verb) in rules {
        for (later_at, later) in paths.iter().enumerate() {
            let earlier = paths.get(..later_at).unwrap_or_default();
            if let Some(earlier) = earlier.iter().find(|earlier| rule(earlier, later)) {
                return Err(invalid(
                    kind,
                    format!(
                        "Two document paths {verb} each other; must remove or rewrite one of these paths; \
                         path one: {earlier}, path two: {later}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;

    fn path(elements: &[PathElement]) -> Path {
        Path::from_elements(elements.to_vec()).unwrap_or_else(|| Path::attribute("?"))
    }

    fn name(text: &str) -> PathElement {
        PathElement::Name(text.to_owned())
    }

    fn item() -> Item {
        let inner: crate::value::Map = [("c".to_owned(), Value::N(Number::from_i64(7)))].into();
        let list = Value::L(vec![Value::S("zero".into()), Value::M(inner)]);
        let outer: crate::value::Map = [("b".to_owned(), list)].into();
        [("a".to_owned(), Value::M(outer))].into()
    }

    #[test]
    fn paths_find_members_and_elements() {
        let item = item();
        let deep = path(&[name("a"), name("b"), PathElement::Index(1), name("c")]);
        assert_eq!(deep.get(&item), Some(&Value::N(Number::from_i64(7))));
        let first = path(&[name("a"), name("b"), PathElement::Index(0)]);
        assert_eq!(first.get(&item), Some(&Value::S("zero".into())));
        for missing in [
            path(&[name("a"), name("b"), PathElement::Index(2)]),
            path(&[name("a"), PathElement::Index(0)]),
            path(&[name("a"), name("b"), name("c")]),
            path(&[name("x")]),
        ] {
            assert_eq!(missing.get(&item), None, "{missing}");
        }
    }

    #[test]
    fn paths_print_as_dynamodb_writes_them() {
        let printed = path(&[name("c"), PathElement::Index(3), name("[3]")]).to_string();
        assert_eq!(printed, "[c, [3], [3]]");
        assert_eq!(Path::from_elements(vec![PathElement::Index(0)]), None);
    }

    #[test]
    fn overlapping_and_conflicting_paths_are_refused_in_order() {
        let d1 = path(&[name("d"), PathElement::Index(1)]);
        let db = path(&[name("d"), name("b")]);
        let c1a = path(&[name("c"), PathElement::Index(1), name("a")]);
        let c = path(&[name("c")]);
        assert_eq!(
            check_overlaps(&[&d1, &db, &c1a, &c], ExpressionKind::Update).map_err(|e| e.message),
            Err(
                "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one \
                 of these paths; path one: [c, [1], a], path two: [c]"
                    .to_owned()
            )
        );
        let ac = path(&[name("a"), name("c")]);
        let a1 = path(&[name("a"), PathElement::Index(1)]);
        assert_eq!(
            check_overlaps(&[&ac, &a1], ExpressionKind::Projection).map_err(|e| e.message),
            Err(
                "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite \
                 one of these paths; path one: [a, c], path two: [a, [1]]"
                    .to_owned()
            )
        );
        let same = path(&[name("x")]);
        assert!(check_overlaps(&[&same, &same], ExpressionKind::Update).is_err());
        let siblings = [
            path(&[name("m"), name("a")]),
            path(&[name("m"), name("b")]),
            path(&[name("l")]),
        ];
        let refs: Vec<&Path> = siblings.iter().collect();
        assert_eq!(check_overlaps(&refs, ExpressionKind::Update), Ok(()));
    }
}
