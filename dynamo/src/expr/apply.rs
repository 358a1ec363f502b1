//! Applying an update to an item, as DynamoDB does. Every `SET` value is
//! computed from the item as it was before the update; then the writes
//! (`SET`, `ADD`, `DELETE`) go in path order, so that several elements set
//! past a list's end are appended in the order of their indexes; then the
//! removals go from the last path to the first, so that the indexes of
//! `REMOVE a[1], a[2]` both name the list as it was. The item changes only
//! if the whole update succeeds.

use super::path::{Path, PathElement, child};
use super::update::{Action, Update, UpdateValue};
use crate::error::ApiError;
use crate::value::{Item, Map, Value};

const MISSING_ATTRIBUTE: &str = "The provided expression refers to an attribute that does not exist in the item";
const INCORRECT_TYPE: &str = "An operand in the update expression has an incorrect data type";
const INVALID_PATH: &str = "The document path provided in the update expression is invalid for update";
/// The legacy `AttributeUpdates`' word for an `ADD` or `DELETE` of the wrong type.
const LEGACY_TYPE_MISMATCH: &str = "Type mismatch for attribute to update";

/// A write to one path.
enum Write<'a> {
    Put(Value),
    Add(&'a Value),
    Delete(&'a Value),
}

impl Update {
    /// Applies the update to `item`: the existing item, or for an item that
    /// does not exist yet, one holding only its key attributes. On an error
    /// the item is left as it was.
    pub fn apply(&self, item: &mut Item) -> Result<(), ApiError> {
        let mut writes: Vec<(&Path, Write<'_>)> = Vec::with_capacity(self.actions.len());
        let mut removals: Vec<&Path> = Vec::new();
        for action in &self.actions {
            match action {
                Action::Set(path, value) => writes.push((path, Write::Put(evaluate(value, item)?))),
                Action::Add(path, value) => writes.push((path, Write::Add(value))),
                Action::Delete(path, value) => writes.push((path, Write::Delete(value))),
                Action::Remove(path) => removals.push(path),
            }
        }
        writes.sort_by_key(|(path, _)| *path);
        let mut next = item.clone();
        for (path, write) in writes {
            if self.write(&mut next, path, write)? {
                removals.push(path);
            }
        }
        removals.sort_by(|a, b| b.cmp(a));
        for path in removals {
            remove(&mut next, item, path)?;
        }
        *item = next;
        Ok(())
    }

    /// Makes one write; answers whether it left an empty set to remove.
    fn write(&self, item: &mut Item, path: &Path, write: Write<'_>) -> Result<bool, ApiError> {
        let slot = Slot::find(item, path)?;
        let written = match write {
            Write::Put(value) => value,
            Write::Add(addend) => self.add(slot.get(), addend)?,
            Write::Delete(members) => match slot.get() {
                None => return Ok(false),
                Some(existing) => match self.delete(existing, members)? {
                    Some(rest) => rest,
                    None => return Ok(true),
                },
            },
        };
        slot.put(written);
        Ok(false)
    }

    fn mismatch(&self) -> ApiError {
        ApiError::validation(if self.legacy {
            LEGACY_TYPE_MISMATCH
        } else {
            INCORRECT_TYPE
        })
    }

    /// A number's sum, or a set's union; what `ADD` to nothing gives is the addend.
    fn add(&self, existing: Option<&Value>, addend: &Value) -> Result<Value, ApiError> {
        let Some(existing) = existing else {
            return Ok(addend.clone());
        };
        match (existing, addend) {
            (Value::N(a), Value::N(b)) => a.add(b).map(Value::N).map_err(|e| ApiError::validation(e.message())),
            (Value::Ss(a), Value::Ss(b)) => Ok(Value::string_set(union(a, b))),
            (Value::Ns(a), Value::Ns(b)) => Ok(Value::number_set(union(a, b))),
            (Value::Bs(a), Value::Bs(b)) => Ok(Value::binary_set(union(a, b))),
            (Value::L(a), Value::L(b)) if self.legacy => Ok(Value::L(union(a, b))),
            _ => Err(self.mismatch()),
        }
    }

    /// The set without `members`; `None` when nothing is left.
    fn delete(&self, existing: &Value, members: &Value) -> Result<Option<Value>, ApiError> {
        let rest = match (existing, members) {
            (Value::Ss(a), Value::Ss(b)) => Value::Ss(difference(a, b)),
            (Value::Ns(a), Value::Ns(b)) => Value::Ns(difference(a, b)),
            (Value::Bs(a), Value::Bs(b)) => Value::Bs(difference(a, b)),
            _ => return Err(self.mismatch()),
        };
        let empty = matches!(&rest, Value::Ss(m) if m.is_empty())
            || matches!(&rest, Value::Ns(m) if m.is_empty())
            || matches!(&rest, Value::Bs(m) if m.is_empty());
        Ok((!empty).then_some(rest))
    }
}

fn union<T: Clone>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().chain(b).cloned().collect()
}

/// The members of sorted `a` not in sorted `b`.
fn difference<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter()
        .filter(|member| b.binary_search(member).is_err())
        .cloned()
        .collect()
}

