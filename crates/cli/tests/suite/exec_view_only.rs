//! `session.exec` with `view_only`: the answer carries the views and no `output` (the log keeps
//! it, `read --since output_start` returns it byte for byte); a result without a view keeps its
//! output; the CLI's `--view compact` asks for it and prints the same view as before.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Env;

fn lines(n: usize) -> String {
    (1..=n)
        .map(|i| format!("line {i} of the file, some words to make it longer\n"))
        .collect()
}

/// A view's first and last lines and whether it names lines left out.
fn shape(view: &str) -> (Option<&str>, Option<&str>, bool) {
    let gap = view.lines().any(|l| l.starts_with("[lines "));
    (view.lines().next(), view.lines().last(), gap)
}

/// One `session.exec` over the socket with `params`; the answer's `result`.
fn exec(env: &Env, params: Value) -> Value {
    let stream = UnixStream::connect(env.home.path().join("run/t.sock")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "session.exec", "params": params});
    let mut line = serde_json::to_vec(&req).expect("json");
    line.push(b'\n');
    (&stream).write_all(&line).expect("send");
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .expect("answer");
    let answer: Value = serde_json::from_str(&answer).expect("json answer");
    answer["result"].clone()
}

#[test]
fn view_only_leaves_the_output_in_the_log_and_answers_with_the_views() {
    let env = Env::new();
    env.ok(&["new", "-s", "v"]);
    let file = env.home.path().join("lines.txt");
    let text = lines(3000);
    std::fs::write(&file, &text).expect("write");
    let cat = format!("cat '{}'", file.display());

    let full = exec(
        &env,
        json!({"target": "v", "command": cat, "timeout_ms": 30_000}),
    );
    assert_eq!(full["output"], text.as_str());
    let only = exec(
        &env,
        json!({"target": "v", "command": cat, "timeout_ms": 30_000, "view_only": true}),
    );
    assert_eq!(only["status"], "exited", "{only}");
    assert_eq!(only["exit_code"], 0);
    assert_eq!(only["output"], "", "the output is left out");
    // The same views as the answer with the output (the left-out lines' offsets are each
    // exec's own, so the view's cut may move by a line).
    for key in ["whole", "raw_lines", "status", "budget"] {
        assert_eq!(only["compact"][key], full["compact"][key], "{key}");
    }
    let text_of = |r: &Value| r["compact"]["text"].as_str().expect("a view").to_owned();
    let (a, b) = (text_of(&only), text_of(&full));
    assert_eq!(shape(&a), shape(&b));
    assert_eq!(only["parsed"], full["parsed"]);
    // The log still has it: `read` from its start returns it whole.
    let start = only["output_start"].as_u64().expect("start").to_string();
    let end = only["output_end"].as_u64().expect("end");
    let len = (end - only["output_start"].as_u64().expect("start")).to_string();
    let read = env.json(&["read", "-t", "v", "--since", &start, "--max-bytes", &len]);
    assert_eq!(read["data"], text.as_str());
    assert_eq!(read["end"].as_u64(), Some(end));

    // A command still running has no view: its output so far comes back.
    let running = exec(
        &env,
        json!({"target": "v", "command": "echo so-far; sleep 3", "timeout_ms": 30_000,
            "idle_timeout_ms": 700, "view_only": true}),
    );
    assert_eq!(running["status"], "running", "{running}");
    assert!(running["compact"].is_null(), "{running}");
    assert_eq!(running["output"], "so-far\n");
}

#[test]
fn the_cli_compact_view_prints_the_view_without_the_output() {
    let env = Env::new();
    env.ok(&["new", "-s", "v"]);
    let file = env.home.path().join("lines.txt");
    std::fs::write(&file, lines(20_000)).expect("write");
    let file_len = lines(20_000).len();
    let cat = format!("cat '{}'", file.display());
    let whole = env.json(&["exec", "-t", "v", "--timeout", "30", &cat]);
    let view = whole["compact"]["text"].as_str().expect("view");
    assert_eq!(
        whole["compact"]["whole"], false,
        "a view shorter than the output"
    );
    let shown = env.ok(&[
        "exec",
        "-t",
        "v",
        "--timeout",
        "30",
        "--view",
        "compact",
        &cat,
    ]);
    // The view, not the output: head, the line naming what was left out, tail.
    assert_eq!(shape(&shown), shape(view));
    assert!(shape(&shown).2, "{shown}");
    assert!(shown.len() < file_len / 4, "{} bytes printed", shown.len());
}
