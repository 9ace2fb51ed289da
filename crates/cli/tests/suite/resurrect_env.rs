//! A session brought back by a daemon restart gets back what its shell exported: in bash, zsh
//! and sh, after a SIGKILL or a stop, values with newlines and quotes byte for byte; what was
//! not exported stays behind; nothing of it is left in plaintext in an encrypted store.

use super::harness::{Env, alive, eventually};

const SHELLS: [&str; 3] = ["bash", "zsh", "sh"];
/// Newlines, both quotes, a dollar, a backquote and a backslash: everything quoting can break.
const ODD: &str = "line one\nline \"two\" 'three' $four `five` \\six\n\n  seven";

fn sigkill(pid: i32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    eventually(10, "the daemon to die", || !alive(pid));
}

fn ok_exec(env: &Env, t: &str, command: &str) -> String {
    let out = env.exec(t, command);
    assert_eq!(out["exit_code"], 0, "{t}: {command}: {out}");
    out["output"].as_str().unwrap_or_default().trim().to_owned()
}

/// Each shell exports `X`, a value with every awkward character (from a file, as sh has no
/// `$'...'`), and sets `LOCAL` without exporting it. The daemon keeps the shells' files under
/// `runtime`, its `$XDG_RUNTIME_DIR`.
fn export_in_each(env: &Env, value_file: &std::path::Path, runtime: &std::path::Path) {
    for sh in SHELLS {
        let made = env
            .command(&["new", "-s", sh, "--shell", sh])
            .env("XDG_RUNTIME_DIR", runtime)
            .output()
            .expect("new");
        assert!(made.status.success(), "{made:?}");
        ok_exec(
            env,
            sh,
            &format!(
                "export X=exported-{sh} ODD=\"$(cat {})\"; LOCAL=not-exported",
                value_file.display()
            ),
        );
    }
}

