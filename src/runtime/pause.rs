//! Telling a real suspension from a slow tick.
//!
//! A node stopped with SIGSTOP (or SIGTSTP) and resumed with SIGCONT has
//! missed writes and must catch up; a node whose threads merely ran late (150
//! processes on two cores get scheduling stalls) has not, unless it was away
//! long enough for peers to count it dead. Measuring gaps between wake-ups
//! cannot tell the two apart, but the kernel can: a process continued after
//! a stop receives SIGCONT. A handler counts those signals, and each thread
//! that cares keeps a [`ResumeWatch`] of the count it last saw.

use std::sync::atomic::{AtomicU64, Ordering};

/// SIGCONTs received since start.
static CONTINUED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigcont(_signal: libc::c_int) {
    // An atomic add is async-signal-safe.
    CONTINUED.fetch_add(1, Ordering::Release);
}

/// Installs the SIGCONT handler (once per process, before threads start).
pub fn install() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction with a handler that only touches an atomic;
    // SA_RESTART keeps interrupted system calls going where the kernel can.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigcont as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGCONT, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One thread's view of the SIGCONT count.
#[derive(Debug)]
pub struct ResumeWatch {
    seen: u64,
}

impl Default for ResumeWatch {
    fn default() -> ResumeWatch {
        ResumeWatch {
            seen: CONTINUED.load(Ordering::Acquire),
        }
    }
}

impl ResumeWatch {
    /// Whether the process was continued after a stop since the last call:
    /// if so, which stop (the count of SIGCONTs since start), the same for
    /// every watch.
    pub fn resumed(&mut self) -> Option<u64> {
        let now = CONTINUED.load(Ordering::Acquire);
        (std::mem::replace(&mut self.seen, now) != now).then_some(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sigcont_is_seen_once_by_each_watch() {
        install().unwrap();
        let mut first = ResumeWatch::default();
        let mut second = ResumeWatch::default();
        assert_eq!(first.resumed(), None);
        // SAFETY: raise sends SIGCONT to this process, which is running.
        unsafe {
            libc::raise(libc::SIGCONT);
        }
        let stop = first.resumed();
        assert!(stop.is_some());
        assert_eq!(first.resumed(), None, "seen once");
        assert_eq!(second.resumed(), stop, "every watch sees it, as the same stop");
    }
}