/// A `SET` value, from the item as it was. Recurses along the value, whose
/// depth the parser bounds.
fn evaluate(value: &UpdateValue, item: &Item) -> Result<Value, ApiError> {
    match value {
        UpdateValue::Value(value) => Ok(value.clone()),
        UpdateValue::Path(path) => path
            .get(item)
            .cloned()
            .ok_or_else(|| ApiError::validation(MISSING_ATTRIBUTE)),
        UpdateValue::IfNotExists(path, fallback) => match path.get(item) {
            Some(existing) => Ok(existing.clone()),
            None => evaluate(fallback, item),
        },
        UpdateValue::ListAppend(first, second) => match (evaluate(first, item)?, evaluate(second, item)?) {
            (Value::L(mut first), Value::L(second)) => {
                first.extend(second);
                Ok(Value::L(first))
            }
            _ => Err(ApiError::validation(INCORRECT_TYPE)),
        },
        UpdateValue::Plus(left, right) | UpdateValue::Minus(left, right) => {
            let (Value::N(left), Value::N(right)) = (evaluate(left, item)?, evaluate(right, item)?) else {
                return Err(ApiError::validation(INCORRECT_TYPE));
            };
            let result = match value {
                UpdateValue::Plus(..) => left.add(&right),
                _ => left.sub(&right),
            };
            result.map(Value::N).map_err(|e| ApiError::validation(e.message()))
        }
    }
}

/// Removes what `path` names; an index names an element of the list as it
/// was in `original`, so one past that list's old end removes nothing.
fn remove(item: &mut Item, original: &Item, path: &Path) -> Result<(), ApiError> {
    let old_length = match parent(original, path) {
        Some(Value::L(list)) => list.len(),
        _ => 0,
    };
    match Slot::find(item, path)? {
        Slot::Element(_, index) if index >= old_length => {}
        slot => slot.take(),
    }
    Ok(())
}

/// The value holding what `path` names, in `item`.
fn parent<'a>(item: &'a Item, path: &Path) -> Option<&'a Value> {
    let (_, parents) = path.elements().split_last()?;
    let (first, rest) = parents.split_first()?;
    let PathElement::Name(name) = first else {
        return None;
    };
    rest.iter()
        .try_fold(item.get(name)?, |value, element| child(value, element))
}

/// Where a path's value lives: a member of a map, or an element of a list
/// (at or past its end).
enum Slot<'a> {
    Member(&'a mut Map, &'a str),
    Element(&'a mut Vec<Value>, usize),
}

