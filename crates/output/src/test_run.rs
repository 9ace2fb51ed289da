//! Test runner output: cargo test, cargo nextest, pytest, jest, vitest, go test, mocha.
//!
//! Counts come from the runner's own summary line when there is one, else from per-test lines. Every
//! failing test named anywhere (progress lines, failure blocks, summary lists) ends up in `failures`, with
//! the assertion message and file:line when its block gives them.

use std::sync::LazyLock;

use regex::Regex;

use crate::parsed::{Location, Status, TestFailure, TestResults};

/// Most assertion lines kept per failure; the handle leads to the rest.
const MESSAGE_LINES: usize = 6;

fn results(tool: &str) -> TestResults {
    TestResults {
        tool: tool.into(),
        status: Status::Unknown,
        passed: 0,
        failed: 0,
        errors: 0,
        skipped: 0,
        failures: vec![],
        diagnostics: vec![],
        summary: vec![],
    }
}

/// Returns the failure named `name`, adding it when missing.
fn failure<'a>(r: &'a mut TestResults, name: &str) -> &'a mut TestFailure {
    let i = match r.failures.iter().position(|f| f.name == name) {
        Some(i) => i,
        None => {
            r.failures.push(TestFailure {
                name: name.to_string(),
                location: None,
                message: vec![],
            });
            r.failures.len() - 1
        }
    };
    &mut r.failures[i]
}

fn push_message(f: &mut TestFailure, line: &str) {
    let t = line.trim_end();
    if f.message.len() < MESSAGE_LINES && !t.trim().is_empty() {
        f.message
            .push(crate::text::shorten(t.trim(), 300).into_owned());
    }
}

/// Settles the status: failed when anything failed or the summary is missing while failures show.
fn finish(mut r: TestResults, complete: bool) -> TestResults {
    // The runner's own summary line is exact; failures named elsewhere only fill in a missing one
    // (a failure is often named twice: in its block and in the summary list).
    if !complete {
        r.failed = r.failed.max(r.failures.len().saturating_sub(r.errors));
    }
    let failing =
        r.failed > 0 || r.errors > 0 || !r.failures.is_empty() || !r.diagnostics.is_empty();
    r.status = match (failing, complete) {
        (true, _) => Status::Failed,
        (false, true) => Status::Success,
        (false, false) => Status::Unknown,
    };
    r
}

fn loc(file: &str, line: &str, col: Option<&str>) -> Location {
    Location::new(file, line.parse().ok(), col.and_then(|c| c.parse().ok()))
}

fn count(caps: &str, word: &str) -> usize {
    static N: LazyLock<Regex> = lazy_re!(r"(\d+) ([a-z]+)");
    N.captures_iter(caps)
        .filter(|c| c[2].starts_with(word))
        .filter_map(|c| c[1].parse::<usize>().ok())
        .sum()
}

static CT_LINE: LazyLock<Regex> = lazy_re!(r"^test (.+?) \.\.\. (ok|FAILED|ignored)");
static CT_RESULT: LazyLock<Regex> = lazy_re!(r"^test result: (ok|FAILED)\. (.*)$");
static CT_BLOCK: LazyLock<Regex> = lazy_re!(r"^---- (.+?) std(out|err) ----$");
static RUST_PANIC: LazyLock<Regex> =
    lazy_re!(r"^thread '([^']*)'(?: \(\d+\))? panicked at (.+?):(\d+):(\d+):?(.*)$");

/// Parses `cargo test` output, including compile errors that stopped it.
pub fn parse_cargo_test(lines: &[&str]) -> TestResults {
    let mut r = results("cargo-test");
    r.diagnostics = crate::build::rustc_diagnostics(lines);
    r.diagnostics
        .retain(|d| d.severity == crate::parsed::Severity::Error);
    let (mut seen_result, mut block): (bool, Option<String>) = (false, None);
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for line in lines {
        if let Some(c) = CT_LINE.captures(line) {
            match &c[2] {
                "ok" => passed += 1,
                "ignored" => skipped += 1,
                _ => {
                    failed += 1;
                    failure(&mut r, &c[1]);
                }
            }
        } else if let Some(c) = CT_RESULT.captures(line) {
            seen_result = true;
            r.passed += count(&c[2], "passed");
            r.failed += count(&c[2], "failed");
            r.skipped += count(&c[2], "ignored");
            r.summary.push(line.trim().to_string());
        } else if let Some(c) = CT_BLOCK.captures(line) {
            block = Some(c[1].to_string());
        } else if let Some(name) = block.clone() {
            cargo_block_line(&mut r, &name, line, &mut block);
        } else if line.starts_with("error: test failed")
            || line.starts_with("error: ") && line.contains("target")
        {
            r.summary.push(line.trim().to_string());
        }
    }
    if !seen_result {
        (r.passed, r.failed, r.skipped) = (passed, failed, skipped);
    }
    finish(r, seen_result)
}

