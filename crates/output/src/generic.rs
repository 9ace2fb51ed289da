//! The generic view for output no parser claims: repeated lines folded, progress redraws collapsed, the
//! head and tail kept, and every notable line (errors, failures, file:line) kept from the middle.
//!
//! It is also where "notable" is defined: [`is_notable`] is used by the compact view's safety net.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::parsed::Custom;

static NOTABLE: LazyLock<Regex> = lazy_re!(
    r"(?i)\b(errors?|failed|failure|failures|fatal|panic|panicked|exception|traceback|denied|refused|segmentation fault|core dumped|aborted|abort|critical|conflicts?|assertion|undefined reference|not found|no such file|cannot|unable to|timed? ?out)\b|✕|✗|✘|\bFAIL\b|\bERR!",
);
/// Phrases that contain a failure word but report its absence.
static HARMLESS: LazyLock<Regex> = lazy_re!(
    r"(?i)\b(0|no|zero) (errors?|failed|failures?|conflicts?|vulnerabilities)\b|\.\.\. ok$|\bPASSED\b|^\s*(✓|✔|PASS\s)|without errors|error_?handl|on_error",
);
/// `path/file.ext:line`, the shape of a source location.
pub(crate) static LOCATION: LazyLock<Regex> = lazy_re!(
    r"(?:^|[\s(\[`'\x22])((?:\.{0,2}/)?[\w@.+-]+(?:/[\w@.+-]+)*\.[A-Za-z]{1,5})(?::(\d+)(?::(\d+))?|\((\d+),(\d+)\))"
);
/// Locations inside toolchains and dependencies: not the user's code.
static VENDOR: LazyLock<Regex> = lazy_re!(
    r"^/rustc/|/\.cargo/registry/|node_modules/|^node:|/usr/lib/|/usr/include/|site-packages/|^<frozen|/lib/python3"
);

/// True when the line reports a problem: an error or failure word, or a location in the user's code.
pub fn is_notable(line: &str) -> bool {
    let word = NOTABLE.find_iter(line).any(|_| true) && {
        let rest = HARMLESS.replace_all(line, "");
        NOTABLE.is_match(&rest)
    };
    word || user_location(line).is_some()
}

/// True when `file` is in a toolchain or dependency path (`node_modules/`, `/rustc/`, `site-packages/`).
pub fn is_vendor(file: &str) -> bool {
    VENDOR.is_match(file)
}

/// The first source location in the line that is not in a toolchain or dependency path.
pub fn user_location(line: &str) -> Option<String> {
    LOCATION.captures_iter(line).find_map(|c| {
        let file = c.get(1)?.as_str();
        if VENDOR.is_match(file) {
            return None;
        }
        let l = c.get(2).or_else(|| c.get(4))?.as_str();
        Some(format!("{file}:{l}"))
    })
}

/// The structure of unrecognised text: line counts only. The view works from the lines themselves.
pub fn parse_text(lines: &[&str]) -> Custom {
    let notable = lines.iter().filter(|l| is_notable(l)).count();
    let blank = lines.iter().filter(|l| l.trim().is_empty()).count();
    Custom {
        kind: "text".into(),
        data: serde_json::json!({ "lines": lines.len(), "blank_lines": blank, "notable_lines": notable }),
    }
}

/// A run of consecutive lines that are equal, or equal but for their digits.
struct Run<'a> {
    first: &'a str,
    last: &'a str,
    count: usize,
    identical: bool,
    notable: bool,
}

fn digit_key(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(256));
    let mut prev_digit = false;
    for c in line.chars().take(256) {
        let d = c.is_ascii_digit();
        if !(d && prev_digit) {
            out.push(if d { '#' } else { c });
        }
        prev_digit = d;
    }
    out
}

fn runs<'a>(lines: &[&'a str]) -> Vec<Run<'a>> {
    let mut out: Vec<Run<'a>> = Vec::new();
    let mut last_key = String::new();
    for line in lines {
        let notable = is_notable(line);
        let key = digit_key(line);
        if let Some(r) = out.last_mut() {
            let same = r.last == *line;
            // Notable lines fold only when identical, so no distinct error or location disappears.
            if same || (key == last_key && !notable && !r.notable) {
                r.identical &= same;
                r.last = line;
                r.count += 1;
                continue;
            }
        }
        out.push(Run {
            first: line,
            last: line,
            count: 1,
            identical: true,
            notable,
        });
        last_key = key;
    }
    out
}

/// Head and tail runs always shown.
const EDGE: usize = 8;
/// Outputs with at most this many runs are shown whole.
const SMALL: usize = 2 * EDGE + 8;

/// Renders the generic view of `lines` into `out`. Returns how many output lines it wrote.
pub fn render(lines: &[&str], out: &mut String) -> usize {
    let runs = runs(lines);
    let mut written = 0;
    if runs.len() <= SMALL {
        for r in &runs {
            written += push_run(r, out);
        }
        return written;
    }
    for r in &runs[..EDGE] {
        written += push_run(r, out);
    }
    written += render_middle(&runs[EDGE..runs.len() - EDGE], out);
    for r in &runs[runs.len() - EDGE..] {
        written += push_run(r, out);
    }
    written
}

/// The middle of a long output: notable runs only, identical ones counted once, gaps marked.
fn render_middle(middle: &[Run<'_>], out: &mut String) -> usize {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in middle.iter().filter(|r| r.notable) {
        *seen.entry(r.first).or_default() += r.count;
    }
    let mut written = 0;
    let mut gap = 0;
    for r in middle {
        let total = seen.get(r.first).copied();
        match total {
            Some(n) if r.notable && n > 0 => {
                written += push_gap(gap, out);
                gap = 0;
                let run = Run {
                    first: r.first,
                    last: r.last,
                    count: n,
                    identical: r.identical,
                    notable: true,
                };
                written += push_run(&run, out);
                seen.insert(r.first, 0);
            }
            _ => gap += r.count,
        }
    }
    written + push_gap(gap, out)
}

fn push_gap(gap: usize, out: &mut String) -> usize {
    if gap == 0 {
        return 0;
    }
    out.push_str(&format!(
        "… {gap} line{} …\n",
        if gap == 1 { "" } else { "s" }
    ));
    1
}

fn push_line(line: &str, notable: bool, out: &mut String) {
    let max = if notable { 2000 } else { 300 };
    out.push_str(&crate::text::shorten(line, max));
    out.push('\n');
}

fn push_run(r: &Run<'_>, out: &mut String) -> usize {
    if r.count == 1 {
        push_line(r.first, r.notable, out);
        return 1;
    }
    if r.identical {
        push_line(&format!("{}  [×{}]", r.first, r.count), r.notable, out);
        return 1;
    }
    // Lines that differ only in numbers: a progress display. Its last state is what matters.
    push_line(
        &format!("{}  [last of {} similar lines]", r.last, r.count),
        r.notable,
        out,
    );
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notable_lines() {
        assert!(is_notable("error: something"));
        assert!(is_notable("see src/main.rs:10"));
        assert!(!is_notable("test result: ok. 3 passed; 0 failed"));
        assert!(!is_notable("all good"));
        assert!(!is_notable("  at /rustc/abc/library/core/src/x.rs:5:1"));
    }

    #[test]
    fn folds_progress() {
        let lines = ["start", "10%", "20%", "30%", "done", "done", "done"];
        let mut out = String::new();
        render(&lines, &mut out);
        assert_eq!(out, "start\n30%  [last of 3 similar lines]\ndone  [×3]\n");
    }
}