impl<'a> Slot<'a> {
    /// The slot `path` names: all but its last element must name a map or a
    /// list that exists, and the last must fit it.
    fn find(item: &'a mut Item, path: &'a Path) -> Result<Slot<'a>, ApiError> {
        let invalid = || ApiError::validation(INVALID_PATH);
        let (last, parents) = path.elements().split_last().ok_or_else(invalid)?;
        let Some((first, rest)) = parents.split_first() else {
            return match last {
                PathElement::Name(name) => Ok(Slot::Member(item, name)),
                PathElement::Index(_) => Err(invalid()),
            };
        };
        let PathElement::Name(name) = first else {
            return Err(invalid());
        };
        let mut container = item.get_mut(name).ok_or_else(invalid)?;
        for element in rest {
            container = child_mut(container, element).ok_or_else(invalid)?;
        }
        match (container, last) {
            (Value::M(map), PathElement::Name(name)) => Ok(Slot::Member(map, name)),
            (Value::L(list), PathElement::Index(index)) => Ok(Slot::Element(list, *index)),
            _ => Err(invalid()),
        }
    }

    fn get(&self) -> Option<&Value> {
        match self {
            Slot::Member(map, name) => map.get(*name),
            Slot::Element(list, index) => list.get(*index),
        }
    }

    /// Writes the value; an element past the list's end is appended.
    fn put(self, value: Value) {
        match self {
            Slot::Member(map, name) => {
                map.insert(name.to_owned(), value);
            }
            Slot::Element(list, index) => match list.get_mut(index) {
                Some(element) => *element = value,
                None => list.push(value),
            },
        }
    }

    fn take(self) {
        match self {
            Slot::Member(map, name) => {
                map.remove(name);
            }
            Slot::Element(list, index) => {
                if index < list.len() {
                    list.remove(index);
                }
            }
        }
    }
}

