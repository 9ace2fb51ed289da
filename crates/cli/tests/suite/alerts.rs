//! Anomaly detection end to end, on a real daemon with thresholds from its config file: a
//! retry loop, an output flood and a session left waiting for input are each listed by
//! `ai-session alerts`, published on the bus topic `$alerts`, audited with their risk score and
//! counted in `ai_session_alerts_total`; without the config's thresholds the same execs raise
//! nothing. The rules' arithmetic is unit-tested in `crates/daemon/src/telemetry/alerts`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use super::harness::{Env, eventually};

fn env_with(alerts: &str) -> Env {
    let env = Env::new();
    std::fs::write(
        env.home.path().join("config.toml"),
        format!("[alerts]\n{alerts}"),
    )
    .expect("config");
    env.ok(&["new", "-s", "w"]);
    env
}

fn alerts(env: &Env) -> Vec<Value> {
    env.json(&["alerts"])["alerts"]
        .as_array()
        .expect("alerts")
        .clone()
}

fn of_rule(env: &Env, rule: &str) -> Option<Value> {
    alerts(env).into_iter().find(|a| a["rule"] == rule)
}

#[test]
fn a_retry_loop_is_listed_published_audited_and_counted() {
    let env = env_with("retry_count = 3\nretry_window_secs = 600\n");
    // A subscriber on `$alerts`, ready before the loop starts.
    let mut sub = env
        .command(&["bus", "subscribe", "$alerts", "--count", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("bus subscribe");
    eventually(30, "the $alerts subscription", || {
        env.ok(&["bus", "topics", "--json"]).contains("$alerts")
    });
    for _ in 0..2 {
        assert_eq!(env.exec("w", "ls /nonexistent-dir")["exit_code"], 2);
    }
    assert!(
        of_rule(&env, "retry_loop").is_none(),
        "two failures are no loop"
    );
    env.exec("w", "ls /nonexistent-dir");
    let alert = of_rule(&env, "retry_loop").expect("a retry_loop alert after the third");
    assert_eq!(alert["session"], "w");
    assert_eq!(alert["command"], "ls /nonexistent-dir");
    assert_eq!(alert["caller"], "owner");
    assert_eq!(alert["risk"], 30);
    assert_eq!(alert["figures"]["failures"], 3);

    let mut line = String::new();
    BufReader::new(sub.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let published: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(published["rule"], "retry_loop", "{line}");
    assert_eq!(published["id"], alert["id"]);
    assert!(
        published.get("command").is_none(),
        "the bus copy leaves the command out"
    );
    sub.wait().expect("subscriber exits after one message");

    eventually(30, "the audit entry", || {
        let out = env.ok(&["audit", "ls", "--min-risk", "30", "--json"]);
        let entries: Value = serde_json::from_str(&out).expect("audit json");
        entries
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["action"] == "alert.retry_loop"))
    });
    let text = env.ok(&["stats", "--prometheus"]);
    assert!(
        text.contains("ai_session_alerts_total{rule=\"retry_loop\"} 1"),
        "{text}"
    );
    // The human listing names it.
    assert!(env.ok(&["alerts"]).contains("retry_loop"));
}

#[test]
fn an_output_flood_and_a_long_wait_for_input_are_raised() {
    let env = env_with("flood_bytes = 100000\ninput_wait_secs = 1\n");
    env.exec("w", "head -c 50000 /dev/zero | tr '\\0' x");
    assert!(
        of_rule(&env, "output_flood").is_none(),
        "under the threshold"
    );
    env.exec("w", "head -c 200000 /dev/zero | tr '\\0' x");
    let flood = of_rule(&env, "output_flood").expect("output_flood");
    assert!(flood["figures"]["bytes"].as_u64().expect("bytes") >= 200_000);

    let r = env.json(&["exec", "-t", "w", "--timeout", "30", "read answer"]);
    assert_eq!(r["status"], "waiting_for_input", "{r}");
    let mut wait = None;
    eventually(30, "an input_wait alert", || {
        wait = of_rule(&env, "input_wait");
        wait.is_some()
    });
    assert_eq!(wait.expect("alert")["session"], "w");
}

#[test]
fn the_default_thresholds_stay_quiet_on_ordinary_work() {
    let env = env_with("");
    for _ in 0..2 {
        env.exec("w", "false");
    }
    env.exec("w", "head -c 200000 /dev/zero | tr '\\0' x");
    env.exec("w", "true");
    let r = env.json(&["alerts"]);
    assert_eq!(r["total"], 0, "{r}");
}

#[test]
fn a_bad_threshold_stops_the_daemon_with_the_key_named() {
    let env = Env::new();
    std::fs::write(
        env.home.path().join("config.toml"),
        "[alerts]\nretry_cuont = 3\n",
    )
    .expect("config");
    let out = env.run(&["new", "-s", "w"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retry_cuont"), "{err}");
}