/// One line inside a `---- name stdout ----` block: the panic location and message, up to the backtrace.
fn cargo_block_line(r: &mut TestResults, name: &str, line: &str, block: &mut Option<String>) {
    let f = failure(r, name);
    if let Some(c) = RUST_PANIC.captures(line) {
        f.location = Some(loc(&c[2], &c[3], Some(&c[4])));
        push_message(f, &c[5]);
    } else if line.starts_with("stack backtrace:")
        || line.starts_with("note: ")
        || line == "failures:"
    {
        *block = None;
    } else {
        push_message(f, line);
    }
}

static NT_STATUS: LazyLock<Regex> = lazy_re!(
    r"^\s+(PASS|FAIL|SKIP|SIGSEGV|SIGABRT|SIGKILL|TIMEOUT|LEAK|ABORT)\s+\[.*?\]\s+(?:\(\s*\d+/\d+\)\s+)?(.+)$"
);
static NT_SUMMARY: LazyLock<Regex> = lazy_re!(r"^\s+Summary \[.*?\] (.*)$");
/// Old nextest names the test in the block header; newer ones print `  stdout ───` under the status line.
static NT_BLOCK: LazyLock<Regex> = lazy_re!(r"^-+ STD(OUT|ERR):\s+(.+?)\s+-+$");
static NT_BLOCK_NEW: LazyLock<Regex> = lazy_re!(r"^\s*(stdout|stderr) ─+$");

/// Parses `cargo nextest run` output: the summary counts, every failing test from its status line, and
/// the panic location and assertion message from its captured output.
pub fn parse_nextest(lines: &[&str]) -> TestResults {
    let mut r = results("nextest");
    r.diagnostics = crate::build::rustc_diagnostics(lines);
    r.diagnostics
        .retain(|d| d.severity == crate::parsed::Severity::Error);
    // The failing test whose output is being read, and whether its panic message is being collected.
    let (mut current, mut in_block, mut collecting): (Option<String>, bool, bool) =
        (None, false, false);
    let mut done = false;
    for line in lines {
        let t = line.trim();
        if let Some(c) = NT_SUMMARY.captures(line) {
            done = true;
            (current, in_block, collecting) = (None, false, false);
            r.passed = count(&c[1], "passed");
            r.failed = count(&c[1], "failed");
            r.skipped = count(&c[1], "skipped");
            r.summary.push(t.to_string());
        } else if let Some(c) = NT_STATUS.captures(line) {
            (in_block, collecting) = (false, false);
            current = None;
            if &c[1] != "PASS" && &c[1] != "SKIP" {
                let name = c[2].trim().to_string();
                failure(&mut r, &name);
                current = (!done).then_some(name);
            }
        } else if let Some(c) = NT_BLOCK.captures(line) {
            current = Some(c[2].to_string());
            (in_block, collecting) = (true, false);
        } else if NT_BLOCK_NEW.is_match(line) {
            in_block = current.is_some();
            collecting = false;
        } else if t.starts_with("────") {
            (current, in_block, collecting) = (None, false, false);
        } else if let (Some(name), true) = (current.as_ref(), in_block) {
            let f = failure(&mut r, &name.clone());
            if let Some(p) = RUST_PANIC.captures(t) {
                f.location = Some(loc(&p[2], &p[3], Some(&p[4])));
                push_message(f, &p[5]);
                collecting = true;
            } else if t.starts_with("stack backtrace:") || t.starts_with("note:") {
                collecting = false;
            } else if collecting || t.starts_with("Error: ") {
                push_message(f, t);
            }
        } else if t.starts_with("error: test run failed") || t.starts_with("Cancelling") {
            r.summary.push(t.to_string());
        }
    }
    finish(r, done)
}

