//! One program cannot take the daemon down (issue 16, point 4): escape sequences that never
//! end cost the daemon a bounded amount of memory, and the session stays usable.

use super::harness::Env;

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resets the daemon's peak resident size (`VmHWM`) to its current one.
fn reset_peak(pid: i32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
}

#[test]
fn unterminated_osc_and_dcs_floods_keep_the_daemon_bounded_and_the_session_usable() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--shell", "/bin/bash"]);
    assert_eq!(env.exec("s", "echo warm")["output"], "warm\n");
    let pid = env.daemon_pid();
    reset_peak(pid);
    let before = status_kib(pid, "VmRSS");
    // 200 MB in an OSC string that is never terminated (the shell's next mark ends it), the
    // same in a window title, and 100 MB in a DCS string. Typed with `send` and waited for
    // at the prompt, so that only the session's own path (log, emulator, mark scanner) sees
    // them: an exec's result would add its bounded output (8 MiB) and its views.
    for (opener, mb) in [("\\033]777;", 200), ("\\033]0;", 200), ("\\033P1$q", 100)] {
        let command =
            format!("printf '{opener}'; head -c {mb}000000 /dev/zero | tr '\\0' x; (exit 7)");
        env.ok(&["send", "-t", "s", &command, "Enter"]);
        let w = env.json(&["wait", "-t", "s", "--prompt", "--timeout", "600"]);
        assert_eq!(w["exit_code"], 7, "{opener}: {w}");
        eprintln!(
            "{opener} {mb} MB: daemon VmRSS {} KiB, peak {} KiB",
            status_kib(pid, "VmRSS"),
            status_kib(pid, "VmHWM")
        );
    }
    let peak = status_kib(pid, "VmHWM");
    let after = status_kib(pid, "VmRSS");
    eprintln!("daemon VmRSS {before} KiB before, {after} KiB after, peak {peak} KiB");
    // 500 MB went through; the emulator keeps at most 64 KiB of an OSC string. An unbounded
    // string would grow the daemon by hundreds of MB; the bound leaves room for the allocator's
    // arenas and a checkpoint's capture after the flood (18 MB once on a loaded CI machine).
    assert!(
        peak < before + 32 * 1024,
        "the daemon grew from {before} KiB to a peak of {peak} KiB"
    );
    let r = env.exec("s", "printf 'still %s\\n' usable; (exit 4)");
    assert_eq!(r["exit_code"], 4, "{r}");
    assert_eq!(r["output"], "still usable\n", "{r}");
    let title = env.json(&["capture", "-t", "s"]);
    assert!(
        title
            .get("title")
            .is_none_or(|t| t.as_str().is_some_and(|t| t.len() <= 1024))
    );
}

#[test]
fn a_query_flood_whose_answers_are_never_read_keeps_the_daemon_bounded() {
    let env = Env::new();
    env.ok(&["new", "-s", "q", "--shell", "/bin/bash"]);
    assert_eq!(env.exec("q", "echo warm")["output"], "warm\n");
    let pid = env.daemon_pid();
    reset_peak(pid);
    let before = status_kib(pid, "VmRSS");
    // 10 million cursor-position queries from a program that never reads its input, in a raw
    // terminal (a canonical one drops input past its line limit): each answer (`ESC [ row ;
    // col R`) waits in the daemon once the terminal's input queue is full. Typed with `send`:
    // an exec's own output is not answered.
    let command =
        "stty raw -echo; yes $'\\033[6n' | tr -d '\\n' | head -c 40000000; stty sane; (exit 7)";
    env.ok(&["send", "-t", "q", command, "Enter"]);
    let w = env.json(&["wait", "-t", "q", "--prompt", "--timeout", "600"]);
    assert_eq!(w["exit_code"], 7, "{w}");
    let peak = status_kib(pid, "VmHWM");
    eprintln!("daemon VmRSS {before} KiB before, peak {peak} KiB");
    assert!(
        peak < before + 16 * 1024,
        "the daemon grew from {before} KiB to a peak of {peak} KiB"
    );
}
