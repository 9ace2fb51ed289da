//! Which sessions the 2-second checkpoint leaves for later: one whose command is pouring out
//! output. Capturing a session runs in its actor (the emulator draws the text it was keeping
//! undrawn, then renders thousands of scrollback rows), and while it does the PTY is not read:
//! a checkpoint landing in a `cat` of 32 MB stalled it for 100-300 ms. Such a session is
//! captured once its output calms down, and at the latest [`MAX_DEFER`] after the first tick
//! that put it off, so a flood that never stops is still saved.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ai_session_core::protocol::methods::{SessionInfo, SessionState};

/// Output since the previous tick above which a busy session is flooding.
pub(super) const FLOOD_BYTES: u64 = 1 << 20;

/// The longest a flooding session's capture is put off.
pub(super) const MAX_DEFER: Duration = Duration::from_secs(8);

/// Per session id: its log end at the previous tick, and since when its capture waits.
#[derive(Default)]
pub(super) struct Floods {
    seen: HashMap<String, (u64, Option<Instant>)>,
}

impl Floods {
    /// Whether this tick leaves the session's capture for later; remembers its log end.
    pub(super) fn defer(&mut self, info: &SessionInfo, now: Instant) -> bool {
        let (prev, since) = self.seen.remove(&info.id).unwrap_or((0, None));
        let flooding =
            info.state == SessionState::Busy && info.log_end.saturating_sub(prev) >= FLOOD_BYTES;
        let since = flooding.then(|| since.unwrap_or(now));
        let defer = since.is_some_and(|s| now.duration_since(s) < MAX_DEFER);
        // Deferred long enough: captured now, and the wait starts over.
        let keep = if defer { since } else { None };
        self.seen.insert(info.id.clone(), (info.log_end, keep));
        defer
    }

    /// Forgets the sessions not in `live` (killed since).
    pub(super) fn retain(&mut self, live: &[String]) {
        self.seen.retain(|id, _| live.contains(id));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn info(state: SessionState, log_end: u64) -> SessionInfo {
        serde_json::from_value(serde_json::json!({
            "id": "s1", "name": "s", "pid": 1, "program": ["sh"], "cwd": "/",
            "size": {"cols": 80, "rows": 24}, "state": state, "exit_code": null,
            "integration": "osc133", "created_ms": 0, "log_end": log_end, "log_start": 0,
        }))
        .expect("a session info")
    }

    #[test]
    fn a_flood_is_put_off_until_it_calms_or_for_at_most_max_defer() {
        let mut f = Floods::default();
        let t = Instant::now();
        let tick = Duration::from_secs(2);
        // A little output, or a lot from a session at its prompt: captured.
        assert!(!f.defer(&info(SessionState::Busy, 1000), t));
        assert!(!f.defer(&info(SessionState::Idle, 50 << 20), t + tick));
        // Busy and a MiB or more since the last tick: put off, tick after tick...
        assert!(f.defer(&info(SessionState::Busy, 60 << 20), t + 2 * tick));
        assert!(f.defer(&info(SessionState::Busy, 70 << 20), t + 3 * tick));
        // ...until it calms down...
        assert!(!f.defer(&info(SessionState::Busy, (70 << 20) + 10), t + 4 * tick));
        // ...or for MAX_DEFER at most, then again.
        let mut end = 80 << 20;
        let start = t + 5 * tick;
        assert!(f.defer(&info(SessionState::Busy, end), start));
        let mut now = start;
        while now.duration_since(start) + tick < MAX_DEFER {
            now += tick;
            end += 10 << 20;
            assert!(f.defer(&info(SessionState::Busy, end), now));
        }
        now += tick;
        end += 10 << 20;
        assert!(
            !f.defer(&info(SessionState::Busy, end), now),
            "captured at the latest"
        );
        end += 10 << 20;
        assert!(
            f.defer(&info(SessionState::Busy, end), now + tick),
            "and put off again"
        );
    }
}
