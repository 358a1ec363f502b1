//! Projection expressions (and the legacy `AttributesToGet`): the paths of
//! an item to return. Applying one keeps exactly those paths: a map keeps
//! the members named, a list the elements named, in their order and closed
//! up (`a[1], a[3]` of `[w, x, y, z]` gives `[x, z]`); a path the item does
//! not have adds nothing.

use super::ExpressionKind;
use super::checks::check_projection;
use super::names::Placeholders;
use super::parser::parse_projection;
use super::path::{Path, PathElement, check_overlaps, resolve};
use crate::error::ApiError;
use crate::value::{Item, Map, Value};
use std::collections::BTreeMap;

const KIND: ExpressionKind = ExpressionKind::Projection;

/// The paths to keep, and the same paths as a tree for applying them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Projection {
    paths: Vec<Path>,
    tree: Branch,
}

/// What to keep of a value: all of it, or some members and elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Branch {
    whole: bool,
    members: BTreeMap<String, Branch>,
    elements: BTreeMap<usize, Branch>,
}

impl Projection {
    /// Parses and checks a `ProjectionExpression`: no reserved word, every
    /// `#name` defined, no two paths that overlap or conflict.
    pub fn parse(text: &str, placeholders: &mut Placeholders) -> Result<Projection, ApiError> {
        let raw = parse_projection(text)?;
        check_projection(&raw)?;
        let paths = raw
            .iter()
            .map(|path| resolve(path, placeholders, KIND))
            .collect::<Result<Vec<Path>, ApiError>>()?;
        check_overlaps(&paths.iter().collect::<Vec<&Path>>(), KIND)?;
        Ok(Projection::of_paths(paths))
    }

    /// The projection of these paths (already checked).
    pub(crate) fn of_paths(paths: Vec<Path>) -> Projection {
        let mut tree = Branch::default();
        for path in &paths {
            tree.add(path.elements());
        }
        Projection { paths, tree }
    }

    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The parts of `item` the projection keeps.
    pub fn apply(&self, item: &Item) -> Item {
        project_members(&self.tree.members, item).unwrap_or_default()
    }
}

impl Branch {
    /// Adds a path below this branch; its length is bounded by the parser.
    fn add(&mut self, elements: &[PathElement]) {
        let Some((first, rest)) = elements.split_first() else {
            self.whole = true;
            return;
        };
        let branch = match first {
            PathElement::Name(name) => self.members.entry(name.clone()).or_default(),
            PathElement::Index(index) => self.elements.entry(*index).or_default(),
        };
        branch.add(rest);
    }

    /// What this branch keeps of `value`; nothing when none of its paths is
    /// there. Recurses as deep as the longest path.
    fn project(&self, value: &Value) -> Option<Value> {
        if self.whole {
            return Some(value.clone());
        }
        match value {
            Value::M(map) => project_members(&self.members, map).map(Value::M),
            Value::L(list) => {
                let kept: Vec<Value> = self
                    .elements
                    .iter()
                    .filter_map(|(index, branch)| list.get(*index).and_then(|element| branch.project(element)))
                    .collect();
                (!kept.is_empty()).then_some(Value::L(kept))
            }
            _ => None,
        }
    }
}

fn project_members(members: &BTreeMap<String, Branch>, map: &Map) -> Option<Map> {
    let kept: Map = members
        .iter()
        .filter_map(|(name, branch)| Some((name.clone(), branch.project(map.get(name)?)?)))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use crate::test_values::s;

    fn map(pairs: &[(&str, Value)]) -> Map {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn product() -> Item {
        let reviews = map(&[
            ("FiveStar", Value::L(vec![s("Excellent!"), s("Great")])),
            ("OneStar", Value::L(vec![s("Terrible")])),
        ]);
        map(&[
            ("Id", Value::N(Number::from_i64(123))),
            ("Title", s("Bicycle 123")),
            (
                "Pictures",
                Value::M(map(&[("FrontView", s("front")), ("RearView", s("rear"))])),
            ),
            (
                "RelatedItems",
                Value::L(vec![
                    Value::N(Number::from_i64(341)),
                    Value::N(Number::from_i64(472)),
                    Value::N(Number::from_i64(649)),
                ]),
            ),
            ("ProductReviews", Value::M(reviews)),
        ])
    }

    fn project(text: &str) -> Result<Item, String> {
        let names = [
            ("#pr".to_owned(), "ProductReviews".to_owned()),
            ("#sw".to_owned(), "Safety.Warning".to_owned()),
        ];
        let names: BTreeMap<String, String> = names
            .into_iter()
            .filter(|(key, _)| text.contains(key.as_str()))
            .collect();
        let mut placeholders = Placeholders::new((!names.is_empty()).then_some(names), None).unwrap_or_default();
        let projection = Projection::parse(text, &mut placeholders).map_err(|e| e.message)?;
        Ok(projection.apply(&product()))
    }

    #[test]
    fn top_level_and_nested_paths() {
        let expected = map(&[
            ("Title", s("Bicycle 123")),
            ("Pictures", Value::M(map(&[("RearView", s("rear"))]))),
            (
                "ProductReviews",
                Value::M(map(&[("FiveStar", Value::L(vec![s("Excellent!"), s("Great")]))])),
            ),
        ]);
        assert_eq!(project("Title, Pictures.RearView, #pr.FiveStar"), Ok(expected));
    }

    #[test]
    fn list_elements_close_up_in_index_order() {
        let expected = map(&[(
            "RelatedItems",
            Value::L(vec![Value::N(Number::from_i64(341)), Value::N(Number::from_i64(649))]),
        )]);
        assert_eq!(
            project("RelatedItems[2], RelatedItems[0], RelatedItems[7]"),
            Ok(expected)
        );
        let expected = map(&[(
            "ProductReviews",
            Value::M(map(&[("FiveStar", Value::L(vec![s("Great")]))])),
        )]);
        assert_eq!(project("#pr.FiveStar[1]"), Ok(expected));
    }

    #[test]
    fn paths_the_item_lacks_add_nothing() {
        assert_eq!(
            project("Absent, Pictures.SideView, Title[0], RelatedItems.x"),
            Ok(Item::new())
        );
        assert_eq!(project("#sw"), Ok(Item::new()));
    }

    #[test]
    fn projections_are_checked() {
        assert_eq!(
            project("Title, Pictures, Pictures.RearView"),
            Err(
                "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one \
                 of these paths; path one: [Pictures], path two: [Pictures, RearView]"
                    .to_owned()
            )
        );
        assert_eq!(
            project("#x"),
            Err(
                "Invalid ProjectionExpression: An expression attribute name used in the document path is not \
                 defined; attribute name: #x"
                    .to_owned()
            )
        );
        assert_eq!(
            project("a,"),
            Err("Invalid ProjectionExpression: Syntax error; token: \"<EOF>\", near: \",\"".to_owned())
        );
        assert_eq!(
            project("a b"),
            Err("Invalid ProjectionExpression: Syntax error; token: \"b\", near: \"a b\"".to_owned())
        );
    }
}
