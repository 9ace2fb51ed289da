//! Resource limits on real processes: fork bomb, memory hog, CPU time, file size.

use std::process::Command;
use std::time::Duration;

use ai_session_sandbox::{NetworkMode, Protection, StopReason};

use super::common::*;

#[test]
fn a_bounded_fork_bomb_is_contained_and_other_sessions_still_answer() {
    let tmp = TempDir::new("bomb");
    let mut pol = policy(NetworkMode::None);
    pol.limits.processes = Some(32);
    let prepared = prepare(&pol, tmp.path());
    let out = attack(&prepared, tmp.path(), "fork-bomb", "");
    let forked: usize = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("FORKED "))
        .unwrap_or_else(|| panic!("{} {}", out.stdout, out.stderr))
        .parse()
        .unwrap();
    let limited = prepared.active().iter().any(|p| {
        matches!(
            p,
            Protection::CgroupPids { .. }
                | Protection::Rlimit {
                    name: "RLIMIT_NPROC",
                    ..
                }
        )
    });
    if limited {
        assert!(forked < 32, "forked {forked} despite the limit");
        assert_eq!(refused(&out), Some(libc::EAGAIN));
        if prepared.cgroup().pids.is_some() {
            assert!(prepared.limit_events().pids_max_hits > 0);
        }
    } else {
        assert!(has_missing(&prepared, "process limit"));
    }
    // Another session still starts and answers.
    let other = prepare(&policy(NetworkMode::None), tmp.path());
    assert_eq!(sh(&other, tmp.path(), "echo alive").stdout.trim(), "alive");
}

#[test]
fn a_memory_hog_is_stopped_with_a_memory_reason() {
    let tmp = TempDir::new("mem");
    let mut pol = policy(NetworkMode::None);
    pol.limits.memory_bytes = Some(64 << 20);
    let prepared = prepare(&pol, tmp.path());
    let out = attack(&prepared, tmp.path(), "memory-hog", "");
    assert!(!out.stdout.contains("ALLOCATED"), "hog was not stopped");
    let reason = prepared.stop_reason(out.status);
    assert!(reason.is_limit(), "{reason:?}: {}", reason.describe());
    if prepared.cgroup().memory.is_some() {
        assert_eq!(reason, StopReason::MemoryLimit { bytes: 64 << 20 });
    }
}

#[test]
fn cpu_time_limit_stops_a_spinner_with_sigxcpu() {
    let tmp = TempDir::new("cpu");
    let mut pol = policy(NetworkMode::None);
    pol.limits.cpu_seconds = Some(1);
    let prepared = prepare(&pol, tmp.path());
    let out = attack(&prepared, tmp.path(), "spin", "");
    assert_eq!(
        prepared.stop_reason(out.status),
        StopReason::CpuTimeLimit { seconds: 1 }
    );
}

#[test]
fn file_size_limit_stops_a_big_write_with_sigxfsz() {
    let tmp = TempDir::new("fsize");
    let mut pol = policy(NetworkMode::None);
    pol.limits.file_size_bytes = Some(4096);
    let prepared = prepare(&pol, tmp.path());
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "exec head -c 100000 /dev/zero > big"])
        .current_dir(tmp.path());
    let out = run(sandboxed(&prepared, cmd), Duration::from_secs(20));
    assert_eq!(
        prepared.stop_reason(out.status),
        StopReason::FileSizeLimit { bytes: 4096 }
    );
    assert_eq!(
        std::fs::metadata(tmp.path().join("big")).unwrap().len(),
        4096
    );
}
