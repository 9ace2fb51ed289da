//! `mcp_tools`: what the MCP tool list costs a model before its first call, per tool group.
//!
//! For each group (and the default set, and all of them) spawns `ai-session mcp --tools GROUP`
//! (the `ai-session` binary next to this one, or `--bin PATH`) in a temporary
//! `AI_SESSION_HOME`, initializes, asks `tools/list`, and counts the tokens (o200k_base, exact)
//! of the `tools` array as the client receives it, which is what a client puts in the model's
//! context. Prints one line per set: tools, bytes, tokens of the whole list, and tokens of what
//! clients hand the model (each tool's name, description and input schema).
//!
//! usage: mcp_tools [--bin PATH]

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ai_session_output::{Encoding, count_tokens};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SETS: &[&str] = &[
    "sessions",
    "context",
    "snapshots",
    "agents",
    "bus",
    "tasks",
    "sessions,context,snapshots",
    "all",
];

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut bin = std::env::current_exe()?
        .parent()
        .ok_or("no directory")?
        .join("ai-session");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bin" => bin = PathBuf::from(args.next().ok_or("--bin needs a path")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let home = tempfile::tempdir()?;
    println!(
        "{:<28} {:>5} {:>7} {:>7} {:>13}",
        "tools", "count", "bytes", "tokens", "model tokens"
    );
    for set in SETS {
        let mut tools = list(&bin, home.path(), set)?;
        let text = serde_json::to_string(&tools)?;
        let count = tools.as_array().map_or(0, Vec::len);
        let tokens = count_tokens(&text, Encoding::O200kBase);
        // What clients put in the model's context: name, description, input schema (the
        // output schema and annotations are for the client's own checks and display).
        for t in tools.as_array_mut().into_iter().flatten() {
            if let Some(obj) = t.as_object_mut() {
                obj.retain(|k, _| matches!(k.as_str(), "name" | "description" | "inputSchema"));
            }
        }
        let model = count_tokens(&serde_json::to_string(&tools)?, Encoding::O200kBase);
        println!(
            "{set:<28} {count:>5} {:>7} {tokens:>7} {model:>13}",
            text.len()
        );
    }
    Ok(())
}

/// The `tools` array `ai-session mcp --tools SET` answers `tools/list` with.
fn list(bin: &PathBuf, home: &std::path::Path, set: &str) -> Result<Value, Error> {
    let mut child = Command::new(bin)
        .args(["-L", "bench", "mcp", "--tools", set])
        .env("AI_SESSION_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let send = |stdin: &mut std::process::ChildStdin, v: Value| -> Result<(), Error> {
        writeln!(stdin, "{v}")?;
        stdin.flush()?;
        Ok(())
    };
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "mcp_tools", "version": "1"}}}),
    )?;
    answer(&mut stdout, 1)?;
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )?;
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )?;
    let tools = answer(&mut stdout, 2)?["result"]["tools"].take();
    drop(stdin);
    child.wait()?;
    Ok(tools)
}

/// The response with id `id`, skipping notifications.
fn answer(out: &mut impl BufRead, id: u64) -> Result<Value, Error> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            return Err("the MCP server closed stdout".into());
        }
        let v: Value = serde_json::from_str(&line)?;
        if v["id"] == json!(id) {
            return Ok(v);
        }
    }
}
