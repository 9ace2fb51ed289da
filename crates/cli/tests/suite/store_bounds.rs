//! Issue 16, "nothing acknowledged is lost, nothing unbounded grows", end to end: snapshot
//! retention, truncated imports, crash leftovers at start, a full disk.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use super::harness::{Env, files_under};

fn store(env: &Env) -> PathBuf {
    env.home.path().join("servers/t/store")
}

/// Runs with `--json` last (subcommands of `snapshot` take it after their own name).
fn json(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = env.run(&all);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            daemon_log(env)
        )
    })
}

fn snapshot_ids(env: &Env, target: &str) -> Vec<String> {
    json(env, &["snapshot", "ls", "-t", target])["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn snapshot_prune_and_configured_retention_bound_the_snapshots() {
    let env = Env::new();
    // The first command starts the daemon: it reads the retention from its environment.
    let out = env
        .command(&["new", "-s", "a"])
        .env("AI_SESSION_SNAPSHOT_KEEP", "3")
        .output()
        .expect("new");
    assert!(out.status.success(), "{out:?}");
    env.ok(&["new", "-s", "b"]);
    let mut taken = Vec::new();
    for n in 0..5 {
        env.exec("a", &format!("seq 1 2000 | sed 's/^/line {n} /'"));
        taken.push(
            json(&env, &["snapshot", "-t", "a"])["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        json(&env, &["snapshot", "-t", "b"]);
    }
    // Kept per session: the newest three of each.
    assert_eq!(snapshot_ids(&env, "a"), taken[2..].to_vec());
    assert_eq!(snapshot_ids(&env, "b").len(), 3);

    // By hand: one per session for a, then a byte bound over everything.
    let r = json(&env, &["snapshot", "prune", "-t", "a", "--keep", "1"]);
    let removed: Vec<&str> = r["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(removed, vec![taken[2].as_str(), taken[3].as_str()], "{r}");
    assert!(r["bytes_freed"].as_u64().expect("freed") > 0, "{r}");
    assert_eq!(snapshot_ids(&env, "a"), vec![taken[4].clone()]);
    assert_eq!(snapshot_ids(&env, "b").len(), 3, "b untouched");
    let r = json(&env, &["snapshot", "prune", "--max-bytes", "1"]);
    assert!(
        r["bytes_total"].as_u64().expect("total") > 1,
        "the newest stays: {r}"
    );
    let all = json(&env, &["snapshot", "ls"])["snapshots"]
        .as_array()
        .expect("list")
        .len();
    assert_eq!(all, 1);
    // What is left restores, with its output.
    let left = json(&env, &["snapshot", "ls"])["snapshots"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    env.ok(&["restore", &left, "-s", "back"]);
    // Nothing but the snapshot left's data remains on disk.
    let chunks = files_under(&store(&env).join("chunks")).len();
    let r = json(&env, &["snapshot", "prune", "--keep", "1"]);
    assert_eq!(r["chunks_removed"], 0, "{r}");
    assert_eq!(files_under(&store(&env).join("chunks")).len(), chunks);
    // No rule is a usage error, not a silent no-op.
    let out = env.run(&["snapshot", "prune"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--keep"),
        "{out:?}"
    );
}

fn daemon_log(env: &Env) -> String {
    std::fs::read_to_string(env.home.path().join("servers/t/daemon.log")).unwrap_or_default()
}

/// The user's path: `ai-session import [-s NAME] < FILE`, its exit status and message.
fn import_file(env: &Env, bytes: &[u8], name: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = env
        .command(&["import", "-s", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// JSON-RPC straight to the daemon's socket, to see an error's kind and hint.
pub(super) fn rpc(env: &Env, method: &str, params: Value) -> Value {
    use std::io::{BufRead, Write};
    let stream = std::os::unix::net::UnixStream::connect(env.home.path().join("run/t.sock"))
        .expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("timeout");
    let req = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut line = serde_json::to_vec(&req).expect("json");
    line.push(b'\n');
    (&stream).write_all(&line).expect("send");
    let mut reply = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut reply)
        .expect("reply");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"))
}

/// Where each frame of an export starts, and its end (layout in `crates/store/README.md`).
fn frame_bounds(export: &[u8]) -> Vec<usize> {
    let mut at = 8;
    let mut out = vec![at];
    while at + 12 <= export.len() {
        let len = u32::from_le_bytes(export[at..at + 4].try_into().expect("len")) as usize;
        at += 12 + len;
        out.push(at);
    }
    out
}

#[test]
fn truncated_and_malformed_imports_are_bad_input_saying_what_to_do() {
    let from = Env::new();
    from.ok(&["new", "-s", "a"]);
    from.exec("a", "seq 1 300");
    from.ok(&["snapshot", "-t", "a"]);
    from.exec("a", "echo second");
    from.ok(&["snapshot", "-t", "a"]);
    let export = from.run(&["export", "-t", "a"]).stdout;
    assert!(export.starts_with(b"AISX"));
    let to = Env::new();
    to.ok(&["new", "-s", "warm"]);
    // An exec's checkpoint is awaited behind the queued record of `new`: the record is on
    // disk once it returns.
    assert_eq!(to.exec("warm", "true")["exit_code"], 0);
    // Session records (directories): the warm session's own files change with its
    // checkpoints, so the records are compared, not their files.
    let records = |env: &Env| -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(store(env).join("sessions"))
            .expect("sessions")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    };
    let before = records(&to);
    let n = export.len();
    // Every cut in the header, around every frame boundary, and spread through the bodies.
    let mut cuts: Vec<usize> = (1..16).collect();
    for b in frame_bounds(&export) {
        cuts.extend([b.saturating_sub(1), b, b + 1, b + 5, b + 11, b + 13]);
    }
    cuts.extend((1..60).map(|i| i * n / 60));
    cuts.retain(|c| (1..n).contains(c));
    cuts.sort();
    cuts.dedup();
    assert!(cuts.len() > 60, "{} cut points", cuts.len());
    for cut in &cuts {
        let data = base64::engine::general_purpose::STANDARD.encode(&export[..*cut]);
        let r = rpc(
            &to,
            "session.import",
            serde_json::json!({"data_b64": data, "name": format!("c{cut}"), "source": "cut.aisx"}),
        );
        let err = &r["error"];
        assert_eq!(
            err["data"]["kind"], "invalid_params",
            "cut at {cut} of {n}: {r}"
        );
        let msg = err["message"].as_str().expect("message");
        assert!(
            msg.contains("cut.aisx") && msg.contains("truncated"),
            "cut at {cut}: {msg}"
        );
        let hint = err["data"]["hint"].as_str().unwrap_or_default();
        assert!(hint.contains("export"), "cut at {cut}: no advice: {r}");
    }
    // Through the CLI, as a user meets it.
    let out = import_file(&to, &export[..n / 2], "half");
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is truncated") && stderr.contains("hint:"),
        "{stderr}"
    );
    // Garbage, and a file of another kind.
    for junk in [&b"PK\x03\x04 not an export at all"[..], &[0u8; 4096][..]] {
        let out = import_file(&to, junk, "junk");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("not an ai-session export") && stderr.contains("hint:"),
            "{stderr}"
        );
    }
    // Too large for one request: said before anything is sent, with what to do.
    let big = vec![b'x'; 13 << 20];
    let out = import_file(&to, &big, "big");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("at most") && stderr.contains("snapshot prune"),
        "{stderr}"
    );
    // Nothing of any of them was written, and the daemon serves on.
    assert_eq!(records(&to), before);
    assert!(files_under(&store(&to).join("snapshots")).is_empty());
    assert_eq!(to.exec("warm", "echo still-here")["exit_code"], 0);
    // The whole file imports.
    let out = import_file(&to, &export, "whole");
    assert!(out.status.success(), "{out:?}");
}

/// A tmpfs mounted for one test (as root), lazily unmounted when dropped: the daemon may
/// still hold files in it.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed: this test needs root (it fills a small file system)",
            dir.display()
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        if !unmounted.is_ok_and(|s| s.success()) {
            eprintln!("could not unmount {}", self.0.display());
        }
    }
}

/// Writes zeros into `path` until the file system refuses; true when it did.
fn fill(path: &Path) -> bool {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    for _ in 0..1024 {
        if let Err(e) = f.write_all(&block) {
            return e.raw_os_error() == Some(28);
        }
    }
    false
}

fn exec_rpc(env: &Env, target: &str, command: &str) -> Value {
    let r = rpc(
        env,
        "session.exec",
        serde_json::json!({"target": target, "command": command, "timeout_ms": 30_000}),
    );
    assert!(r.get("result").is_some(), "{r}");
    r["result"].clone()
}

#[test]
fn a_full_disk_is_said_on_the_answer_and_in_status_and_nothing_acknowledged_is_lost() {
    let env = Env::new();
    let tmpfs = Tmpfs::mount(&store(&env), "1m");
    env.ok(&["new", "-s", "a"]);
    let first = exec_rpc(&env, "a", "echo saved-0");
    assert!(first.get("persisted").is_none(), "{first}");
    let mut acked = vec!["echo saved-0".to_owned()];
    assert!(fill(&tmpfs.0.join("filler")), "the tmpfs never filled");
    // The history's last page may still take a few records; the first that does not fit is
    // answered as not saved, with the reason.
    let mut refused = None;
    for n in 1..200 {
        let command = format!("echo saved-{n}");
        let r = exec_rpc(&env, "a", &command);
        assert_eq!(r["exit_code"], 0, "{r}");
        if r["persisted"] == false {
            refused = Some((command, r));
            break;
        }
        acked.push(command);
    }
    let (refused_command, refused) = refused.expect("no exec was refused a record on a full disk");
    let why = refused["persist_error"].as_str().expect("reason");
    assert!(
        why.contains("disk full") && why.contains("history.log"),
        "{why}"
    );
    // The CLI says it too.
    let out = env.run(&["exec", "-t", "a", "echo via-cli"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was not saved"),
        "{out:?}"
    );
    // A session created now has no record: status lists the failure, its execs say so.
    let created = rpc(&env, "session.new", serde_json::json!({"name": "b"}));
    let created = &created["result"];
    assert_eq!(created["name"], "b", "{created}");
    assert_eq!(created["persisted"], false, "{created}");
    assert!(
        created["persist_error"]
            .as_str()
            .expect("reason")
            .contains("disk full"),
        "{created}"
    );
    let r = exec_rpc(&env, "b", "echo in-b");
    assert_eq!(r["persisted"], false, "{r}");
    assert!(
        r["persist_error"]
            .as_str()
            .expect("reason")
            .contains("no saved record"),
        "{r}"
    );
    let status = env.json(&["daemon", "status"]);
    let persist = &status["persist"];
    assert!(
        persist["write_failures"].as_u64().expect("count") >= 3,
        "{persist}"
    );
    assert!(
        persist["disk_full"].as_u64().expect("count") >= 3,
        "{persist}"
    );
    let failures: Vec<&str> = persist["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        failures.iter().any(|f| f.contains("append exec")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| f.contains("record new session")),
        "{failures:?}"
    );
    let human = env.ok(&["daemon", "status"]);
    assert!(
        human.contains("STORE WRITES FAILED") && human.contains("disk full"),
        "{human}"
    );
    // Space again: records are written again.
    std::fs::remove_file(tmpfs.0.join("filler")).expect("free");
    let r = exec_rpc(&env, "a", "echo saved-after");
    assert!(r.get("persisted").is_none(), "{r}");
    acked.push("echo saved-after".into());
    // Every exec answered without `persisted: false` is on disk, in order.
    env.ok(&["daemon", "stop"]);
    let store = ai_session_store::Store::open(store(&env), ai_session_store::Options::default())
        .expect("open store");
    let id = store.find_sessions("a").expect("find")[0].clone();
    let history: Vec<String> = store
        .load_history(&id)
        .expect("history")
        .into_iter()
        .map(|r| r.command)
        .collect();
    let saved: Vec<&String> = history.iter().filter(|c| acked.contains(c)).collect();
    assert_eq!(
        saved.len(),
        acked.len(),
        "acknowledged {acked:?}, on disk {history:?}"
    );
    // What was answered as not saved is not there either (the refused append left no
    // partial frame that a later one made readable).
    assert!(
        !history.contains(&refused_command),
        "{refused_command} was answered as not saved but is on disk: {history:?}"
    );
}

/// The store's session directory whose state names `name`.
fn session_dir_named(env: &Env, name: &str) -> PathBuf {
    std::fs::read_dir(store(env).join("sessions"))
        .expect("sessions")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            std::fs::read(p.join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|s| s["config"]["name"] == name)
        })
        .unwrap_or_else(|| panic!("no record named {name}"))
}

#[test]
fn what_a_killed_import_or_restore_leaves_is_removed_and_logged_at_the_next_start() {
    let from = Env::new();
    from.ok(&["new", "-s", "orig"]);
    from.exec("orig", "echo exported");
    from.ok(&["snapshot", "-t", "orig"]);
    let export = from.run(&["export", "-t", "orig"]).stdout;
    let env = Env::new();
    let out = import_file(&env, &export, "copy");
    assert!(out.status.success(), "{out:?}");
    // The import committed under its final name: no record is left under the export's.
    let dir = session_dir_named(&env, "copy");
    let snaps: Vec<String> = json(&env, &["snapshot", "ls"])["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(snaps.len(), 1);
    env.ok(&["daemon", "stop"]);
    // The states a SIGKILL leaves: this import before its end (its marker still there), a
    // restore before its commit (a directory holding only a temporary history), a whole-file
    // write before its rename.
    std::fs::write(
        dir.join(".import"),
        serde_json::json!({ "snapshots": snaps }).to_string(),
    )
    .expect("marker");
    let lonely = store(&env).join("sessions/0000000000aa-abcdef");
    std::fs::create_dir_all(&lonely).expect("dir");
    std::fs::write(lonely.join(".history.log.999.0.tmp"), b"AISH").expect("tmp");
    let tmp = store(&env).join("metadata/.layout.json.999.1.tmp");
    std::fs::write(&tmp, b"{").expect("tmp");

    // The next start removes them, says so in its status and its log, and brings nothing
    // half-made back.
    let ls = env.ok(&["ls"]);
    assert!(!ls.contains("copy") && !ls.contains("orig"), "{ls}");
    let status = env.json(&["daemon", "status"]);
    let recovered: Vec<&str> = status["persist"]["recovered"]
        .as_array()
        .unwrap_or_else(|| panic!("nothing recovered: {status}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The three, the temporary history inside the lonely directory, and the chunks only the
    // rolled-back import's snapshot used.
    assert_eq!(recovered.len(), 5, "{recovered:#?}");
    assert!(
        recovered
            .iter()
            .any(|r| r.contains("no snapshot references")),
        "{recovered:#?}"
    );
    assert!(
        recovered
            .iter()
            .any(|r| r.contains(&*dir.to_string_lossy()) && r.contains("import")),
        "{recovered:#?}"
    );
    assert!(
        recovered.iter().any(|r| r.contains("0000000000aa-abcdef")),
        "{recovered:#?}"
    );
    assert!(
        recovered
            .iter()
            .any(|r| r.contains(".layout.json.999.1.tmp")),
        "{recovered:#?}"
    );
    let log = daemon_log(&env);
    assert!(log.contains("left by a killed writer"), "{log}");
    assert!(!dir.exists() && !lonely.exists() && !tmp.exists());
    let left = json(&env, &["snapshot", "ls"]);
    assert_eq!(
        left["snapshots"].as_array().expect("list").len(),
        0,
        "{left}"
    );
    // And the start after that finds nothing more.
    env.ok(&["daemon", "stop"]);
    env.ok(&["ls"]);
    let status = env.json(&["daemon", "status"]);
    assert!(status["persist"]["dir"].is_string(), "{status}");
    assert!(status["persist"].get("recovered").is_none(), "{status}");
}

/// The answer's error kind, or `None` for a result.
fn error_kind(reply: &Value) -> Option<&str> {
    reply["error"]["data"]["kind"].as_str()
}

#[test]
fn an_export_is_handed_out_in_pieces_from_a_spool_removed_once_read() {
    let from = Env::new();
    from.ok(&["new", "-s", "a"]);
    from.ok(&["new", "-s", "b"]);
    from.exec("a", "seq 1 3000");
    for _ in 0..3 {
        from.exec("a", "echo one more");
        from.ok(&["snapshot", "-t", "a"]);
    }
    let spools = || files_under(&store(&from).join("exports"));
    let first = rpc(
        &from,
        "session.export",
        serde_json::json!({"target": "a", "max_bytes": 1000}),
    );
    let r = &first["result"];
    let total = r["bytes"].as_u64().expect("bytes");
    let handle = r["export"].as_str().expect("a handle").to_owned();
    assert!(total > 3000, "{total} bytes");
    assert_eq!(
        (r["offset"].as_u64(), r["next_offset"].as_u64()),
        (Some(0), Some(1000))
    );
    assert_eq!(spools().len(), 1);

    // Another session's name with this handle, and an offset past the end: refused, and the
    // spool stays for the right calls.
    let other = rpc(
        &from,
        "session.export",
        serde_json::json!({"target": "b", "export": handle, "offset": 1000}),
    );
    assert_eq!(error_kind(&other), Some("not_found"), "{other}");
    let past = rpc(
        &from,
        "session.export",
        serde_json::json!({"target": "a", "export": handle, "offset": total + 1}),
    );
    assert_eq!(error_kind(&past), Some("invalid_params"), "{past}");
    assert_eq!(spools().len(), 1);

    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64
        .decode(r["data_b64"].as_str().expect("data"))
        .expect("b64");
    let mut pieces = 1;
    loop {
        let reply = rpc(
            &from,
            "session.export",
            serde_json::json!({"target": "a", "export": handle, "offset": bytes.len(), "max_bytes": 1000}),
        );
        let r = &reply["result"];
        assert_eq!(r["offset"].as_u64(), Some(bytes.len() as u64), "{reply}");
        bytes.extend(
            b64.decode(r["data_b64"].as_str().expect("data"))
                .expect("b64"),
        );
        pieces += 1;
        if r["export"].is_null() {
            break;
        }
    }
    assert_eq!(bytes.len() as u64, total);
    assert!(pieces >= 4, "{pieces} pieces");
    assert!(spools().is_empty(), "{:?}", spools());
    // The handle is gone: a clear error saying to start again.
    let again = rpc(
        &from,
        "session.export",
        serde_json::json!({"target": "a", "export": handle, "offset": 0}),
    );
    assert_eq!(error_kind(&again), Some("not_found"), "{again}");
    assert!(
        again["error"]["data"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("start the export again")),
        "{again}"
    );

    // The pieces are the export: it imports, with its snapshots.
    let to = Env::new();
    let out = import_file(&to, &bytes, "moved");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = json(&to, &["snapshot", "ls"]);
    assert_eq!(
        listed["snapshots"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
}
