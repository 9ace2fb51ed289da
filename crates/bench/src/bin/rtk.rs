//! `rtk`: tokens and key facts of ai-session's compact views against rtk's filters on the recorded
//! fixtures of `crates/output/fixtures`, for the fixtures rtk has a filter for.
//!
//! rtk runs the tool itself, so each run puts stand-ins on `PATH` that print the recorded output
//! and exit with the recorded code, and log the arguments they were called with. A fixture is
//! compared only when rtk called the tool with the fixture's own arguments: when rtk asks for
//! another format (`--message-format=json`, `--porcelain`), the recorded text is not what it would
//! have read, and the fixture is listed as not comparable.
//!
//! usage: rtk [--rtk PATH] [--fixtures DIR] [--show NAME]
//! rtk is built from source for this comparison only (see docs/benchmarks.md); never a dependency.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ai_session_output::{Encoding, Handle, compact, count_tokens, parse};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Programs a fixture's command may run; every one gets a stand-in.
const STAND_INS: &[&str] = &[
    "cargo", "git", "go", "pnpm", "npm", "npx", "pip", "pip3", "uv", "python", "python3", "pytest",
    "tsc", "jest", "vitest", "mocha", "vite", "webpack", "ls", "eslint", "ruff", "mypy", "find",
];

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn opt(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let rtk = PathBuf::from(opt(&args, "--rtk").unwrap_or("/tmp/rtk/target/release/rtk".into()));
    let dir = PathBuf::from(
        opt(&args, "--fixtures")
            .unwrap_or(format!("{}/../output/fixtures", env!("CARGO_MANIFEST_DIR"))),
    );
    let show = opt(&args, "--show");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let mut rows = Vec::new();
    let (mut ours_total, mut rtk_total, mut raw_total) = (0usize, 0usize, 0usize);
    let (mut ours_facts, mut rtk_facts, mut facts_total) = (0usize, 0usize, 0usize);
    let mut rtk_wrong_exit = Vec::new();
    for meta_path in names {
        let name = meta_path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).map_err(err)?)
            .map_err(err)?;
        let command = meta["command"].as_str().unwrap_or("").to_string();
        let code = meta["exit_code"].as_i64().unwrap_or(0);
        let facts: Vec<String> = meta["facts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let txt = meta_path.with_extension("txt");
        let Some(rtk_args) = rtk_invocation(&command, &txt) else {
            continue;
        };
        let raw = String::from_utf8_lossy(&std::fs::read(&txt).map_err(err)?).into_owned();
        let run = run_rtk(&rtk, &rtk_args, &txt, code)?;
        let expected = tool_args(&command);
        // `rtk log` reads the recorded file itself; every other filter must have run the tool
        // with the fixture's own arguments (rtk find walks the tree itself: not comparable).
        let reads_file = rtk_args.first().is_some_and(|a| a == "log");
        let comparable = reads_file
            || (!run.calls.is_empty()
                && run
                    .calls
                    .iter()
                    .all(|c| expected.as_deref().is_none_or(|e| c == e)));
        let view = compact(
            &parse(Some(&command), &raw),
            &raw,
            &Handle::log(&name, 0, raw.len() as u64),
        );
        let kept = |text: &str| {
            facts
                .iter()
                .filter(|f| text.contains(f.as_str()) || text.contains(&normalise_fact(f)))
                .count()
        };
        let rtk_tokens = count_tokens(&run.output, Encoding::O200kBase);
        let raw_tokens = count_tokens(&raw, Encoding::O200kBase);
        if show.as_deref().is_some_and(|s| s == name || s == "all") {
            eprintln!(
                "== {name}: rtk {}\n{}\n== ours\n{}",
                rtk_args.join(" "),
                run.output,
                view.text
            );
        }
        if comparable {
            ours_total += view.compact_tokens;
            rtk_total += rtk_tokens;
            raw_total += raw_tokens;
            ours_facts += kept(&view.text);
            rtk_facts += kept(&run.output);
            facts_total += facts.len();
            if !reads_file && (run.code == 0) != (code == 0) {
                rtk_wrong_exit.push(format!(
                    "{name}: tool exited {code}, rtk exited {}",
                    run.code
                ));
            }
        }
        rows.push(json!({
            "fixture": name,
            "rtk": format!("rtk {}", rtk_args.join(" ")),
            "comparable": comparable,
            "rtk_called": run.calls,
            "raw_tokens": raw_tokens,
            "rtk_tokens": rtk_tokens,
            "ours_tokens": view.compact_tokens,
            "facts": facts.len(),
            "rtk_facts_kept": kept(&run.output),
            "ours_facts_kept": kept(&view.text),
            "exit": {"tool": code, "rtk": run.code},
        }));
    }
    let report = json!({
        "rtk": String::from_utf8_lossy(&Command::new(&rtk).arg("--version").output().map_err(err)?.stdout).trim(),
        "comparable_total": {
            "raw_tokens": raw_total, "rtk_tokens": rtk_total, "ours_tokens": ours_total,
            "facts": facts_total, "rtk_facts_kept": rtk_facts, "ours_facts_kept": ours_facts,
            "rtk_exit_status_differs": rtk_wrong_exit,
        },
        "fixtures": rows,
    });
    println!("{}", serde_json::to_string_pretty(&report).map_err(err)?);
    Ok(())
}

