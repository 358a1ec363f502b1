//! The code's own rules, checked on every run like any other promise: in
//! every crate's sources ([`CHECKED`]) no function is longer than
//! [`FUNCTION_LINES_MAX`] lines, so each can be read in one sitting
//! (TigerBeetle's rule; test modules are exempt: a scenario may be long);
//! every metric is in the README; no import runs from a lower layer back up.

use std::path::{Path, PathBuf};

const FUNCTION_LINES_MAX: usize = 70;
const CHECKED: &[&str] = &["src", "sim/src", "loadtest/src", "dynamo/src"];

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The braces of a line that count: none inside comments, strings or
/// character literals. `in_string`: whether the line starts inside a
/// string literal (one continued from the line before), and on return
/// whether it ends inside one.
fn braces(line: &str, in_string: &mut bool) -> Vec<char> {
    let chars: Vec<char> = line.chars().collect();
    let mut escaped = false;
    let mut kept = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if *in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => *in_string = false,
                _ => {}
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            break;
        } else if c == '"' && !(i > 0 && chars[i - 1] == '\'') {
            *in_string = true;
        } else if (c == '{' || c == '}') && !(i > 0 && chars[i - 1] == '\'') {
            kept.push(c);
        }
    }
    kept
}

/// `(name, first line, lines)` of every function outside test modules.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            i = end_of_block(&lines, i + 1) + 1;
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let fn_at = words.iter().position(|w| *w == "fn");
        let modifiers = ["pub", "pub(super)", "pub(crate)", "const", "unsafe"];
        let is_fn = fn_at.is_some_and(|at| at + 1 < words.len() && words[..at].iter().all(|w| modifiers.contains(w)));
        if let (true, Some(at)) = (is_fn, fn_at) {
            let end = end_of_block(&lines, i);
            let name = words[at + 1].split(['(', '<']).next().unwrap_or_default();
            found.push((name.to_string(), i + 1, end + 1 - i));
            i = end + 1;
            continue;
        }
        i += 1;
    }
    found
}

/// The line where the block opened at or after `from` closes (a
/// declaration without a body ends at its `;`).
fn end_of_block(lines: &[&str], from: usize) -> usize {
    let mut depth = 0i32;
    let mut opened = false;
    let mut in_string = false;
    for (at, line) in lines.iter().enumerate().skip(from) {
        for brace in braces(line, &mut in_string) {
            depth += if brace == '{' { 1 } else { -1 };
            opened = true;
        }
        if opened && depth == 0 {
            return at;
        }
        if !opened && line.trim_end().ends_with(';') {
            return at;
        }
    }
    lines.len() - 1
}

#[test]
fn no_function_of_the_node_logic_is_longer_than_seventy_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in CHECKED {
        sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "the folders were read: {} files", files.len());
    let mut long = Vec::new();
    let mut longest = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable source");
        for (name, line, length) in functions(&text) {
            let place = format!("{}:{line} {name}", file.strip_prefix(root).unwrap_or(file).display());
            if length > FUNCTION_LINES_MAX {
                long.push(format!("{place}: {length} lines"));
            }
            longest.push((length, place));
        }
    }
    longest.sort_unstable_by(|a, b| b.cmp(a));
    for (length, place) in longest.iter().take(5) {
        eprintln!("{length:>4} lines  {place}");
    }
    assert!(
        long.is_empty(),
        "functions over {FUNCTION_LINES_MAX} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_scanner_measures_a_function_and_skips_test_modules() {
    let text = "fn short() {\n    let s = \"}\";\n    if x { y('{') }\n}\n#[cfg(test)]\nmod tests {\n    fn long() {\n    }\n}\npub(super) fn after(a: u8) -> u8 {\n    a\n}\n";
    assert_eq!(
        functions(text),
        vec![("short".to_string(), 1, 4), ("after".to_string(), 10, 3)]
    );
}

#[test]
fn the_readme_names_every_metric_a_node_reports() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let missing: Vec<&str> = (dynakv::node::counters::STATS.iter())
        .map(|stat| stat.metric)
        .filter(|metric| !readme.contains(&format!("`{metric}")))
        .collect();
    assert!(missing.is_empty(), "README.md does not list {missing:?}");
}

/// The crate's folders from the bottom layer up (`src/lib.rs`, Layout):
/// each may import only from itself and the folders before it.
const LAYERS: &[&str] = &[
    "log",
    "invariant",
    "protocol",
    "storage",
    "cluster",
    "node",
    "runtime",
    "ops",
];

/// The layers a source file's `crate::` paths name in code (doc links
/// may point anywhere), before its test module (tests may use anything).
fn imported_layers(text: &str) -> Vec<&'static str> {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let code: Vec<&str> = (text.lines())
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect();
    let code = code.join("\n");
    let mut named = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if let Some(layer) = LAYERS.iter().find(|&&layer| layer == word) {
            named.push(*layer);
        }
    }
    named
}

#[test]
fn no_import_runs_from_a_lower_layer_back_up() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut upward = Vec::new();
    let mut checked = 0;
    for (rank, layer) in LAYERS.iter().enumerate() {
        let mut files = Vec::new();
        let folder = root.join("src").join(layer);
        if folder.is_dir() {
            sources(&folder, &mut files);
        } else {
            files.push(root.join("src").join(format!("{layer}.rs")));
        }
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a readable source");
            checked += 1;
            for named in imported_layers(&text) {
                let named_rank = LAYERS.iter().position(|&l| l == named).unwrap_or(0);
                if named_rank > rank {
                    upward.push(format!(
                        "{} names crate::{named}",
                        file.strip_prefix(root).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(checked > 50, "the layers were read: {checked} files");
    upward.sort_unstable();
    upward.dedup();
    assert!(upward.is_empty(), "imports that run back up:\n{}", upward.join("\n"));
}

#[test]
fn the_layer_scanner_finds_crate_paths() {
    let text = "use crate::node::router;\nlet x = crate::storage::hash::bucket_of(1);\n// crate::ops\n#[cfg(test)]\nuse crate::runtime;\n";
    assert_eq!(imported_layers(text), vec!["node", "storage"]);
}
