//! Nodes authenticating to NATS with their own credentials: a `.creds` file (user JWT and nkey
//! seed) against a real `nats-server` in operator mode, an nkey seed against one that lists
//! its users by nkey; wrong credentials refused with a clear error, the daemon not started.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use ai_session_cluster::testing::NatsServer;
use ai_session_cluster::testing::credentials::{NkeyUser, Operator};

use super::harness::{Env, eventually};

/// A daemon's state directory with `[cluster]` settings in its config file: the tests'
/// timings, and `url` and `node` when given.
fn configured(url: &str, node: &str, extra: &str) -> Env {
    let env = Env::new();
    let mut config = "[cluster]\nheartbeat_secs = 0.5\nlease_secs = 3\n".to_string();
    if !url.is_empty() {
        config.push_str(&format!("url = \"{url}\"\nnode = \"{node}\"\n"));
    }
    config.push_str(extra);
    std::fs::write(env.home.path().join("config.toml"), config).expect("config");
    env
}

/// `daemon run --notify-ready ARGS`: the daemon and its first line ("ready"), or `None` and
/// what it said on stderr when it did not start.
fn run(env: &Env, args: &[&str]) -> Result<Child, String> {
    let mut all = vec!["daemon", "run", "--notify-ready"];
    all.extend_from_slice(args);
    let mut child = env
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the daemon");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).ok();
        tx.send(line).ok();
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon said nothing in 30 s");
    if line.trim() == "ready" {
        return Ok(child);
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        !out.status.success(),
        "a daemon that did not start exits with an error"
    );
    Err(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("write");
    path.display().to_string()
}

fn nodes(env: &Env) -> Vec<String> {
    let v = env.json(&["nodes"]);
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["node"].as_str().expect("node").to_string())
        .collect()
}

#[test]
fn nodes_join_with_a_creds_file_and_strangers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Operator::new(dir.path()).expect("operator");
    let conf = operator.server_conf();
    let server =
        NatsServer::start(&[std::ffi::OsStr::new("-c"), conf.as_os_str()]).expect("nats-server");
    let url = server.url("nats");
    // Node a: `creds_file` in its configuration.
    let creds_a = operator.user_creds("a").expect("creds");
    let a = configured(
        &url,
        "a",
        &format!("creds_file = \"{}\"\n", creds_a.display()),
    );
    a.ok(&["daemon", "start"]);
    // Node b: `--creds` on the command line.
    let creds_b = operator.user_creds("b").expect("creds");
    let b = configured("", "", "");
    let creds_flag = creds_b.display().to_string();
    let mut child = run(
        &b,
        &["--cluster", &url, "--node", "b", "--creds", &creds_flag],
    )
    .expect("node b joins with --creds");
    eventually(15, "both nodes listed", || {
        let mut listed = nodes(&a);
        listed.sort();
        listed == ["a", "b"]
    });
    // The cluster works for them: a session on b, run through a.
    a.ok(&["new", "-s", "far", "--node", "b", "--shell", "/bin/sh"]);
    let out = a.exec("far", "echo $((6*7))");
    assert_eq!(out["output"].as_str().map(str::trim), Some("42"), "{out}");

    // A user of an account the operator never issued is refused, and says how to fix it.
    let stranger = operator.stranger_creds("stranger").expect("creds");
    let c = configured("", "", "");
    let err = run(
        &c,
        &[
            "--cluster",
            &url,
            "--node",
            "c",
            "--creds",
            &stranger.display().to_string(),
        ],
    )
    .expect_err("a stranger's credentials");
    assert!(err.contains("authorization violation"), "{err}");
    assert!(err.contains("creds_file"), "{err}");
    // No credentials at all: refused the same way.
    let err = run(&c, &["--cluster", &url, "--node", "c"]).expect_err("no credentials");
    assert!(err.contains("authorization violation"), "{err}");
    // A credentials file that is not there.
    let missing = dir.path().join("missing.creds").display().to_string();
    let err = run(&c, &["--cluster", &url, "--node", "c", "--creds", &missing])
        .expect_err("a missing file");
    assert!(
        err.contains("cannot read") && err.contains("missing.creds"),
        "{err}"
    );
    assert_eq!(nodes(&a).len(), 2, "no node joined with bad credentials");
    b.ok(&["daemon", "stop"]);
    child.wait().ok();
}

#[test]
fn nodes_join_with_an_nkey_seed_and_other_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = NkeyUser::new().expect("nkey");
    let conf = dir.path().join("server.conf");
    write(
        &conf,
        &format!(
            "authorization {{\n  users = [ {{ nkey: {} }} ]\n}}\n",
            user.public
        ),
    );
    let server =
        NatsServer::start(&[std::ffi::OsStr::new("-c"), conf.as_os_str()]).expect("nats-server");
    let url = server.url("nats");
    let seed = write(&dir.path().join("a.nk"), &format!("{}\n", user.seed));
    let a = configured(&url, "a", &format!("nkey_file = \"{seed}\"\n"));
    a.ok(&["daemon", "start"]);
    assert_eq!(nodes(&a), ["a"]);

    // Another user's seed: refused.
    let other = NkeyUser::new().expect("nkey");
    let seed = write(&dir.path().join("b.nk"), &other.seed);
    let b = configured(&url, "b", &format!("nkey_file = \"{seed}\"\n"));
    let err = run(&b, &[]).expect_err("an unknown nkey");
    assert!(err.contains("authorization violation"), "{err}");
    // Not a seed at all: said before connecting.
    let seed = write(&dir.path().join("c.nk"), "not a seed\n");
    let c = configured(&url, "c", &format!("nkey_file = \"{seed}\"\n"));
    let err = run(&c, &[]).expect_err("not a seed");
    assert!(err.contains("does not hold a user nkey seed"), "{err}");
    // Both ways at once: refused with the keys to fix.
    let d = configured(
        &url,
        "d",
        &format!("nkey_file = \"{seed}\"\ncreds_file = \"{seed}\"\n"),
    );
    let err = run(&d, &[]).expect_err("two identities");
    assert!(err.contains("creds_file and nkey_file"), "{err}");
}
