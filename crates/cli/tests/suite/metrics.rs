//! Telemetry end to end: `GET /metrics` checked by the real `promtool`, the token on the main
//! listener and none on `--metrics-listen`, the figures matching what was done, `stats`, a real
//! Prometheus server scraping the daemon, and `AI_SESSION_TELEMETRY=off`. `promtool` and
//! `prometheus` come from Debian's `prometheus` package (`.ci/run` installs it); the tests fail
//! without them.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::{Env, eventually};

/// A daemon serving HTTP and `/metrics` on free loopback ports.
struct Served {
    env: Env,
    addr: String,
    metrics: String,
    token: String,
}

impl Served {
    fn start(env: Env) -> Self {
        let r = env.json(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        let token_file = r["token_file"].as_str().expect("token_file");
        let token = std::fs::read_to_string(token_file).expect("token file");
        Self {
            addr: r["listen"].as_str().expect("listen").to_owned(),
            metrics: r["metrics_listen"]
                .as_str()
                .unwrap_or_else(|| panic!("no metrics_listen in {r}"))
                .to_owned(),
            token: token.trim().to_owned(),
            env,
        }
    }
}

/// One GET: status, headers, body.
fn get(addr: &str, path: &str, bearer: Option<&str>) -> (u16, String, String) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let a = super::harness::http(addr, "GET", path, &headers, "");
    (a.status, a.headers, a.body)
}

/// The value of the sample written exactly as `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// `promtool check metrics` on `text`: it must exit 0 and report nothing (no format error,
/// no lint problem).
fn promtool_check(text: &str) {
    let out = super::harness::with_stdin(
        Command::new("promtool").args(["check", "metrics"]),
        text.as_bytes(),
    )
    .unwrap_or_else(|e| {
        panic!("cannot run promtool ({e}): install Debian's prometheus package (.ci/run does)")
    });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {:?}\n{report}\n{text}",
        out.status
    );
}