fn child_mut<'v>(value: &'v mut Value, element: &PathElement) -> Option<&'v mut Value> {
    match (value, element) {
        (Value::M(map), PathElement::Name(name)) => map.get_mut(name),
        (Value::L(list), PathElement::Index(index)) => list.get_mut(*index),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::names::Placeholders;
    use crate::number::Number;
    use crate::test_values::{n, s};
    use std::collections::BTreeMap;

    fn ss(members: &[&str]) -> Value {
        Value::string_set(members.iter().map(|m| (*m).to_owned()).collect())
    }

    fn apply(source: &str, values: &[(&str, Value)], item: &Item) -> Result<Item, String> {
        let values: BTreeMap<String, Value> = values.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let names: BTreeMap<String, String> = [("#1".to_owned(), "1".to_owned())].into();
        let names = source.contains("#1").then_some(names);
        let mut placeholders = Placeholders::new(names, (!values.is_empty()).then_some(values)).unwrap_or_default();
        let update = Update::parse(source, &mut placeholders).map_err(|e| e.message)?;
        let mut updated = item.clone();
        match update.apply(&mut updated) {
            Ok(()) => Ok(updated),
            Err(error) => {
                assert_eq!(&updated, item, "a failed update changed the item");
                Err(error.message)
            }
        }
    }

    fn item(pairs: &[(&str, Value)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn product() -> Item {
        item(&[
            ("Id", n("789")),
            ("Price", n("52")),
            (
                "RelatedItems",
                Value::L(["Chisel", "Hammer", "Nails", "Screwdriver", "Hacksaw"].map(s).to_vec()),
            ),
            ("Color", ss(&["Orange", "Purple"])),
        ])
    }

    fn number_at(item: &Result<Item, String>, name: &str) -> Option<String> {
        match item.as_ref().ok()?.get(name)? {
            Value::N(number) => Some(number.to_string()),
            _ => None,
        }
    }

    #[test]
    fn set_modifies_adds_and_computes() {
        let updated = apply(
            "SET Price = Price - :p, Brand = :b",
            &[(":p", n("15")), (":b", s("Acme"))],
            &product(),
        );
        assert_eq!(number_at(&updated, "Price").as_deref(), Some("37"));
        assert_eq!(updated.map(|i| i.get("Brand").cloned()), Ok(Some(s("Acme"))));
        let source = "SET Price = if_not_exists(Price, :p), Stock = if_not_exists(Stock, :p)";
        let kept = apply(source, &[(":p", n("100"))], &product());
        assert_eq!(number_at(&kept, "Price").as_deref(), Some("52"));
        assert_eq!(number_at(&kept, "Stock").as_deref(), Some("100"));
        let tiny = n("0.000000000000000000000000000000000001");
        let exact = apply("SET Price = Price + :p", &[(":p", tiny)], &product());
        assert_eq!(
            number_at(&exact, "Price").as_deref(),
            Some("52.000000000000000000000000000000000001")
        );
        assert_eq!(
            apply(
                "SET Price = Price + :p",
                &[(":p", n("1E+125"))],
                &item(&[("Price", n("9.9E+125"))])
            ),
            Err("Number overflow. Attempting to store a number with magnitude larger than supported range".to_owned())
        );
    }

    #[test]
    fn values_come_from_the_item_before_the_update() {
        let start = item(&[("a", n("1")), ("b", n("2"))]);
        let swapped = apply("SET a = b, b = a", &[], &start);
        assert_eq!(swapped, Ok(item(&[("a", n("2")), ("b", n("1"))])));
    }

    #[test]
    fn list_append_and_list_indexes() {
        let appended = apply(
            "SET RelatedItems = list_append(:v, RelatedItems)",
            &[(":v", Value::L(vec![s("Saw")]))],
            &product(),
        );
        let list = appended.map(|i| i.get("RelatedItems").cloned());
        assert_eq!(
            list,
            Ok(Some(Value::L(
                ["Saw", "Chisel", "Hammer", "Nails", "Screwdriver", "Hacksaw"]
                    .map(s)
                    .to_vec()
            )))
        );
        let replaced_and_appended = apply(
            "SET RelatedItems[1] = :a, RelatedItems[9] = :c, RelatedItems[7] = :b",
            &[(":a", s("A")), (":b", s("B")), (":c", s("C"))],
            &product(),
        );
        assert_eq!(
            replaced_and_appended.map(|i| i.get("RelatedItems").cloned()),
            Ok(Some(Value::L(
                ["Chisel", "A", "Nails", "Screwdriver", "Hacksaw", "B", "C"]
                    .map(s)
                    .to_vec()
            )))
        );
    }

    #[test]
    fn remove_attributes_and_list_elements() {
        let removed = apply("REMOVE RelatedItems[1], RelatedItems[2], Brand, Color", &[], &product());
        let expected = item(&[
            ("Id", n("789")),
            ("Price", n("52")),
            (
                "RelatedItems",
                Value::L(["Chisel", "Screwdriver", "Hacksaw"].map(s).to_vec()),
            ),
        ]);
        assert_eq!(removed, Ok(expected));
        let past_end = apply("REMOVE RelatedItems[7]", &[], &product());
        assert_eq!(past_end, Ok(product()));
        let appended_then_kept = apply(
            "SET RelatedItems[8] = :v REMOVE RelatedItems[5]",
            &[(":v", s("New"))],
            &product(),
        );
        assert_eq!(
            appended_then_kept.map(|i| i.get("RelatedItems").cloned()),
            Ok(Some(Value::L(
                ["Chisel", "Hammer", "Nails", "Screwdriver", "Hacksaw", "New"]
                    .map(s)
                    .to_vec()
            )))
        );
    }

    #[test]
    fn add_numbers_and_sets() {
        let added = apply(
            "ADD Price :p, Quantity :q, Color :c",
            &[(":p", n("-2")), (":q", n("5")), (":c", ss(&["Yellow", "Orange"]))],
            &product(),
        );
        let added = added.map(|i| {
            (
                i.get("Price").cloned(),
                i.get("Quantity").cloned(),
                i.get("Color").cloned(),
            )
        });
        assert_eq!(
            added,
            Ok((Some(n("50")), Some(n("5")), Some(ss(&["Orange", "Purple", "Yellow"]))))
        );
        assert_eq!(
            apply("ADD Color :n", &[(":n", n("1"))], &product()),
            Err(INCORRECT_TYPE.to_owned())
        );
        let ns = Value::number_set(vec![Number::from_i64(1)]);
        assert_eq!(
            apply("ADD Color :n", &[(":n", ns)], &product()),
            Err(INCORRECT_TYPE.to_owned())
        );
    }

    #[test]
    fn delete_takes_members_and_removes_an_emptied_set() {
        let deleted = apply("DELETE Color :c", &[(":c", ss(&["Yellow", "Purple"]))], &product());
        assert_eq!(deleted.map(|i| i.get("Color").cloned()), Ok(Some(ss(&["Orange"]))));
        let emptied = apply("DELETE Color :c", &[(":c", ss(&["Orange", "Purple"]))], &product());
        assert_eq!(emptied.map(|i| i.contains_key("Color")), Ok(false));
        assert_eq!(
            apply("DELETE Absent :c", &[(":c", ss(&["x"]))], &product()),
            Ok(product())
        );
        assert_eq!(
            apply("DELETE Price :c", &[(":c", ss(&["x"]))], &product()),
            Err(INCORRECT_TYPE.to_owned())
        );
    }

    #[test]
    fn nested_updates_from_the_old_item_in_index_order() {
        let start = item(&[
            ("a", s("key")),
            (
                "b",
                Value::M(
                    [
                        ("a".to_owned(), n("1")),
                        ("b".to_owned(), n("2")),
                        ("c".to_owned(), n("3")),
                    ]
                    .into(),
                ),
            ),
            ("c", Value::L(vec![n("1"), n("3")])),
        ]);
        let updated = apply(
            "set b.c=((c[1])+(b.a)),b.a = a,c[1] = a, c[4] = b.a - b.b, c[2] = b.c add c[8] :b, c[6] :a",
            &[(":a", n("2")), (":b", ss(&["a"]))],
            &start,
        );
        let expected = item(&[
            ("a", s("key")),
            (
                "b",
                Value::M(
                    [
                        ("a".to_owned(), s("key")),
                        ("b".to_owned(), n("2")),
                        ("c".to_owned(), n("4")),
                    ]
                    .into(),
                ),
            ),
            (
                "c",
                Value::L(vec![n("1"), s("key"), n("3"), n("-1"), n("2"), ss(&["a"])]),
            ),
        ]);
        assert_eq!(updated, Ok(expected));
    }

    #[test]
    fn missing_attributes_wrong_types_and_invalid_paths() {
        let start = item(&[
            ("a", s("key")),
            ("b", s("text")),
            ("c", Value::M([("1".to_owned(), s("a"))].into())),
            ("d", Value::L(vec![s("a"), s("b")])),
        ]);
        assert_eq!(apply("set x = y", &[], &start), Err(MISSING_ATTRIBUTE.to_owned()));
        assert_eq!(
            apply("set x = list_append(y, d)", &[], &start),
            Err(MISSING_ATTRIBUTE.to_owned())
        );
        assert_eq!(apply("set x = b + a", &[], &start), Err(INCORRECT_TYPE.to_owned()));
        assert_eq!(
            apply("set x = list_append(d, c)", &[], &start),
            Err(INCORRECT_TYPE.to_owned())
        );
        for source in [
            "set b.a = :a",
            "set b[1] = :a",
            "set y.a = :a",
            "set c[1] = :a",
            "set d.#1 = :a",
            "remove b.a",
            "remove y[1]",
            "remove c[1]",
            "remove d.#1",
            "delete y.a :a",
            "add c[1] :a",
            "add d.#1 :a",
        ] {
            assert_eq!(
                apply(source, &[(":a", ss(&["a"]))], &start),
                Err(INVALID_PATH.to_owned()),
                "{source}"
            );
        }
        let no_item = Item::new();
        assert_eq!(
            apply("set b.a = :a", &[(":a", n("1"))], &no_item),
            Err(INVALID_PATH.to_owned())
        );
        assert_eq!(apply("remove c.x, d[5]", &[], &start), Ok(start.clone()));
    }
}
