//! What processes cost, read from `/proc` when someone asks (a scrape, `ai-session stats`):
//! the daemon's own memory, descriptors and CPU, and each session's processes.

use std::collections::HashMap;

use ai_session_protocol::methods::SessionInfo;
use ai_session_protocol::stats::{ProcessUsage, SessionUsage};

/// The fields of `/proc/PID/stat` the figures need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stat {
    session: i64,
    /// utime + stime + cutime + cstime, in clock ticks: the process and its reaped children.
    ticks: u64,
    threads: u64,
    /// Resident pages.
    rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `f[0]` is field 3 (state): field N is `f[N - 3]`.
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<i64>().ok());
    let ticks = [14, 15, 16, 17]
        .iter()
        .map(|n| field(*n).map(|v| v.max(0) as u64))
        .sum::<Option<u64>>()?;
    Some(Stat {
        session: field(6)?,
        ticks,
        threads: field(20)?.max(0) as u64,
        rss_pages: field(24)?.max(0) as u64,
    })
}

fn read_stat(pid: &str) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn ticks_to_secs(ticks: u64) -> f64 {
    ticks as f64 / rustix::param::clock_ticks_per_second() as f64
}

/// The daemon's own figures. The CPU time is the daemon's alone: the sessions' shells are
/// reaped through pidfds, whose times land in the daemon's `cutime`, so those are left out.
pub(crate) fn own() -> ProcessUsage {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .collect();
    let field = |n: usize| f.get(n - 3).copied().unwrap_or(0);
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().saturating_sub(1) as u64) // less the directory's own descriptor
        .unwrap_or(0);
    let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    ProcessUsage {
        pid: std::process::id(),
        rss_bytes: resident_bytes(),
        open_fds,
        max_fds,
        cpu_seconds: ticks_to_secs(field(14) + field(15)),
        threads: field(20),
    }
}

/// Resident memory from `/proc/self/statm` (its second field, in pages).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * rustix::param::page_size() as u64)
}

/// Each session's processes: everything in the kernel session of its program (the shell calls
/// `setsid`, so its session id is its own pid, or the sandbox keeper's for a pid namespace).
/// One pass over `/proc`. Blocking: run it off the runtime's threads.
pub(crate) fn sessions(infos: &[SessionInfo]) -> Vec<SessionUsage> {
    let mut by_session: HashMap<i64, (u64, u64, u64)> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            // A process that exits between the listing and the read is simply not counted.
            if let Some(s) = read_stat(pid) {
                let e = by_session.entry(s.session).or_default();
                e.0 += 1;
                e.1 += s.ticks;
                e.2 += s.rss_pages;
            }
        }
    }
    let page = rustix::param::page_size() as u64;
    infos
        .iter()
        .map(|info| {
            let sid = read_stat(&info.pid.to_string()).map(|s| s.session);
            let (processes, ticks, pages) = sid
                .and_then(|sid| by_session.get(&sid).copied())
                .unwrap_or_default();
            SessionUsage {
                name: info.name.clone(),
                pid: info.pid,
                processes,
                cpu_seconds: ticks_to_secs(ticks),
                rss_bytes: pages * page,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A real line of a process named "a) (b c", as the kernel writes it.
        let line = "4242 (a) (b c) S 1 4242 4242 34817 4242 4194560 1169 0 0 0 7 3 11 2 20 0 1 0 \
                    123 10485760 812 18446744073709551615 1 1 0 0 0 0 65536 4 65538 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.session, 4242);
        assert_eq!(s.ticks, 7 + 3 + 11 + 2);
        assert_eq!(s.threads, 1);
        assert_eq!(s.rss_pages, 812);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_figures_are_read() {
        let me = own();
        assert!(me.rss_bytes > 0);
        assert!(me.open_fds >= 3);
        assert!(me.threads >= 1);
    }
}
