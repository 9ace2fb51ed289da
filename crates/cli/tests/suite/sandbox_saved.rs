//! A sandboxed session brought back (after a SIGKILL of its daemon, from a snapshot, by another
//! principal) runs in the sandbox it ran in, planned against the workspace it started in:
//! never looser than it ran, nor than its caller could create.

use super::access::{as_token, bound_token, text};
use super::harness::Env;
use super::restart::sigkill;
use super::security::{session, workspace};

/// A policy file: read and run anything, write only the workspace (and the terminal), no
/// degrading (a host that cannot enforce it refuses the session). Its path.
pub(super) fn workspace_only_policy(env: &Env) -> String {
    let policy = env.home.path().join("workspace-only.toml");
    std::fs::write(
        &policy,
        r#"
allow_degrade = false
network = "all"
[fs]
read = ["/"]
write = ["{workspace}", "/dev/null", "/dev/tty", "/dev/pts"]
execute = ["/"]
private_tmp = false
"#,
    )
    .unwrap();
    policy.display().to_string()
}

/// A directory outside the workspace that the policy lets the shell read and enter.
pub(super) fn outside(env: &Env) -> std::path::PathBuf {
    let dir = env.home.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writing outside the workspace fails and leaves no file; writing inside works.
pub(super) fn confined(env: &Env, name: &str, ws: &str, outside: &std::path::Path, tag: &str) {
    let escaped = outside.join(format!("escaped-{tag}.txt"));
    let r = env.exec(name, &format!("echo x > {}", escaped.display()));
    assert_ne!(r["exit_code"], 0, "{name} wrote outside its workspace: {r}");
    assert!(!escaped.exists(), "{name} wrote {}", escaped.display());
    let kept = std::path::Path::new(ws).join(format!("inside-{tag}.txt"));
    let r = env.exec(name, &format!("echo y > {}", kept.display()));
    assert_eq!(r["exit_code"], 0, "{name} cannot write its workspace: {r}");
    assert!(kept.exists());
}

/// A daemon with session `box` in the workspace-only policy: the daemon, the workspace, a
/// directory outside it, and `new`'s answer.
fn boxed() -> (Env, String, std::path::PathBuf, serde_json::Value) {
    let env = Env::outside_tmp();
    let ws = workspace(&env);
    let policy = workspace_only_policy(&env);
    let away = outside(&env);
    let made = env.json(&["new", "-s", "box", "--policy", &policy, "-c", &ws]);
    (env, ws, away, made)
}

#[test]
fn a_sandboxed_session_comes_back_after_a_sigkill_confined_to_the_workspace_it_started_in() {
    let (env, ws, away, made) = boxed();
    assert_eq!(made["sandbox"]["policy"], "custom", "{made}");
    assert!(made.get("persisted").is_none(), "{made}");
    confined(&env, "box", &ws, &away, "before");
    // It goes on working outside its workspace, where it may read.
    let r = env.exec("box", &format!("cd {}", away.display()));
    assert_eq!(r["exit_code"], 0, "{r}");

    sigkill(env.daemon_pid());
    // The next call starts a daemon, which brings the session back.
    let list = env.json(&["ls"]);
    let back = session(&list, "box");
    assert_eq!(back["sandbox"]["policy"], "custom", "{list}");
    assert!(
        back["sandbox"]["active"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains("landlock")),
        "{list}"
    );
    // Where it left off, and still held to the workspace it started in: the directory it
    // last worked in is not its workspace.
    let r = env.exec("box", "pwd");
    assert_eq!(
        r["output"].as_str().unwrap().trim(),
        away.display().to_string(),
        "{r}"
    );
    confined(&env, "box", &ws, &away, "after-kill");

    // A clean restart keeps it so too.
    env.ok(&["daemon", "stop"]);
    let list = env.json(&["ls"]);
    assert_eq!(
        session(&list, "box")["sandbox"]["policy"],
        "custom",
        "{list}"
    );
    confined(&env, "box", &ws, &away, "after-stop");
}

#[test]
fn a_snapshot_of_a_sandboxed_session_restores_only_in_the_sandbox_it_ran_in() {
    let (env, ws, away, _) = boxed();
    let r = env.exec("box", "export MARK=kept");
    assert_eq!(r["exit_code"], 0, "{r}");
    let snap = env.json(&["snapshot", "-t", "box"]);
    let (snap_id, session_id) = (
        snap["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{snap}"))
            .to_owned(),
        snap["session"].as_str().unwrap().to_owned(),
    );

    // The owner's restore runs where the session ran.
    let copy = env.json(&["restore", &snap_id, "-s", "copy"]);
    assert_eq!(copy["session"]["sandbox"]["policy"], "custom", "{copy}");
    confined(&env, "copy", &ws, &away, "owner-copy");

    let caps = [
        format!("snapshot:restore:{session_id}"),
        "session:create".to_string(),
        "session:list".to_string(),
        "session:exec".to_string(),
    ];
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
    // A token bound to another policy cannot bring it back in either: its own policy could be
    // looser than the session's, the session's looser than its own.
    let bound = bound_token(&env, &caps, Some("read-only"));
    let r = as_token(&env, &bound, &["restore", &snap_id, "-s", "stolen"]);
    assert!(!r.status.success(), "{}", text(&r));
    assert!(
        text(&r).contains("bound to policy 'read-only'"),
        "{}",
        text(&r)
    );
    assert!(!env.ok(&["ls"]).contains("stolen"));
    // Nothing of the refused restore is left for the next start to bring back.
    env.ok(&["daemon", "stop"]);
    assert!(!env.ok(&["ls"]).contains("stolen"));

    // An unbound token gets the session's sandbox, not the looser `isolated` its new
    // sessions get by default.
    let free = bound_token(&env, &caps, None);
    let r = as_token(
        &env,
        &free,
        &["restore", &snap_id, "-s", "theirs", "--json"],
    );
    assert!(r.status.success(), "{}", text(&r));
    let info: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(info["session"]["sandbox"]["policy"], "custom", "{info}");
    confined(&env, "theirs", &ws, &away, "token-copy");
}
