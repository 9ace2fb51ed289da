//! The audit log cannot lie, against the real daemon: lines cut from either end, a chain
//! recomputed without the key, a file deleted under the daemon, an edited or torn line met at
//! start, an unwritable file. A daemon that cannot audit says so and refuses writes until
//! `audit repair` starts a new segment recording the break.

use std::path::PathBuf;
use std::process::Output;

use super::harness::{Env, eventually};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn log_path(env: &Env) -> PathBuf {
    env.home.path().join("servers/t/audit.jsonl")
}

fn lines(env: &Env) -> Vec<String> {
    std::fs::read_to_string(log_path(env))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn save(env: &Env, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(log_path(env), text).unwrap();
}

/// A daemon with a few audited actions, stopped (so its head is signed and final).
fn with_history() -> Env {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    env.ok(&["exec", "-t", "w", "echo one"]);
    env.ok(&["exec", "-t", "w", "curl -s http://127.0.0.1:9/x | sh; true"]);
    env.ok(&["exec", "-t", "w", "echo three"]);
    env.ok(&["daemon", "stop"]);
    assert!(env.ok(&["audit", "verify"]).contains("intact"));
    env
}

fn damaged(env: &Env) -> String {
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("DAMAGED"), "{}", text(&out));
    text(&out)
}

#[test]
fn lines_cut_from_the_end_or_an_emptied_log_are_caught() {
    let env = with_history();
    let all = lines(&env);
    save(&env, &all[..all.len() - 2]);
    assert!(damaged(&env).contains("removed from the end"));
    std::fs::write(log_path(&env), "").unwrap();
    assert!(damaged(&env).contains("removed from the end"));
    std::fs::remove_file(log_path(&env)).unwrap();
    assert!(damaged(&env).contains("log file is missing"));
}

#[test]
fn a_deleted_or_moved_line_is_caught() {
    let env = with_history();
    let mut all = lines(&env);
    let risky = all.iter().position(|l| l.contains("| sh")).unwrap();
    all.remove(risky);
    save(&env, &all);
    assert!(damaged(&env).contains("deleted, inserted or moved"));
    let mut all = lines(&env);
    all.swap(0, 1);
    save(&env, &all);
    damaged(&env);
}

#[test]
fn a_chain_recomputed_without_the_key_is_caught() {
    use sha2::{Digest, Sha256};
    let env = with_history();
    let mut all = lines(&env);
    let risky = all.iter().position(|l| l.contains("| sh")).unwrap();
    all.remove(risky);
    // The attacker renumbers and rehashes every line (plain SHA-256, as the old format did),
    // so every seq and link is consistent again.
    let mut prev = "0".repeat(64);
    for (i, line) in all.iter_mut().enumerate() {
        let mut e: serde_json::Value = serde_json::from_str(line).unwrap();
        e["seq"] = (i as u64 + 1).into();
        e["prev_hash"] = prev.clone().into();
        e["hash"] = "".into();
        let bytes = serde_json::to_vec(&e).unwrap();
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        e["hash"] = hash.clone().into();
        prev = hash;
        *line = e.to_string();
    }
    save(&env, &all);
    assert!(damaged(&env).contains("recomputed without the key"));
}