/// The closing line, between `=` borders, or bare as `-q` prints it (`1 failed, 1 passed in
/// 0.09s`): then it must start with a count, so an ordinary line is not taken for it.
static PY_SUMMARY: LazyLock<Regex> = lazy_re!(
    r"^(?:=+ (.*\b(?:passed|failed|error|errors|skipped|deselected|no tests ran)\b.*) in [\d.]+s.*=+|(\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|xpassed)\b[^=]*|no tests ran) in [\d.]+s(?: \([^)]*\))?)$"
);
static PY_SHORT: LazyLock<Regex> = lazy_re!(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$");
static PY_BLOCK: LazyLock<Regex> = lazy_re!(r"^_{3,} (.+?) _{3,}$");
static PY_LOC: LazyLock<Regex> = lazy_re!(r"^(\S+\.py):(\d+): ?(\w*)");
static PY_E: LazyLock<Regex> = lazy_re!(r"^E\s+(.*)$");

/// Parses pytest output (default, `-v`, `-q`).
pub fn parse_pytest(lines: &[&str]) -> TestResults {
    let mut r = results("pytest");
    let mut blocks: Vec<TestFailure> = Vec::new();
    let mut complete = false;
    for line in lines {
        if let Some(c) = PY_SUMMARY.captures(line) {
            complete = true;
            let text = c.get(1).or(c.get(2)).map_or("", |m| m.as_str());
            r.passed = count(text, "passed");
            r.failed = count(text, "failed");
            r.errors = count(text, "error");
            r.skipped = count(text, "skipped");
            r.summary.push(text.to_string());
        } else if let Some(c) = PY_SHORT.captures(line) {
            let f = failure(&mut r, &c[2]);
            if let Some(m) = c.get(3) {
                push_message(f, m.as_str());
            }
        } else if let Some(c) = PY_BLOCK.captures(line) {
            blocks.push(TestFailure {
                name: c[1].to_string(),
                location: None,
                message: vec![],
            });
        } else if let Some(b) = blocks.last_mut() {
            pytest_block_line(b, line);
        }
    }
    merge_pytest_blocks(&mut r, blocks);
    finish(r, complete)
}

fn pytest_block_line(b: &mut TestFailure, line: &str) {
    if let Some(c) = PY_E.captures(line) {
        push_message(b, &c[1]);
    } else if let Some(c) = PY_LOC.captures(line) {
        let here = loc(&c[1], &c[2], None);
        if let Some(prev) = b.location.replace(here)
            && b.message.len() < MESSAGE_LINES
        {
            b.message.push(format!("via {prev}"));
        }
    }
}

/// Short-summary entries carry full ids (`file::Class::test`), blocks carry details; join them by name.
fn merge_pytest_blocks(r: &mut TestResults, blocks: Vec<TestFailure>) {
    for b in blocks {
        let key = b.name.replace('.', "::");
        let found = r
            .failures
            .iter_mut()
            .find(|f| f.name == b.name || f.name.ends_with(&format!("::{key}")));
        match found {
            Some(f) => {
                f.location = b.location;
                let short = std::mem::replace(&mut f.message, b.message);
                if f.message.is_empty() {
                    f.message = short;
                }
            }
            None => r.failures.push(b),
        }
    }
}

static JEST_TESTS: LazyLock<Regex> = lazy_re!(r"^Tests:\s+(.*)$");
static JEST_SUITES: LazyLock<Regex> = lazy_re!(r"^Test Suites:\s+(.*)$");
static JEST_BULLET: LazyLock<Regex> = lazy_re!(r"^\s+● (.+)$");
static JS_AT: LazyLock<Regex> =
    lazy_re!(r"^\s+at (?:.*\()?((?:[A-Za-z]:)?[^():\s]+):(\d+):(\d+)\)?$");
static CODE_FRAME: LazyLock<Regex> = lazy_re!(r"^\s*>?\s*\d+\s*\|");

/// Parses jest output.
pub fn parse_jest(lines: &[&str]) -> TestResults {
    let mut r = results("jest");
    let mut current: Option<String> = None;
    let mut complete = false;
    for line in lines {
        if let Some(c) = JEST_TESTS.captures(line) {
            complete = true;
            r.passed = count(&c[1], "passed");
            r.failed = count(&c[1], "failed");
            r.skipped = count(&c[1], "skipped") + count(&c[1], "todo");
            r.summary.push(line.trim().to_string());
        } else if JEST_SUITES.is_match(line) {
            r.summary.push(line.trim().to_string());
        } else if let Some(c) = JEST_BULLET.captures(line) {
            current = Some(c[1].to_string());
            failure(&mut r, &c[1]);
        } else if line.starts_with("FAIL ")
            || line.starts_with("PASS ")
            || line.starts_with("Snapshots:")
        {
            current = None;
        } else if let Some(name) = current.as_deref() {
            js_block_line(failure(&mut r, name), line);
        }
    }
    finish(r, complete)
}

/// A line of a JS failure block: message lines, code frames skipped, the first useful stack frame kept.
fn js_block_line(f: &mut TestFailure, line: &str) {
    if CODE_FRAME.is_match(line) || line.trim_start().starts_with('|') {
        return;
    }
    if let Some(c) = JS_AT.captures(line) {
        if f.location.is_none() && !c[1].contains("node_modules") && !c[1].starts_with("node:") {
            f.location = Some(loc(&c[1], &c[2], Some(&c[3])));
        }
        return;
    }
    if !line.trim_start().starts_with("at ") {
        push_message(f, line);
    }
}

static VT_TESTS: LazyLock<Regex> = lazy_re!(r"^\s+Tests\s+(.*)$");
static VT_FILES: LazyLock<Regex> = lazy_re!(r"^\s+Test Files\s+(.*)$");
static VT_FAIL: LazyLock<Regex> = lazy_re!(r"^\s*FAIL\s+(.+? > .+)$");
static VT_LOC: LazyLock<Regex> = lazy_re!(r"^\s*❯ (\S+?):(\d+):(\d+)$");
static VT_TREE: LazyLock<Regex> = lazy_re!(r"^\s+[×✗❯] (\S+ > .+)$");

/// Parses vitest output.
pub fn parse_vitest(lines: &[&str]) -> TestResults {
    let mut r = results("vitest");
    let mut current: Option<String> = None;
    let mut complete = false;
    for line in lines {
        if let Some(c) = VT_TESTS.captures(line) {
            complete = true;
            r.passed = count(&c[1], "passed");
            r.failed = count(&c[1], "failed");
            r.skipped = count(&c[1], "skipped") + count(&c[1], "todo");
            r.summary.push(line.trim().to_string());
        } else if VT_FILES.is_match(line) {
            r.summary.push(line.trim().to_string());
        } else if let Some(c) = VT_FAIL.captures(line) {
            current = Some(c[1].trim().to_string());
            failure(&mut r, c[1].trim());
        } else if let Some(c) = VT_TREE.captures(line).filter(|_| current.is_none()) {
            failure(&mut r, c[1].trim());
        } else if line.contains("⎯⎯⎯") {
            current = None;
        } else if let Some(name) = current.as_deref() {
            let f = failure(&mut r, name);
            if let Some(c) = VT_LOC.captures(line) {
                f.location
                    .get_or_insert_with(|| loc(&c[1], &c[2], Some(&c[3])));
            } else if !CODE_FRAME.is_match(line) && !line.trim_start().starts_with('|') {
                push_message(f, line);
            }
        }
    }
    // The progress tree lists failing tests with the file first; failure blocks may repeat them.
    r.failures.dedup_by(|a, b| a.name == b.name);
    finish(r, complete)
}

static MOCHA_COUNT: LazyLock<Regex> = lazy_re!(r"^\s+(\d+) (passing|failing|pending)");
static MOCHA_ITEM: LazyLock<Regex> = lazy_re!(r"^\s+(\d+)\) (.+)$");

/// Parses mocha's spec reporter output.
pub fn parse_mocha(lines: &[&str]) -> TestResults {
    let mut r = results("mocha");
    let mut in_failures = false;
    let mut current: Option<String> = None;
    let mut name_open = false;
    for line in lines {
        if let Some(c) = MOCHA_COUNT.captures(line) {
            let n = c[1].parse().unwrap_or(0);
            match &c[2] {
                "passing" => r.passed = n,
                "failing" => {
                    r.failed = n;
                    in_failures = true;
                }
                _ => r.skipped = n,
            }
            r.summary.push(line.trim().to_string());
        } else if !in_failures {
            continue;
        } else if let Some(c) = MOCHA_ITEM.captures(line) {
            current = Some(c[2].trim_end_matches(':').to_string());
            name_open = !c[2].ends_with(':');
        } else if let Some(name) = current.clone() {
            if name_open && !line.trim().is_empty() {
                // The title continues on the next lines, indented, until one ends with ':'.
                let joined = format!("{name} {}", line.trim().trim_end_matches(':'));
                name_open = !line.trim_end().ends_with(':');
                current = Some(joined);
                continue;
            }
            js_block_line(failure(&mut r, &name), line);
        }
    }
    let complete = !r.summary.is_empty();
    finish(r, complete)
}

static GO_FAIL: LazyLock<Regex> = lazy_re!(r"^(\s*)--- (FAIL|PASS|SKIP): (\S+)");
static GO_MSG: LazyLock<Regex> = lazy_re!(r"^\s+(\S+\.go):(\d+): (.*)$");
static GO_PKG: LazyLock<Regex> = lazy_re!(r"^(ok|FAIL|---)\s+(\S+)\s+(\S+|\[.*\])");

/// Parses `go test` output (plain or `-v`), including build failures of test packages.
pub fn parse_go_test(lines: &[&str]) -> TestResults {
    let mut r = results("go-test");
    let build = crate::build::parse_go(lines);
    r.diagnostics = build
        .diagnostics
        .into_iter()
        .filter(|_| lines.iter().any(|l| l.starts_with("# ")))
        .collect();
    let mut current: Option<String> = None;
    let mut packages = 0;
    for line in lines {
        if let Some(c) = GO_FAIL.captures(line) {
            match &c[2] {
                "PASS" => r.passed += 1,
                "SKIP" => r.skipped += 1,
                _ => {
                    r.failed += 1;
                    failure(&mut r, &c[3]);
                    current = Some(c[3].to_string());
                    continue;
                }
            }
            current = None;
        } else if GO_PKG.is_match(line) || line.starts_with("panic: ") || *line == "FAIL" {
            packages += 1;
            r.summary.push(line.trim().to_string());
            if line.starts_with("panic: ") {
                failure(&mut r, "panic").message.push(line.to_string());
            }
        } else if let (Some(name), Some(c)) = (current.as_deref(), GO_MSG.captures(line)) {
            let f = failure(&mut r, name);
            f.location.get_or_insert_with(|| loc(&c[1], &c[2], None));
            push_message(f, &format!("{}:{}: {}", &c[1], &c[2], &c[3]));
        }
    }
    finish(r, packages > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_quiet_summary_without_borders_is_read() {
        let lines = [
            "F.                                                                       [100%]",
            "FAILED test_x.py::test_fails - AssertionError: assert 'left' == 'right'",
            "1 failed, 1 passed in 0.09s",
        ];
        let r = parse_pytest(&lines);
        assert_eq!((r.passed, r.failed, r.errors), (1, 1, 0));
        assert_eq!(r.summary, ["1 failed, 1 passed"]);
        assert_eq!(r.status, Status::Failed);
        let r = parse_pytest(&["2 passed, 1 skipped in 1.20s (0:00:01)"]);
        assert_eq!((r.passed, r.skipped, r.status), (2, 1, Status::Success));
    }

    #[test]
    fn pytest_errors_are_not_failures() {
        let lines = [
            "FAILED t.py::test_total - assert 6 == 7",
            "ERROR t.py::test_query - ConnectionError: refused",
            "=========== 1 failed, 1 passed, 1 error in 0.05s ===========",
        ];
        let r = parse_pytest(&lines);
        assert_eq!((r.passed, r.failed, r.errors), (1, 1, 1));
        assert_eq!(r.status, Status::Failed);
    }

    #[test]
    fn cargo_test_counts_from_result_line() {
        let text = "running 2 tests\ntest a ... ok\ntest b ... FAILED\n\nfailures:\n\n---- b stdout ----\nthread 'b' panicked at src/x.rs:3:5:\nboom\n\nfailures:\n    b\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        let lines: Vec<&str> = text.lines().collect();
        let r = parse_cargo_test(&lines);
        assert_eq!((r.passed, r.failed), (1, 1));
        assert_eq!(r.status, Status::Failed);
        assert_eq!(
            r.failures[0]
                .location
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("src/x.rs:3:5")
        );
        assert_eq!(r.failures[0].message, vec!["boom".to_string()]);
    }

    #[test]
    fn jest_without_summary_is_not_success() {
        let lines = ["PASS a.test.js"];
        assert_eq!(parse_jest(&lines).status, Status::Unknown);
    }
}
