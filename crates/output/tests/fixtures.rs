//! Golden tests over the recorded corpus in `fixtures/`: the parsed structure and the compact view of
//! every fixture are snapshots, and every key fact listed in a fixture's sidecar must appear in its compact
//! view.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] functions.

use std::path::{Path, PathBuf};

use ai_session_output::{Handle, Status, compact, parse};

struct Fixture {
    name: String,
    command: String,
    exit_code: i64,
    facts: Vec<String>,
    raw: String,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let raw = String::from_utf8_lossy(&std::fs::read(p.with_extension("txt")).unwrap())
                .into_owned();
            Fixture {
                name: p.file_stem().unwrap().to_str().unwrap().to_string(),
                command: meta["command"].as_str().unwrap().to_string(),
                exit_code: meta["exit_code"].as_i64().unwrap(),
                facts: meta["facts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect(),
                raw,
            }
        })
        .collect()
}

/// Facts are written as the tool prints them; a `file(l,c)` location (tsc) or `file l:c` (webpack) is
/// the same fact as `file:l:c`.
fn normalise_fact(fact: &str) -> String {
    let re = regex::Regex::new(r"^(.+)\((\d+),(\d+)\)$").unwrap();
    let webpack = regex::Regex::new(r"^(\S+\.\w+) (\d+):(\d+)$").unwrap();
    let fact = re.replace(fact, "$1:$2:$3");
    webpack.replace(&fact, "$1:$2:$3").into_owned()
}

#[test]
fn corpus_is_present() {
    assert!(fixtures().len() >= 30);
}

#[test]
fn snapshots() {
    for f in fixtures() {
        let parsed = parse(Some(&f.command), &f.raw);
        let view = compact(
            &parsed,
            &f.raw,
            &Handle::log(&f.name, 0, f.raw.len() as u64),
        );
        insta::assert_json_snapshot!(format!("{}__parsed", f.name), parsed);
        insta::assert_snapshot!(format!("{}__compact", f.name), view.text);
    }
}

#[test]
fn every_key_fact_is_kept() {
    let mut missing = Vec::new();
    for f in fixtures() {
        let parsed = parse(Some(&f.command), &f.raw);
        let view = compact(
            &parsed,
            &f.raw,
            &Handle::log(&f.name, 0, f.raw.len() as u64),
        );
        for fact in &f.facts {
            if !view.text.contains(&normalise_fact(fact)) && !view.text.contains(fact.as_str()) {
                missing.push(format!("{}: {fact}", f.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "facts missing from compact views:\n{}",
        missing.join("\n")
    );
}

/// A command that exited non-zero and printed a failure is never reported as success.
#[test]
fn failures_are_never_success() {
    for f in fixtures() {
        let parsed = parse(Some(&f.command), &f.raw);
        let view = compact(&parsed, &f.raw, &Handle::default());
        if f.exit_code != 0 {
            assert_ne!(
                view.status,
                Status::Success,
                "{} exited {} but reads as success",
                f.name,
                f.exit_code
            );
        }
    }
}

/// Content detection alone, without the command line, still avoids a wrong success and keeps the facts
/// of the test and build fixtures.
#[test]
fn detection_without_command_keeps_failures() {
    for f in fixtures() {
        let parsed = parse(None, &f.raw);
        let view = compact(&parsed, &f.raw, &Handle::default());
        if f.exit_code != 0 {
            assert_ne!(
                view.status,
                Status::Success,
                "{} without command reads as success",
                f.name
            );
        }
    }
}

#[test]
fn every_view_names_the_way_back() {
    for f in fixtures() {
        let parsed = parse(Some(&f.command), &f.raw);
        let view = compact(&parsed, &f.raw, &Handle::log("s1", 10, 20));
        let last = view.text.lines().last().unwrap();
        if view.whole {
            // The output as-is: no footer, no token accounting.
            assert_eq!(
                view.text.trim_end(),
                ai_session_output::text::clean(&f.raw).trim_end()
            );
            assert!(view.compact_tokens <= view.raw_tokens, "{}", f.name);
        } else {
            assert!(
                last.contains("read -t s1 --since 10"),
                "{}: footer {last}",
                f.name
            );
            assert!(view.compact_tokens < view.raw_tokens, "{}", f.name);
        }
    }
}