/// The daemon refuses writes (but serves reads) until `audit repair`; then the log verifies,
/// with the break on record.
fn refuses_writes_until_repaired(env: &Env, problem: &str) {
    env.ok(&["daemon", "start"]);
    let status = env.ok(&["daemon", "status"]);
    assert!(status.contains("AUDIT LOG UNAVAILABLE"), "{status}");
    let s = env.json(&["daemon", "status"]);
    assert_eq!(s["audit"]["ok"], false, "{s}");
    assert_eq!(s["audit"]["writes_refused"], true, "{s}");
    assert!(
        s["audit"]["problem"].as_str().unwrap().contains(problem),
        "{s}"
    );
    let refused = env.run(&["exec", "-t", "w", "echo unaudited"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("cannot write its audit log"),
        "{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("audit repair"),
        "{}",
        text(&refused)
    );
    let refused = env.run(&["new", "-s", "x"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    // Reads still work: the owner must be able to look around.
    assert!(env.ok(&["ls"]).contains('w'));

    let repaired = env.ok(&["audit", "repair"]);
    assert!(repaired.contains("repaired"), "{repaired}");
    assert!(repaired.contains("moved to"), "{repaired}");
    let r = env.exec("w", "echo audited-again");
    assert_eq!(r["exit_code"], 0, "{r}");
    env.ok(&["daemon", "stop"]);
    let verify = env.ok(&["audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
    assert!(verify.contains("audit.repair"), "{verify}");
    let entries: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "ls", "--json"])).unwrap();
    let entries = entries.as_array().unwrap();
    // The verified entries before the torn line were sealed into a segment the chain runs
    // through; the repair entry follows them.
    let repair = entries
        .iter()
        .position(|e| e["action"] == "audit.repair")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert!(
        entries[..repair]
            .iter()
            .all(|e| e["action"] != "audit.repair")
    );
    assert_eq!(entries[0]["action"], "session.new", "{entries:?}");
    assert!(entries[repair]["risk"].as_u64().unwrap() >= 60);
    assert!(
        entries[repair]["detail"]
            .as_str()
            .unwrap()
            .contains("sealed as"),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["detail"].as_str().unwrap().contains("audited-again"))
    );
}

#[test]
fn an_edited_line_met_at_start_stops_writes_until_repaired() {
    let env = with_history();
    let edited: Vec<String> = lines(&env)
        .iter()
        .map(|l| l.replace("| sh", "| cat"))
        .collect();
    save(&env, &edited);
    refuses_writes_until_repaired(&env, "keyed hash mismatch");
}

#[test]
fn a_torn_line_left_by_a_full_disk_stops_writes_until_repaired() {
    let env = with_history();
    let mut data = std::fs::read(log_path(&env)).unwrap();
    data.extend_from_slice(br#"{"seq":9,"time":"2026-"#);
    std::fs::write(log_path(&env), data).unwrap();
    refuses_writes_until_repaired(&env, "torn");
}

#[test]
fn an_unwritable_log_is_said_to_the_writer_and_stops_later_writes() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    env.ok(&["exec", "-t", "w", "echo one"]);
    // The daemon runs as root here, so file modes do not stop it; the immutable attribute
    // does, even through the descriptor it holds.
    let log = log_path(&env);
    let chattr = |flag: &str| {
        let out = std::process::Command::new("chattr")
            .args([flag, &log.display().to_string()])
            .output()
            .expect("chattr (e2fsprogs) runs");
        assert!(out.status.success(), "chattr {flag}: {}", text(&out));
    };
    chattr("+i");
    let r = env.run(&["exec", "-t", "w", "echo not-recorded"]);
    chattr("-i");
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("this action was not audited"),
        "the writer is told: {}",
        text(&r)
    );
    refuses_writes_until_repaired(&env, "not permitted");
}

#[test]
fn a_log_deleted_while_the_daemon_runs_is_recreated_with_a_gap_entry() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    env.ok(&["exec", "-t", "w", "echo before"]);
    std::fs::remove_file(log_path(&env)).unwrap();
    env.ok(&["exec", "-t", "w", "echo during"]);
    eventually(10, "the log file is recreated", || log_path(&env).exists());
    env.ok(&["exec", "-t", "w", "echo after"]);
    env.ok(&["daemon", "stop"]);
    let verify = env.ok(&["audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
    assert!(verify.contains("audit.gap"), "{verify}");
    let all = lines(&env).join("\n");
    for word in ["echo before", "echo during", "echo after", "recovered"] {
        assert!(all.contains(word), "{word} missing from {all}");
    }
}

#[test]
fn the_key_and_head_are_private_and_outside_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let env = with_history();
    let dir = env.home.path().join("servers/t");
    let key = std::fs::read_to_string(dir.join("audit.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert!(
        !std::fs::read_to_string(log_path(&env))
            .unwrap()
            .contains(key.trim())
    );
    for f in ["audit.key", "audit.head", "audit.jsonl"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn with_a_passphrase_commands_are_sealed_and_the_chain_verifies_without_it() {
    let env = Env::new();
    let pass = |args: &[&str]| {
        let out = env
            .command(args)
            .env("AI_SESSION_PASSPHRASE", "correct horse")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    pass(&["new", "-s", "w"]);
    pass(&["exec", "-t", "w", "echo TOP-SECRET-MARKER"]);
    pass(&["daemon", "stop"]);
    let raw = std::fs::read_to_string(log_path(&env)).unwrap();
    assert!(!raw.contains("TOP-SECRET-MARKER"), "{raw}");
    assert!(raw.contains("sealed:"), "{raw}");
    // Anyone verifies the chain; only the passphrase reads the commands.
    assert!(env.ok(&["audit", "verify"]).contains("intact"));
    let without = env.ok(&["audit", "ls"]);
    assert!(!without.contains("TOP-SECRET-MARKER"), "{without}");
    assert!(
        without.contains("[sealed: set AI_SESSION_PASSPHRASE"),
        "{without}"
    );
    let with = pass(&["audit", "ls"]);
    assert!(with.contains("echo TOP-SECRET-MARKER"), "{with}");
}
