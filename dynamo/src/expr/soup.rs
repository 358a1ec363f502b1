//! Hostile input for every parser: thousands of pseudo-random token soups
//! (a fixed-seed generator, so a failure replays), each parsed as every
//! kind of expression, and whatever parses evaluated, applied or projected
//! on an item. Only `Ok` or an `ApiError` may come back, never a panic.

use super::{Condition, KeyConditions, Placeholders, Projection, Update};
use crate::number::Number;
use crate::value::{Item, Value};
use std::collections::BTreeMap;

/// Soups per run: enough to reach every grammar rule many times, few
/// enough to run in well under a second.
const SOUPS: usize = 4_000;
/// Tokens in the longest soup.
const SOUP_TOKENS_MAX: usize = 40;

const PIECES: [&str; 62] = [
    "a",
    "b",
    "c",
    "pk",
    "sk",
    "lst",
    "mp",
    "status",
    "Size",
    "#n",
    "#m",
    "#undefined",
    ":v",
    ":w",
    ":s",
    ":l",
    ":undefined",
    "0",
    "1",
    "7",
    "99999999999",
    "(",
    ")",
    "((",
    "))",
    "[",
    "]",
    ",",
    ".",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "size",
    "contains",
    "begins_with",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "if_not_exists",
    "list_append",
    "nope",
    "_",
    "#",
    ":",
    "ü",
    "\"",
    "*",
    "\t",
];

/// xorshift64*: small, deterministic, good enough to scatter tokens.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound.max(1) as u64).unwrap_or(0)
    }

    fn soup(&mut self) -> String {
        let length = self.below(SOUP_TOKENS_MAX + 1);
        let mut text = String::new();
        for _ in 0..length {
            text.push_str(PIECES.get(self.below(PIECES.len())).copied().unwrap_or(""));
            if self.below(3) > 0 {
                text.push(' ');
            }
        }
        text
    }
}

fn placeholders() -> Placeholders {
    let names: BTreeMap<String, String> = [("#n", "a"), ("#m", "mp")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    let values: BTreeMap<String, Value> = [
        (":v", Value::N(Number::from_i64(3))),
        (":w", Value::Bool(true)),
        (":s", Value::string_set(vec!["x".into()])),
        (":l", Value::L(vec![Value::S("e".into())])),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    Placeholders::new(Some(names), Some(values)).unwrap_or_default()
}

fn item() -> Item {
    let map: crate::value::Map = [("a".to_owned(), Value::N(Number::from_i64(1)))].into();
    [
        ("a".to_owned(), Value::N(Number::from_i64(5))),
        ("b".to_owned(), Value::S("text".into())),
        ("lst".to_owned(), Value::L(vec![Value::Null, Value::M(map.clone())])),
        ("mp".to_owned(), Value::M(map)),
        ("c".to_owned(), Value::string_set(vec!["x".into(), "y".into()])),
    ]
    .into()
}

/// Parses `text` as every kind of expression and uses what parses.
fn exercise(text: &str, item: &Item) {
    for parse in [Condition::parse_condition, Condition::parse_filter] {
        if let Ok(condition) = parse(text, &mut placeholders()) {
            let _ = condition.evaluate(Some(item));
            let _ = condition.evaluate(None);
        }
    }
    if let Ok(update) = Update::parse(text, &mut placeholders()) {
        let mut changed = item.clone();
        let _ = update.apply(&mut changed);
        let _ = update.check_key_attributes(&["pk"]);
    }
    if let Ok(projection) = Projection::parse(text, &mut placeholders()) {
        let _ = projection.apply(item);
    }
    if let Ok(keys) = KeyConditions::parse(text, &mut placeholders()) {
        let _ = keys.resolve("pk", Some("sk"));
        let _ = keys.resolve("a", None);
    }
    let mut used = placeholders();
    let _ = Condition::parse_filter(text, &mut used);
    let _ = used.check_all_used();
}

#[test]
fn token_soups_never_panic() {
    let item = item();
    let mut generator = Generator(0x9E37_79B9_7F4A_7C15);
    for _ in 0..SOUPS {
        exercise(&generator.soup(), &item);
    }
}

#[test]
fn hostile_shapes_are_refused_not_overflowed() {
    let item = item();
    let depth = 2_000;
    for text in [
        "(".repeat(depth),
        format!("{}a = :v{}", "(".repeat(depth), ")".repeat(depth)),
        format!("{}a = :v", "NOT ".repeat(depth / 4)),
        format!("SET a = {}:v{}", "(".repeat(depth), ")".repeat(depth)),
        format!(
            "SET a = {}a, :v{}",
            "if_not_exists(".repeat(depth / 16),
            ")".repeat(depth / 16)
        ),
        format!("{}a{} > :v", "size(".repeat(depth / 8), ")".repeat(depth / 8)),
        format!("a{}", "[0]".repeat(depth / 3)),
        "a = :v AND ".repeat(depth / 11),
        "ü".repeat(depth),
    ] {
        exercise(&text, &item);
    }
}

#[test]
fn the_generator_reaches_past_the_syntax() {
    // A sanity check that the generator reaches past the syntax: some soups
    // must parse, or the first test exercises only the syntax errors.
    let mut generator = Generator(7);
    let parsed = (0..SOUPS)
        .map(|_| generator.soup())
        .filter(|text| {
            Projection::parse(text, &mut placeholders()).is_ok() || Update::parse(text, &mut placeholders()).is_ok()
        })
        .count();
    assert!(parsed > 0, "no soup parsed");
}