#[test]
fn exported_variables_come_back_after_a_sigkill_in_bash_zsh_and_sh() {
    let env = Env::new();
    let value_file = env.home.path().join("odd-value");
    std::fs::write(&value_file, ODD).expect("value");
    let runtime = env.home.path().join("runtime");
    std::fs::create_dir(&runtime).expect("runtime dir");
    export_in_each(&env, &value_file, &runtime);
    // Each shell wrote its file in memory, not in the state directory, and the daemon took it
    // into the store when the exec ended: no plaintext copy stays.
    let uid = rustix::process::geteuid().as_raw();
    let place = runtime.join(format!("ai-session-{uid}"));
    assert!(place.is_dir(), "{} missing", place.display());
    let left: Vec<_> = std::fs::read_dir(&place)
        .expect("place")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    sigkill(env.daemon_pid());
    let back = env
        .command(&["ls"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("ls");
    assert!(back.status.success(), "{back:?}");
    for sh in SHELLS {
        assert_eq!(ok_exec(&env, sh, "echo $X"), format!("exported-{sh}"));
        assert_eq!(ok_exec(&env, sh, "echo \"[${LOCAL-}]\""), "[]", "{sh}");
        let got = env.home.path().join(format!("got-{sh}"));
        ok_exec(
            &env,
            sh,
            &format!("printf '%s' \"$ODD\" > {}", got.display()),
        );
        assert_eq!(std::fs::read_to_string(&got).expect("got"), ODD, "{sh}");
        // The restore's own variable does not leak into the shell's environment.
        assert_eq!(
            ok_exec(&env, sh, "echo \"[${AI_SESSION_ENV_RESTORE-}]\""),
            "[]"
        );
    }
    // The restore files were read and are gone, as are the shells' own files.
    let left: Vec<_> = std::fs::read_dir(&place)
        .expect("place")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// An export typed with `send` (no exec ends at its prompt) is kept by the checkpoint that a
/// stop runs, and the stop's successor has it.
#[test]
fn an_export_typed_as_keys_comes_back_after_a_stop() {
    let env = Env::new();
    env.ok(&["new", "-s", "k"]);
    ok_exec(&env, "k", "true");
    env.ok(&["send", "-t", "k", "-l", "export TYPED=by-keys"]);
    env.ok(&["send", "-t", "k", "Enter"]);
    env.ok(&["wait", "-t", "k", "--prompt"]);
    env.ok(&["daemon", "stop"]);
    assert_eq!(ok_exec(&env, "k", "echo $TYPED"), "by-keys");
}

#[test]
fn the_saved_environment_is_sealed_in_an_encrypted_store() {
    let env = Env::new();
    let started = env
        .command(&["new", "-s", "e"])
        .env("AI_SESSION_PASSPHRASE", "correct horse")
        .output()
        .expect("new");
    assert!(started.status.success(), "{started:?}");
    ok_exec(&env, "e", "export SEALED=plain-text-marker-42");
    let pid = env.daemon_pid();
    sigkill(pid);
    let store = env.home.path().join("servers/t/store");
    let mut saw_environment = false;
    for p in super::harness::files_under(&store) {
        saw_environment |= p.ends_with("environment");
        let bytes = std::fs::read(&p).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains("plain-text-marker-42"),
            "{} holds the value in plaintext",
            p.display()
        );
    }
    assert!(saw_environment, "no environment saved");
    let back = env
        .command(&["ls"])
        .env("AI_SESSION_PASSPHRASE", "correct horse")
        .output()
        .expect("ls");
    assert!(back.status.success(), "{back:?}");
    assert_eq!(ok_exec(&env, "e", "echo $SEALED"), "plain-text-marker-42");
}

/// The saved environment is rewritten only when the shell's exports change: an exec that
/// exports nothing costs no store write, in bash (which does not export the `$_` it inherits)
/// and in sh (whose `export -p` lists `_`, the last argument of the previous command: it is
/// left out of what is saved).
#[test]
fn execs_that_export_nothing_do_not_rewrite_the_saved_environment() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    for (name, shell) in [("q", "/bin/bash"), ("s", "/bin/sh")] {
        // A client started from a shell passes `$_` on, exported.
        let made = env
            .command(&["new", "-s", name, "--shell", shell])
            .env("_", "/usr/bin/ai-session")
            .output()
            .expect("new");
        assert!(made.status.success(), "{made:?}");
        ok_exec(&env, name, "export ONCE=1");
        let list = env.json(&["ls"]);
        let id = list["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["id"].as_str())
            .expect("id")
            .to_owned();
        let saved = env
            .home
            .path()
            .join(format!("servers/t/store/sessions/{id}/environment"));
        // A rewrite is a new file renamed over the old one; its inode may be the one freed by
        // the rewrite before, its modification time is its own.
        let written = |what: &str| {
            let m = std::fs::metadata(&saved).expect(what);
            (m.ino(), m.mtime(), m.mtime_nsec())
        };
        let first = written("saved environment");
        for command in [
            "echo some words",
            "ls /",
            "false || true",
            "echo $_",
            "echo MARK7",
        ] {
            ok_exec(&env, name, command);
        }
        assert_eq!(
            written("saved"),
            first,
            "{shell}: rewritten by execs that export nothing"
        );
        // An export is saved.
        ok_exec(&env, name, "export TWICE=2");
        assert_ne!(written("saved"), first, "{shell}");
    }
}

/// A sandboxed program cannot plant a file where unconfined shells leave what they export (a
/// planted file would be taken into an unconfined session's record and sourced by its shell
/// after the next restart): the directory is covered in its mount namespace.
#[test]
fn a_sandboxed_program_cannot_write_where_the_shells_leave_their_exports() {
    let env = Env::outside_tmp();
    let runtime = env.home.path().join("runtime");
    std::fs::create_dir(&runtime).expect("runtime dir");
    let made = env
        .command(&["new", "-s", "plain"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("new");
    assert!(made.status.success(), "{made:?}");
    let boxed = env.run(&[
        "new",
        "-s",
        "boxed",
        "--policy",
        "workspace-write",
        "-c",
        &runtime.to_string_lossy(),
    ]);
    assert!(boxed.status.success(), "{boxed:?}");
    let uid = rustix::process::geteuid().as_raw();
    let planted = runtime.join(format!("ai-session-{uid}/planted.env"));
    let out = env.exec(
        "boxed",
        &format!(
            "echo 'touch /tmp/pwned' > {} ; echo done",
            planted.display()
        ),
    );
    assert!(
        out["output"].as_str().unwrap_or_default().contains("done"),
        "{out}"
    );
    assert!(
        !planted.exists(),
        "a sandboxed program wrote {}",
        planted.display()
    );
}
