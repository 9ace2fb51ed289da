//! Escape attempts from a sandboxed session; each must fail, or, where the host lacks
//! the mechanism, the missing protection must be reported by `Prepared::missing`.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use ai_session_sandbox::{NetworkMode, Policy, Protection, Sandbox};

use super::common::*;

#[test]
fn reading_a_key_outside_the_allowed_roots_fails_with_eacces() {
    let tmp = TempDir::new("read");
    let home = tmp.path().join("home");
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), "FAKE-PRIVATE-KEY\n").unwrap();
    std::fs::write(ws.join("notes.txt"), "workspace-content\n").unwrap();
    let prepared = prepare(&policy(NetworkMode::None), &ws);
    let key = home.join(".ssh/id_ed25519");
    let out = sh(
        &prepared,
        &ws,
        &format!("cat notes.txt; cat {}", key.display()),
    );
    assert!(
        out.stdout.contains("workspace-content"),
        "control read failed: {}",
        out.stderr
    );
    if caps().landlock_abi.is_some() {
        assert!(!out.stdout.contains("FAKE-PRIVATE-KEY"));
        assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    } else {
        assert!(has_missing(&prepared, "landlock"));
    }
}

#[test]
fn writing_outside_the_workspace_fails_and_tmp_is_private() {
    let tmp = TempDir::new("write");
    let ws = tmp.path().join("ws");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let prepared = prepare(&policy(NetworkMode::None), &ws);
    let marker = format!("/tmp/ai-session-sbx-{}", std::process::id());
    let script = format!(
        "echo in > in.txt && echo ok-in; echo out > {}/out.txt && echo ESCAPED; echo t > {marker} && echo ok-tmp",
        outside.display()
    );
    let out = sh(&prepared, &ws, &script);
    assert!(out.stdout.contains("ok-in"), "{}", out.stderr);
    if caps().landlock_abi.is_some() {
        assert!(!out.stdout.contains("ESCAPED"));
        assert!(!outside.join("out.txt").exists());
        assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    } else {
        assert!(has_missing(&prepared, "landlock"));
    }
    if prepared.active().contains(&Protection::PrivateTmp) {
        assert!(out.stdout.contains("ok-tmp"), "{}", out.stderr);
        assert!(
            !std::path::Path::new(&marker).exists(),
            "private /tmp leaked to the host"
        );
    } else {
        assert!(has_missing(&prepared, "/tmp"));
    }
}

#[test]
fn connecting_to_a_loopback_listener_with_network_none_fails() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tmp = TempDir::new("net");
    let prepared = prepare(&policy(NetworkMode::None), tmp.path());
    let out = attack(&prepared, tmp.path(), "tcp-connect", &addr);
    if caps().seccomp {
        assert_eq!(refused(&out), Some(libc::EPERM), "{}", out.stdout);
    } else if caps().net_ns {
        assert!(refused(&out).is_some());
    } else {
        assert!(has_missing(&prepared, "network"));
    }
}

#[test]
fn loopback_mode_isolates_the_host_but_allows_local_sockets() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tmp = TempDir::new("lo");
    let prepared = prepare(&policy(NetworkMode::Loopback), tmp.path());
    let own = attack(&prepared, tmp.path(), "loopback-self", "");
    assert_eq!(
        refused(&own),
        None,
        "loopback inside the session must work: {}",
        own.stderr
    );
    let host = attack(&prepared, tmp.path(), "tcp-connect", &addr);
    if caps().net_ns {
        assert_eq!(refused(&host), Some(libc::ECONNREFUSED));
    } else {
        assert!(has_missing(&prepared, "network=loopback"));
    }
}

#[test]
fn ptrace_and_process_vm_read_of_a_sibling_session_fail() {
    let tmp = TempDir::new("ptrace");
    let prepared = prepare(&policy(NetworkMode::None), tmp.path());
    // The victim: another sandboxed session, blocked reading its stdin.
    let mut victim_cmd = sandboxed(&prepared, Command::new("cat"));
    victim_cmd.stdin(Stdio::piped()).current_dir(tmp.path());
    let mut victim = victim_cmd.spawn().unwrap();
    let pid = victim.id().to_string();
    let ptrace = attack(&prepared, tmp.path(), "ptrace", &pid);
    let vm = attack(&prepared, tmp.path(), "process-vm-read", &pid);
    let strace = which("strace").map(|path| {
        let mut cmd = Command::new(path);
        cmd.args(["-p", &pid]).current_dir(tmp.path());
        run(
            sandboxed(&prepared, cmd),
            std::time::Duration::from_secs(20),
        )
    });
    victim.kill().unwrap();
    victim.wait().unwrap();
    if caps().seccomp {
        assert_eq!(refused(&ptrace), Some(libc::EPERM));
        assert_eq!(refused(&vm), Some(libc::EPERM));
        if let Some(out) = strace {
            assert!(!out.status.success());
            assert!(
                out.stderr.contains("Operation not permitted"),
                "{}",
                out.stderr
            );
        }
    } else {
        assert!(has_missing(&prepared, "seccomp"));
    }
}

