//! Operator log lines: one per event that matters (start, node dead/alive,
//! transfers, overload), never one per request. Written to stderr with the
//! wall-clock time in seconds.

use std::sync::OnceLock;

static NODE_NAME: OnceLock<String> = OnceLock::new();

/// Names this process's node in every later line.
pub fn set_node_name(name: &str) {
    let _ = NODE_NAME.set(name.to_string());
}

pub fn line(message: std::fmt::Arguments<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let node = NODE_NAME.get().map_or("-", String::as_str);
    eprintln!("{}.{:03} {node} {message}", now.as_secs(), now.subsec_millis());
}

/// `log!("format", args)`: one operator log line.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log::line(format_args!($($arg)*)) };
}
