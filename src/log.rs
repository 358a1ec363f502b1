//! Operator log lines: one per event that matters (start, node dead/alive,
//! transfers, overload), never one per request. Each line on stderr reads
//! `TIME NODE EVENT: MESSAGE`: the wall-clock time in RFC 3339 UTC with
//! milliseconds, the node's address, and a fixed event name to grep and
//! alert on. On a thread that asked for it (the simulator, running many
//! nodes on one thread) lines go to a sink instead.

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

/// Sends this thread's lines to `sink` (`EVENT: MESSAGE`, no time or
/// node), or back to stderr with `None`.
pub fn redirect(sink: Option<Sink>) {
    SINK.with(|slot| *slot.borrow_mut() = sink);
}

/// `1970-01-01T00:00:00.000Z` for a time in milliseconds since the epoch.
pub fn rfc3339_utc(unix_ms: u64) -> String {
    let days = (unix_ms / 86_400_000) as i64;
    let ms_of_day = unix_ms % 86_400_000;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar),
    // counting in 400-year eras that start on March 1st.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1_000 % 60,
        ms_of_day % 1_000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

pub fn line(event: &str, message: std::fmt::Arguments<'_>) {
    let redirected = SINK.with(|slot| match slot.borrow_mut().as_mut() {
        Some(sink) => {
            sink(&format!("{event}: {message}"));
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
    eprintln!("{} {node} {event}: {message}", rfc3339_utc(now.as_millis() as u64));
}

/// `log!("event_name", "format", args)`: one operator log line.
#[macro_export]
macro_rules! log {
    ($event:expr, $($arg:tt)*) => { $crate::log::line($event, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::rfc3339_utc;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @951782400` is Tue Feb 29 00:00:00 UTC 2000.
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_868_799_999), "2000-02-29T23:59:59.999Z");
        // `date -u -d @1795838401`: Sat Nov 28 04:00:01 UTC 2026.
        assert_eq!(rfc3339_utc(1_795_838_401_420), "2026-11-28T04:00:01.420Z");
        assert_eq!(rfc3339_utc(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }
}