#[test]
fn metrics_pass_promtool_count_what_was_done_and_need_the_token() {
    let s = Served::start(Env::new());
    s.env.ok(&["new", "-s", "m"]);
    assert_eq!(s.env.exec("m", "echo hi")["exit_code"], 0);
    assert_eq!(s.env.exec("m", "false")["exit_code"], 1);
    let missing = s.env.run(&["exec", "-t", "nope", "true"]);
    assert!(!missing.status.success());

    // The main listener wants the token, like every route.
    let (status, _, _) = get(&s.addr, "/metrics", None);
    assert_eq!(status, 401);
    let (status, headers, text) = get(&s.addr, "/metrics", Some(&s.token));
    assert_eq!(status, 200, "{text}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    promtool_check(&text);
    assert_eq!(
        sample(&text, r#"ai_session_execs_total{outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"ai_session_execs_total{outcome="nonzero"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"ai_session_execs_total{outcome="error"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"ai_session_requests_total{method="session.exec",result="ok"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            r#"ai_session_requests_total{method="session.exec",result="error"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "ai_session_exec_pty_duration_seconds_count"),
        2.0
    );
    assert_eq!(sample(&text, "ai_session_exec_duration_seconds_count"), 3.0);
    assert_eq!(
        sample(
            &text,
            r#"ai_session_request_duration_seconds_count{method="session.new"}"#
        ),
        1.0
    );
    let live = sample(&text, r#"ai_session_sessions{state="idle"}"#)
        + sample(&text, r#"ai_session_sessions{state="busy"}"#);
    assert_eq!(live, 1.0);
    // "hi\r\n" at least.
    assert!(sample(&text, "ai_session_exec_output_bytes_total") >= 3.0);
    assert!(sample(&text, "ai_session_process_resident_memory_bytes") > 1e6);
    assert!(sample(&text, "ai_session_process_open_fds") >= 3.0);
    assert!(sample(&text, r#"ai_session_exec_tokens_total{kind="raw"}"#) >= 1.0);
    assert!(sample(&text, r#"ai_session_exec_tokens_total{kind="returned"}"#) >= 1.0);
    assert_eq!(sample(&text, "ai_session_http_unauthorized_total"), 1.0);

    // The scrape listener: no token, and nothing but /metrics.
    let (status, _, text) = get(&s.metrics, "/metrics", None);
    assert_eq!(status, 200, "{text}");
    promtool_check(&text);
    assert_eq!(
        sample(&text, r#"ai_session_execs_total{outcome="ok"}"#),
        1.0
    );
    let (status, _, _) = get(&s.metrics, "/v1/sessions", None);
    assert_eq!(status, 404);
    let (status, _, _) = get(&s.metrics, "/v1/sessions", Some(&s.token));
    assert_eq!(status, 404);

    // An API token without daemon:status may not read the figures; the refusal is counted.
    let t = s
        .env
        .run(&["access", "token", "--json", "--cap", "session:read:*"]);
    let t: Value = serde_json::from_slice(&t.stdout).expect("access token --json");
    let api = t["token"].as_str().expect("token");
    let (status, _, body) = get(&s.addr, "/metrics", Some(api));
    assert_eq!(status, 403, "{body}");
    let (_, _, text) = get(&s.metrics, "/metrics", None);
    assert_eq!(
        sample(
            &text,
            r#"ai_session_requests_total{method="daemon.metrics",result="denied"}"#
        ),
        1.0
    );
    assert_eq!(sample(&text, "ai_session_capability_denials_total"), 1.0);

    // `serve` again reports the running servers; another /metrics address is a conflict.
    let again = s.env.json(&["serve", "--metrics-listen", "127.0.0.1:0"]);
    assert_eq!(again["started"], false);
    assert_eq!(again["metrics_listen"], s.metrics.as_str());
    let other = s.env.run(&["serve", "--metrics-listen", "127.0.0.2:0"]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("already listens"));

    // The same figures for a person, and in the Prometheus format from the CLI.
    let stats = s.env.json(&["stats"]);
    assert_eq!(stats["telemetry"], true);
    assert_eq!(stats["execs"]["ok"], 1);
    assert_eq!(stats["execs"]["nonzero"], 1);
    assert_eq!(stats["execs"]["error"], 1);
    assert_eq!(stats["exec_pty_duration"]["count"], 2);
    let usage = stats["session_usage"].as_array().expect("session_usage");
    let m = usage.iter().find(|u| u["name"] == "m").expect("session m");
    assert!(m["processes"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["rss_bytes"].as_u64().unwrap() > 0, "{m}");
    let exec = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "session.exec")
        .expect("session.exec counted");
    assert_eq!(exec["duration"]["count"], 3, "{exec}");
    let human = s.env.ok(&["stats"]);
    assert!(human.contains("execs: 1 ok, 1 nonzero"), "{human}");
    promtool_check(&s.env.ok(&["stats", "--prometheus"]));
}

#[test]
fn metrics_listen_joins_a_running_server() {
    let env = Env::new();
    let first = env.json(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(first.get("metrics_listen").is_none(), "{first}");
    let second = env.json(&["serve", "--metrics-listen", "127.0.0.1:0"]);
    assert_eq!(second["listen"], first["listen"]);
    let metrics = second["metrics_listen"].as_str().expect("metrics_listen");
    let (status, _, text) = get(metrics, "/metrics", None);
    assert_eq!(status, 200);
    promtool_check(&text);
}

#[test]
fn tokens_are_counted_per_agent() {
    let env = Env::new();
    let token = env
        .ok(&["agent", "register", "builder", "--keep"])
        .trim()
        .to_owned();
    for args in [
        &["new", "-s", "w"][..],
        &["exec", "-t", "w", "echo one two three"],
    ] {
        let out = env
            .command(args)
            .env("AI_SESSION_TOKEN", &token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stats = env.json(&["stats"]);
    let agents = stats["agents"].as_array().expect("agents");
    let builder = agents
        .iter()
        .find(|a| a["agent"] == "builder")
        .unwrap_or_else(|| panic!("no builder in {stats}"));
    assert_eq!(builder["execs"], 1);
    assert!(builder["raw_tokens"].as_u64().unwrap() >= 3, "{builder}");
    assert!(
        builder["returned_tokens"].as_u64().unwrap() >= 1,
        "{builder}"
    );
}

#[test]
fn telemetry_off_keeps_no_counters() {
    let env = Env::new();
    let out = env
        .command(&["new", "-s", "q"])
        .env("AI_SESSION_TELEMETRY", "off")
        .output()
        .unwrap();
    assert!(out.status.success());
    env.exec("q", "true");
    let stats = env.json(&["stats"]);
    assert_eq!(stats["telemetry"], false);
    assert_eq!(stats["execs"]["ok"], 0);
    // Gauges are still read.
    assert_eq!(
        stats["sessions"]["idle"].as_u64().unwrap() + stats["sessions"]["busy"].as_u64().unwrap(),
        1
    );
    let text = env.ok(&["stats", "--prometheus"]);
    assert_eq!(sample(&text, "ai_session_telemetry_enabled"), 0.0);
}

/// A Prometheus server of its own, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Prometheus {
    fn scraping(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: ai-session\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // A free port: bound, then released for Prometheus to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run prometheus ({e}): install Debian's prometheus package (.ci/run does)")
            });
        Self { child, addr, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The instant vector of `query` (URL-encoded), or nothing while the server is not up.
    fn query(&self, encoded: &str) -> Vec<Value> {
        if TcpStream::connect(&self.addr).is_err() {
            return Vec::new();
        }
        let (status, _, body) = get(&self.addr, &format!("/api/v1/query?query={encoded}"), None);
        if status != 200 {
            return Vec::new();
        }
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

#[test]
fn prometheus_scrapes_the_execs() {
    let s = Served::start(Env::new());
    s.env.ok(&["new", "-s", "p"]);
    for _ in 0..3 {
        assert_eq!(s.env.exec("p", "true")["exit_code"], 0);
    }
    let prom = Prometheus::scraping(&s.metrics);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let last = prom.query("ai_session_execs_total");
        let ok = last.iter().find(|r| r["metric"]["outcome"] == "ok");
        if let Some(r) = ok {
            assert_eq!(r["metric"]["job"], "ai-session", "{r}");
            assert_eq!(r["metric"]["instance"], s.metrics.as_str(), "{r}");
            if r["value"][1] == "3" {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had ai_session_execs_total{{outcome=\"ok\"}} = 3; last answer {last:?}\nits log:\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The scrape itself is healthy, and later execs show up in the next scrapes.
    eventually(30, "up == 1", || {
        prom.query("up")
            .iter()
            .any(|r| r["value"][1] == "1" && r["metric"]["job"] == "ai-session")
    });
    assert_eq!(s.env.exec("p", "sh -c 'exit 3'")["exit_code"], 3);
    eventually(30, "the nonzero exec scraped", || {
        prom.query("ai_session_execs_total%7Boutcome%3D%22nonzero%22%7D")
            .iter()
            .any(|r| r["value"][1] == "1")
    });
}