#[test]
fn signalling_the_daemon_fails_when_landlock_scopes_signals() {
    let tmp = TempDir::new("signal");
    let prepared = prepare(&policy(NetworkMode::None), tmp.path());
    let out = attack(
        &prepared,
        tmp.path(),
        "signal",
        &std::process::id().to_string(),
    );
    if prepared.active().contains(&Protection::PidNamespace) {
        // The daemon's pid does not exist in the session's pid namespace.
        assert_eq!(refused(&out), Some(libc::ESRCH));
    } else if prepared.active().contains(&Protection::LandlockScoped) {
        assert_eq!(refused(&out), Some(libc::EPERM));
    } else {
        assert_eq!(
            refused(&out),
            None,
            "without scoping the same uid may signal"
        );
    }
}

#[test]
fn io_uring_and_mount_are_denied() {
    let tmp = TempDir::new("uring");
    let prepared = prepare(&policy(NetworkMode::None), tmp.path());
    let uring = attack(&prepared, tmp.path(), "io-uring", "");
    let mount = sh(
        &prepared,
        tmp.path(),
        "mount -t tmpfs none /mnt && echo MOUNTED",
    );
    if caps().seccomp {
        assert_eq!(refused(&uring), Some(libc::EPERM));
        assert!(!mount.stdout.contains("MOUNTED"), "{}", mount.stderr);
    } else {
        assert!(has_missing(&prepared, "seccomp"));
    }
}

#[test]
fn a_host_without_mechanisms_is_reported_and_refused_unless_degrading_is_allowed() {
    let tmp = TempDir::new("degrade");
    let mut bare = ai_session_sandbox::Capabilities {
        rlimits: true,
        euid: 1000,
        ..Default::default()
    };
    bare.notes.push("simulated bare host".into());
    let mut strict = Policy::profile("default").unwrap();
    strict.allow_degrade = false;
    let err = Sandbox::prepare(&strict, &bare, tmp.path())
        .unwrap_err()
        .to_string();
    for needle in [
        "landlock",
        "seccomp",
        "/tmp",
        "network",
        "process limit",
        "private pids",
    ] {
        assert!(err.contains(needle), "{needle} not reported: {err}");
    }
    strict.allow_degrade = true;
    let p = Sandbox::prepare(&strict, &bare, tmp.path()).unwrap();
    assert!(p.active().iter().all(|a| !matches!(
        a,
        Protection::LandlockFs { .. } | Protection::Seccomp { .. }
    )));
    assert!(p.active().contains(&Protection::NoNewPrivs));
    assert_eq!(p.missing().len(), 6, "{:?}", p.missing());
    // Whatever is active still runs a shell.
    let p = std::sync::Arc::new(p);
    let out = sh(&p, tmp.path(), "echo alive");
    assert_eq!(out.stdout.trim(), "alive", "{}", out.stderr);
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    let mut s = String::new();
    let mut child = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdout.take()?.read_to_string(&mut s).ok()?;
    child.wait().ok()?.success().then(|| s.trim().into())
}

#[test]
fn a_session_sees_and_signals_only_its_own_processes() {
    let tmp = TempDir::new("pids");
    let prepared = prepare(&policy(NetworkMode::None), tmp.path());
    let me = std::process::id();
    // $$ is the shell's pid inside; /proc lists the namespace's processes; kill -0 of the
    // test process (outside) must not find it.
    let out = sh(
        &prepared,
        tmp.path(),
        &format!(
            "echo pid=$$; ls /proc | grep -c '^[0-9]' | sed 's/^/procs=/'; kill -0 {me} 2>/dev/null && echo SEEN || echo unseen; exit 7"
        ),
    );
    if prepared.active().contains(&Protection::PidNamespace) {
        assert!(out.stdout.contains("pid=2"), "{}{}", out.stdout, out.stderr);
        let procs: usize = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("procs="))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(usize::MAX);
        assert!(
            procs <= 5,
            "the session saw {procs} processes: {}",
            out.stdout
        );
        assert!(out.stdout.contains("unseen"), "{}", out.stdout);
        // The keeper passes the program's exit status through.
        assert_eq!(out.status.code(), Some(7));
    } else {
        assert!(has_missing(&prepared, "pids"));
    }
}
