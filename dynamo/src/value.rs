//! Attribute values and items, as DynamoDB defines them: scalars (S, N, B,
//! BOOL, NULL), documents (L, M) and sets (SS, NS, BS).
//!
//! Sets are kept sorted and without duplicates (strings and binaries by
//! bytes, numbers numerically), so two equal sets are equal values.

use crate::number::Number;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A map's or an item's attributes, by name.
pub type Map = BTreeMap<String, Value>;

/// An item: its attributes by name (the key attributes among them).
pub type Item = Map;

/// One attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<Value>),
    M(Map),
    /// Sorted by bytes, no duplicates, not empty.
    Ss(Vec<String>),
    /// Sorted numerically, no duplicates, not empty.
    Ns(Vec<Number>),
    /// Sorted by bytes, no duplicates, not empty.
    Bs(Vec<Vec<u8>>),
}

/// The type descriptors of the wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    S,
    N,
    B,
    Bool,
    Null,
    L,
    M,
    Ss,
    Ns,
    Bs,
}

impl Kind {
    /// The descriptor as DynamoDB writes it (`"S"`, `"BOOL"`, `"SS"`...).
    pub fn descriptor(self) -> &'static str {
        match self {
            Kind::S => "S",
            Kind::N => "N",
            Kind::B => "B",
            Kind::Bool => "BOOL",
            Kind::Null => "NULL",
            Kind::L => "L",
            Kind::M => "M",
            Kind::Ss => "SS",
            Kind::Ns => "NS",
            Kind::Bs => "BS",
        }
    }

    pub fn from_descriptor(text: &str) -> Option<Kind> {
        Some(match text {
            "S" => Kind::S,
            "N" => Kind::N,
            "B" => Kind::B,
            "BOOL" => Kind::Bool,
            "NULL" => Kind::Null,
            "L" => Kind::L,
            "M" => Kind::M,
            "SS" => Kind::Ss,
            "NS" => Kind::Ns,
            "BS" => Kind::Bs,
            _ => return None,
        })
    }
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::S(_) => Kind::S,
            Value::N(_) => Kind::N,
            Value::B(_) => Kind::B,
            Value::Bool(_) => Kind::Bool,
            Value::Null => Kind::Null,
            Value::L(_) => Kind::L,
            Value::M(_) => Kind::M,
            Value::Ss(_) => Kind::Ss,
            Value::Ns(_) => Kind::Ns,
            Value::Bs(_) => Kind::Bs,
        }
    }

    /// A string set from any strings: sorted, duplicates removed.
    pub fn string_set(mut items: Vec<String>) -> Value {
        items.sort_unstable();
        items.dedup();
        Value::Ss(items)
    }

    /// A number set from any numbers: sorted, duplicates removed.
    pub fn number_set(mut items: Vec<Number>) -> Value {
        items.sort_unstable();
        items.dedup();
        Value::Ns(items)
    }

    /// A binary set from any binaries: sorted, duplicates removed.
    pub fn binary_set(mut items: Vec<Vec<u8>>) -> Value {
        items.sort_unstable();
        items.dedup();
        Value::Bs(items)
    }
}

/// The order of two values, if they are of one ordered type.
pub(crate) fn order(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::S(left), Value::S(right)) => Some(left.as_bytes().cmp(right.as_bytes())),
        (Value::N(left), Value::N(right)) => Some(left.cmp(right)),
        (Value::B(left), Value::B(right)) => Some(left.cmp(right)),
        _ => None,
    }
}
