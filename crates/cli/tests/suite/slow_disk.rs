//! On a slow disk, an exec's answer waits for its own record and nothing else: the
//! checkpoint that saves what forty shells exported at prompts no exec ended writes them
//! beside the store's thread, not on it.
//!
//! The disk is made slow for the daemon alone: a library preloaded into it makes every
//! `fsync` and `fdatasync` take 50 ms more (the real call still runs) while a flag file
//! exists.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::harness::{Env, eventually};

/// What the preloaded library adds to each `fsync` and `fdatasync`.
const SLOW_MS: u64 = 50;

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

static void slow(void) {
    if (access(FLAG, F_OK) != 0) return;
    struct timespec t = { 0, SLOW_MS * 1000000L };
    while (nanosleep(&t, &t) != 0) {}
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow();
    return real(fd);
}
"#;

/// Builds the library into `dir` with the C compiler Rust itself links with; the disk is slow
/// while `flag` exists.
fn build_shim(dir: &Path, flag: &Path) -> PathBuf {
    let source = dir.join("slow_fsync.c");
    let lib = dir.join("slow_fsync.so");
    std::fs::write(&source, SHIM).expect("write the shim's source");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2"])
        .arg(format!("-DSLOW_MS={SLOW_MS}"))
        .arg(format!("-DFLAG={:?}", flag.display().to_string()))
        .arg("-o")
        .arg(&lib)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// The text of a saved environment in a store without a passphrase: after the blob's 20-byte
/// header, a packed body (method 1, zstd: the method, the size, the frame).
fn saved_text(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = match bytes.get(20) {
        Some(1) => zstd::decode_all(bytes.get(25..)?).ok()?,
        _ => bytes.get(25..)?.to_vec(),
    };
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// The number of sessions under `store` (a store's `sessions/`) whose saved environment holds
/// `needle`.
fn environments_with(store: &Path, needle: &str) -> usize {
    std::fs::read_dir(store)
        .map(|dirs| {
            dirs.flatten()
                .filter(|d| {
                    saved_text(&d.path().join("environment")).is_some_and(|t| t.contains(needle))
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn execs_do_not_wait_for_a_checkpoint_of_many_shells_environments() {
    let env = Env::new();
    let flag = env.home.path().join("slow");
    let shim = build_shim(env.home.path(), &flag);
    // The first command starts the daemon, which inherits the preload.
    let made = env
        .command(&["new", "-s", "x", "--shell", "sh"])
        .env("LD_PRELOAD", &shim)
        .output()
        .expect("new");
    assert!(made.status.success(), "{made:?}");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", env.daemon_pid()))
        .expect("the daemon's maps");
    assert!(
        maps.contains("slow_fsync.so"),
        "the daemon runs without the shim"
    );
    assert_eq!(env.exec("x", "true")["exit_code"], 0);
    // Forty shells, each saved once (on a fast disk).
    let sessions = 40;
    for i in 0..sessions {
        env.ok(&["new", "-s", &format!("s{i}"), "--shell", "sh"]);
    }
    let store = env.home.path().join("servers/t/store/sessions");
    eventually(60, "every shell's environment to be saved", || {
        environments_with(&store, "AI_SESSION_NAME='s") == sessions
    });
    // Now each exports something new through typed keys (no exec ends there): the next
    // checkpoint has forty environments to replace, two slow fsyncs each (four seconds).
    std::fs::write(&flag, b"").expect("slow the disk");
    for i in 0..sessions {
        env.ok(&[
            "send",
            "-t",
            &format!("s{i}"),
            &format!("export TYPED=typed{i}"),
            "Enter",
        ]);
    }
    // Once the checkpoint has saved the first of them, the others are still to write: an
    // exec now finds the store's thread free.
    eventually(
        30,
        "the checkpoint to start saving the typed exports",
        || environments_with(&store, "TYPED='typed") > 0,
    );
    let t = Instant::now();
    let out = env.exec("x", "echo tick");
    let waited = t.elapsed();
    assert_eq!(out["exit_code"], 0, "{out}");
    let saved = environments_with(&store, "TYPED='typed");
    eventually(60, "every typed export to be saved", || {
        environments_with(&store, "TYPED='typed") == sessions
    });
    std::fs::remove_file(&flag).ok();
    // An exec's own record costs a few slow fsyncs at most; queued behind the checkpoint's
    // eighty, it waited seconds.
    assert!(
        waited < Duration::from_millis(1500),
        "an exec waited {waited:?} while {saved} of {sessions} environments were saved, on a \
         disk whose fsyncs take {SLOW_MS} ms more"
    );
}