/// The program words of a fixture's command (no path on the program).
fn words(command: &str) -> Vec<String> {
    let mut w: Vec<String> = command.split_whitespace().map(String::from).collect();
    if let Some(first) = w.first_mut() {
        *first = first.rsplit('/').next().unwrap_or(first).to_string();
    }
    w
}

/// The arguments the tool itself was run with in the fixture (`python3 -m pytest -v` → `-v` for
/// pytest; `npx tsc --noEmit` → `--noEmit` for tsc).
fn tool_args(command: &str) -> Option<String> {
    let w = words(command);
    let skip = match w.first().map(String::as_str) {
        Some("python3" | "python") if w.get(1).is_some_and(|a| a == "-m") => 3,
        Some("npx") => 2,
        _ => 1,
    };
    Some(w.get(skip..)?.join(" "))
}

/// The rtk command line that filters a fixture's command, when rtk has a filter for it.
fn rtk_invocation(command: &str, txt: &Path) -> Option<Vec<String>> {
    let w = words(command);
    let prog = w.first()?.as_str();
    let rest = w[1..].to_vec();
    let with = |head: &[&str], tail: Vec<String>| {
        Some(head.iter().map(|s| s.to_string()).chain(tail).collect())
    };
    match prog {
        "cargo" | "git" | "go" | "pnpm" | "pip" | "ruff" => with(&[prog], rest),
        "ls" | "find" => with(&[prog], rest),
        "python3" | "python" if rest.first().is_some_and(|a| a == "-m") => {
            if rest.get(1)? != "pytest" {
                return None;
            }
            with(&["pytest"], rest[2..].to_vec())
        }
        "python3" | "python" => with(&["log"], vec![txt.display().to_string()]),
        "npx" => match rest.first()?.as_str() {
            "tsc" => with(&["tsc"], rest[1..].to_vec()),
            "vitest" => with(&["vitest"], rest[1..].to_vec()),
            "eslint" => with(&["lint"], rest[1..].to_vec()),
            _ => with(&["npx"], rest),
        },
        "eslint" => with(&["lint"], rest),
        "tsc" | "vitest" | "pytest" => with(&[prog], rest),
        _ => None,
    }
}

struct RtkRun {
    output: String,
    code: i32,
    /// The arguments each stand-in was called with.
    calls: Vec<String>,
}

fn run_rtk(rtk: &Path, args: &[String], txt: &Path, code: i64) -> Res<RtkRun> {
    let scratch = tempfile::tempdir().map_err(err)?;
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).map_err(err)?;
    let log = scratch.path().join("calls.log");
    for name in STAND_INS {
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\ncat '{}'\nexit {code}\n",
            log.display(),
            txt.display()
        );
        let path = bin.join(name);
        std::fs::write(&path, script).map_err(err)?;
        Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .map_err(err)?;
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(rtk)
        .args(args)
        .current_dir(scratch.path())
        .env("PATH", path)
        .env("HOME", scratch.path())
        .env("XDG_DATA_HOME", scratch.path().join("data"))
        .env("XDG_CONFIG_HOME", scratch.path().join("config"))
        .env("NO_COLOR", "1")
        .output()
        .map_err(err)?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    Ok(RtkRun {
        output,
        code: out.status.code().unwrap_or(-1),
        calls,
    })
}

/// A `file(l,c)` location (tsc) is the same fact as `file:l:c`, for either view.
fn normalise_fact(fact: &str) -> String {
    fact.strip_suffix(')')
        .and_then(|f| f.rsplit_once('('))
        .and_then(|(file, lc)| lc.split_once(',').map(|(l, c)| format!("{file}:{l}:{c}")))
        .unwrap_or_else(|| fact.to_string())
}
