//! JUnit XML: one `<testsuite>` per test run (cargo test, pytest, jest, go test ...), its
//! counts from the runner's summary and one `<testcase>` per failing test, with the failure's
//! message and location. The runners' summaries name only the tests that failed, so passing
//! tests are counted in `tests` without a `<testcase>` each.

use std::fmt::Write;

use super::{Report, iso8601};

pub(crate) fn render(report: &Report) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors, mut skipped, mut time) = (0, 0, 0, 0, 0.0);
    for exec in &report.execs {
        let Some(t) = exec.tests() else { continue };
        let total = t.passed + t.failed + t.errors + t.skipped;
        let secs = exec.entry.duration_ms / 1000.0;
        tests += total;
        failures += t.failed;
        errors += t.errors;
        skipped += t.skipped;
        time += secs;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"{}\" \
             skipped=\"{}\" time=\"{secs:.3}\" timestamp=\"{}\">",
            attr(&exec.entry.command),
            t.failed,
            t.errors,
            t.skipped,
            iso8601(exec.entry.started_ms),
        );
        let _ = writeln!(suites, "    <properties>");
        property(&mut suites, "tool", &t.tool);
        if let Some(code) = exec.entry.exit_code {
            property(&mut suites, "exit_code", &code.to_string());
        }
        if let Some(cwd) = &exec.entry.cwd {
            property(&mut suites, "cwd", cwd);
        }
        let _ = writeln!(suites, "    </properties>");
        for f in &t.failures {
            let (class, name) = split_name(&f.name);
            let message = f.message.first().map(String::as_str).unwrap_or("failed");
            let mut body = f.message.join("\n");
            if let Some(at) = &f.location {
                body = format!("{at}\n{body}");
            }
            let _ = writeln!(
                suites,
                "    <testcase name=\"{}\" classname=\"{}\"{}>\n      \
                 <failure message=\"{}\" type=\"failure\">{}</failure>\n    </testcase>",
                attr(name),
                attr(if class.is_empty() { &t.tool } else { class }),
                f.location
                    .as_ref()
                    .map(|at| format!(" file=\"{}\"{}", attr(&at.file), line_attr(at.line)))
                    .unwrap_or_default(),
                attr(message),
                text(&body),
            );
        }
        let _ = writeln!(suites, "  </testsuite>");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{tests}\" \
         failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n\
         {suites}</testsuites>\n",
        attr(&format!("ai-session: {}", report.title))
    )
}

fn line_attr(line: Option<u32>) -> String {
    line.map(|l| format!(" line=\"{l}\"")).unwrap_or_default()
}

fn property(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "      <property name=\"{}\" value=\"{}\"/>",
        attr(name),
        attr(value)
    );
}

/// `module::tests::name` → (`module::tests`, `name`); `tests/a.py::test_x` → (`tests/a.py`,
/// `test_x`); a name without a separator has no class.
fn split_name(name: &str) -> (&str, &str) {
    for sep in ["::", " > ", "."] {
        if let Some((class, test)) = name.rsplit_once(sep) {
            if !class.is_empty() && !test.is_empty() {
                return (class, test);
            }
        }
    }
    ("", name)
}

/// Text content: XML's five special characters escaped, characters XML 1.0 forbids dropped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

/// An attribute value: as [`text`], with newlines and tabs as character references so a
/// parser does not normalise them to spaces.
fn attr(s: &str) -> String {
    text(s)
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_forbidden_characters() {
        assert_eq!(
            text("a<b>&\"'\u{1b}[31m"),
            "a&lt;b&gt;&amp;&quot;&apos;[31m"
        );
        assert_eq!(attr("x\ny"), "x&#10;y");
    }

    #[test]
    fn test_names_split_into_class_and_name() {
        assert_eq!(split_name("a::tests::t"), ("a::tests", "t"));
        assert_eq!(split_name("tests/t.py::test_x"), ("tests/t.py", "test_x"));
        assert_eq!(split_name("plain"), ("", "plain"));
    }
}
