//! Views of large outputs stay within their budget and keep what matters first: the errors after
//! thousands of warnings (cargo), every error line of a long log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ai_session_output::{DEFAULT_BUDGET, Handle, ViewOptions, analyze, count_tokens};

fn cargo_output(warnings: usize) -> String {
    let mut s = String::from("   Compiling shop v0.1.0 (/work/shop)\n");
    for k in 0..warnings {
        s.push_str(&format!(
            "warning: unused variable: `item_{k}`\n  --> src/module_{}.rs:{}:13\n   |\n{} |         let item_{k} = load(id);\n   |             ^^^^^^^^ help: if this is intentional, prefix it with an underscore: `_item_{k}`\n   |\n   = note: `#[warn(unused_variables)]` on by default\n\n",
            k % 40,
            10 + k % 900,
            10 + k % 900
        ));
    }
    s.push_str("error[E0425]: cannot find value `rate` in this scope\n  --> src/tax.rs:14:9\n   |\n14 |         rate * amount\n   |         ^^^^ not found in this scope\n\nerror: could not compile `shop` (lib) due to 1 previous error\n");
    s
}

#[test]
fn cargo_errors_after_many_warnings_come_first_within_budget() {
    let raw = cargo_output(5_000);
    let (parsed, view) = analyze(
        Some("cargo build"),
        &raw,
        &Handle::log("s", 0, raw.len() as u64),
        &ViewOptions::default(),
    );
    assert_eq!(parsed.lines, raw.lines().count());
    let text = &view.text;
    assert!(
        view.compact_tokens <= DEFAULT_BUDGET,
        "{} tokens",
        view.compact_tokens
    );
    assert_eq!(view.compact_tokens, count_tokens(text, view.encoding));
    let error = text.find("error[E0425] src/tax.rs:14:9").expect(text);
    let warning = text.find("warning[").expect(text);
    assert!(error < warning, "errors first:\n{text}");
    assert!(text.contains("could not compile `shop`"), "{text}");
    assert!(
        text.contains("×5000"),
        "warnings grouped with their count:\n{text}"
    );
}

#[test]
fn every_error_line_of_a_long_log_is_listed() {
    let mut raw = String::new();
    for i in 0..60_000 {
        let level = if i % 5 == 0 { "WARN" } else { "INFO" };
        raw.push_str(&format!(
            "2026-11-30 10:00:00 {level} [w] job {i} took {} ms\n",
            i % 90
        ));
        if [1_000, 30_000, 59_990].contains(&i) {
            raw.push_str(&format!(
                "2026-11-30 10:00:00 ERROR [billing] invoice {i} failed\n"
            ));
        }
    }
    let (_, view) = analyze(None, &raw, &Handle::default(), &ViewOptions::default());
    for i in [1_000, 30_000, 59_990] {
        assert!(
            view.text.contains(&format!("invoice {i} failed")),
            "{}",
            view.text
        );
    }
    assert!(view.compact_tokens <= DEFAULT_BUDGET);
}

#[test]
fn a_smaller_budget_is_honoured_and_cuts_are_counted() {
    let raw = cargo_output(300);
    let opts = ViewOptions {
        budget: 250,
        ..ViewOptions::default()
    };
    let (_, view) = analyze(Some("cargo build"), &raw, &Handle::default(), &opts);
    assert!(view.compact_tokens <= 250, "{}", view.compact_tokens);
    assert!(view.text.contains("src/tax.rs:14:9"), "{}", view.text);
}

#[test]
fn short_outputs_come_back_as_they_are() {
    let raw = "hello\nworld\n";
    let (_, view) = analyze(
        Some("echo"),
        raw,
        &Handle::log("s", 0, 12),
        &ViewOptions::default(),
    );
    assert!(view.whole);
    assert_eq!(view.text, raw);
}
