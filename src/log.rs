//! Operator log lines: one per event that matters (start, node dead/alive,
//! transfers, overload), never one per request. Written to stderr with the
//! wall-clock time in seconds, or, on a thread that asked for it (the
//! simulator, running many nodes on one thread), handed to a sink.

use std::cell::RefCell;
use std::sync::OnceLock;

static NODE_NAME: OnceLock<String> = OnceLock::new();

/// Where this thread's lines go instead of stderr.
type Sink = Box<dyn FnMut(&str)>;

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Names this process's node in every later line.
pub fn set_node_name(name: &str) {
    let _ = NODE_NAME.set(name.to_string());
}

/// Sends this thread's lines to `sink` (the message only, no time or
/// node), or back to stderr with `None`.
pub fn redirect(sink: Option<Sink>) {
    SINK.with(|slot| *slot.borrow_mut() = sink);
}

pub fn line(message: std::fmt::Arguments<'_>) {
    let redirected = SINK.with(|slot| match slot.borrow_mut().as_mut() {
        Some(sink) => {
            sink(&message.to_string());
            true
        }
        None => false,
    });
    if redirected {
        return;
    }
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
