//! The methods the dashboard's later panels read, over real sockets as a logged-in browser:
//! `audit.open` (a sealed detail opened only with `audit:open`, the opening itself audited,
//! refused when the daemon has no passphrase) and `bus.recent` (each topic's last messages,
//! subscribed or not, bounded per topic).

use serde_json::{Value, json};

use super::super::harness::Env;
use super::{Server, api_token};

const PASSPHRASE: &str = "correct horse battery";

/// The audit entries of `session` through `GET /v1/audit`, as the browser `login` sees them.
fn audit_of(s: &Server, login: &super::Login, query: &str) -> Vec<Value> {
    let a = s.as_browser(login, "GET", &format!("/v1/audit?{query}"), None, "");
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["entries"].as_array().expect("entries").clone()
}

fn open(s: &Server, login: &super::Login, seq: u64) -> super::Answer {
    let body = json!({ "seq": seq }).to_string();
    s.as_browser(login, "POST", "/v1/audit/open", Some(&login.csrf), &body)
}

#[test]
fn a_sealed_audit_detail_opens_only_with_audit_open_and_the_opening_is_audited() {
    let s = Server::start_in(Env::new(), Some(PASSPHRASE));
    s.env.ok(&["new", "-s", "w"]);
    s.env.exec("w", "echo SEALED-$((20+1))-MARKER");
    let owner = s.login(None);
    let entries = audit_of(&s, &owner, "session=w");
    let exec = entries
        .iter()
        .find(|e| e["action"] == "session.exec")
        .expect("the exec's entry")
        .clone();
    assert_eq!(exec["sealed"], true, "{exec}");
    assert!(
        !exec["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("MARKER"),
        "a listed sealed detail stays sealed: {exec}"
    );
    let seq = exec["seq"].as_u64().expect("seq");

    // Without the CSRF token nothing is opened.
    let body = json!({ "seq": seq }).to_string();
    let a = s.as_browser(&owner, "POST", "/v1/audit/open", None, &body);
    assert_eq!(a.status, 403, "{}", a.body);

    let a = open(&s, &owner, seq);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json()["detail"],
        "echo SEALED-$((20+1))-MARKER",
        "{}",
        a.body
    );
    assert_eq!(a.json()["sealed"], true);

    // The opening is in the log: who opened which entry.
    let opened: Vec<Value> = audit_of(&s, &owner, "")
        .into_iter()
        .filter(|e| e["action"] == "audit.open")
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["principal"], "http", "{opened:?}");
    let shown = open(&s, &owner, opened[0]["seq"].as_u64().unwrap()).json();
    assert_eq!(shown["detail"], seq.to_string(), "{shown}");

    // A token that may read the log but not open it is refused, naming the capability.
    let reader = api_token(&s.env, &["audit:list", "web:login"]);
    let viewer = s.login(Some(&reader));
    assert_eq!(audit_of(&s, &viewer, "session=w").len(), entries.len());
    let a = open(&s, &viewer, seq);
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("audit:open"), "{}", a.body);
    assert!(!a.body.contains("MARKER"), "{}", a.body);

    // No such entry.
    let a = open(&s, &owner, 999_999);
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("#999999"), "{}", a.body);

    // A daemon started without the passphrase (its encrypted store moved away, the log
    // kept) cannot open what was sealed, and says so.
    s.env.ok(&["daemon", "stop"]);
    std::fs::remove_dir_all(s.env.home.path().join("servers/t/store")).expect("store");
    let s = Server::start_in(s.env, None);
    let owner = s.login(None);
    let a = open(&s, &owner, seq);
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("AI_SESSION_PASSPHRASE"), "{}", a.body);
    assert!(!a.body.contains("MARKER"), "{}", a.body);
    // What it wrote itself is not sealed: opening it gives the detail as it is.
    let plain = audit_of(&s, &owner, "")
        .into_iter()
        .rfind(|e| e["action"] == "audit.open")
        .expect("the refused opening is audited too");
    assert_eq!(plain["sealed"], false, "{plain}");
    let a = open(&s, &owner, plain["seq"].as_u64().unwrap());
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["sealed"], false);
    assert_eq!(a.json()["detail"], seq.to_string());
}

#[test]
fn bus_recent_keeps_each_topics_last_messages_whether_or_not_anyone_listens() {
    let s = Server::start();
    let owner = s.login(None);
    let messages: Vec<Value> = (0..55).map(|n| json!({ "n": n })).collect();
    let body = json!({ "topic": "builds", "messages": messages }).to_string();
    let a = s.as_browser(&owner, "POST", "/v1/bus/publish", Some(&owner.csrf), &body);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["delivered"], 0, "nobody subscribed: {}", a.body);
    s.env
        .ok(&["bus", "publish", "docs", r#"{"page":"README"}"#]);

    let all = s
        .as_browser(&owner, "GET", "/v1/bus/recent", None, "")
        .json();
    assert_eq!(
        all["topics"],
        json!([{"topic": "builds", "kept": 50}, {"topic": "docs", "kept": 1}]),
        "{all}"
    );
    assert_eq!(all["messages"], json!([]), "{all}");

    let last = s
        .as_browser(
            &owner,
            "GET",
            "/v1/bus/recent?topic=builds&limit=3",
            None,
            "",
        )
        .json();
    let payloads: Vec<&Value> = last["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["payload"]["n"])
        .collect();
    assert_eq!(payloads, [&json!(52), &json!(53), &json!(54)], "{last}");
    assert_eq!(last["messages"][0]["topic"], "builds");
    let kept = s
        .as_browser(&owner, "GET", "/v1/bus/recent?topic=builds", None, "")
        .json();
    assert_eq!(kept["messages"].as_array().map(Vec::len), Some(50));
    assert_eq!(kept["messages"][0]["payload"]["n"], 5, "the oldest went");

    // Reading a topic's messages is subscribing to it, a moment late: it needs bus:subscribe.
    let token = api_token(&s.env, &["bus:topics", "web:login"]);
    let viewer = s.login(Some(&token));
    let a = s.as_browser(&viewer, "GET", "/v1/bus/recent?topic=builds", None, "");
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("bus:subscribe"), "{}", a.body);
}
