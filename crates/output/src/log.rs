//! Logs with levels: text lines (`2024-05-01 10:00:00 ERROR [svc] message`) and JSON lines
//! (`{"level":"error","msg":...}`).
//!
//! Built for large inputs: a line's level is found by scanning its first bytes for a level word, without
//! a regex, and only lines at warning level or above are stored; lower levels are counted. Errors and
//! warnings have separate caps ([`MAX_ERRORS`], [`MAX_WARNINGS`]), so no number of warnings can push an
//! error out. An uncaught exception (`Traceback (most recent call last):`, `panic:`, `thread '…'
//! panicked`, `Exception in thread`) is an error entry even without a level word, and its traceback
//! keeps its last frame and the exception line however long it is.

use crate::parsed::{LogEntry, LogLevel, StructuredLog};

/// Most error and fatal entries stored; further ones are still counted per level.
pub const MAX_ERRORS: usize = 10_000;
/// Most warning entries stored; further ones are still counted.
pub const MAX_WARNINGS: usize = 2_000;
/// Most continuation lines (a traceback) kept per error entry: the first half and the newest.
const MAX_CONTINUATION: usize = 12;
/// Only this many leading bytes of a line are searched for its level word.
const LEVEL_WINDOW: usize = 96;

/// The level word in the first bytes of a line, if any.
pub fn line_level(line: &str) -> Option<LogLevel> {
    let window = crate::text::prefix_at_boundary(line, LEVEL_WINDOW).as_bytes();
    let mut i = 0;
    while i < window.len() {
        if !window[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < window.len() && window[i].is_ascii_alphabetic() {
            i += 1;
        }
        // The word must stand alone: `[ERROR]`, ` ERROR `, `level=error`, not `ERRORS` or `errorHandler`.
        if let Some(level) = level_word(&window[start..i]) {
            return Some(level);
        }
    }
    None
}

fn level_word(w: &[u8]) -> Option<LogLevel> {
    if w.len() < 4 || w.len() > 8 {
        return None;
    }
    // Lower-case words are ordinary prose ("an error occurred"); only upper-case ones are levels.
    if !w.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let mut buf = [0u8; 8];
    for (b, c) in buf.iter_mut().zip(w) {
        *b = c.to_ascii_uppercase();
    }
    Some(match &buf[..w.len()] {
        b"TRACE" => LogLevel::Trace,
        b"DEBUG" => LogLevel::Debug,
        b"INFO" | b"NOTICE" => LogLevel::Info,
        b"WARN" | b"WARNING" => LogLevel::Warn,
        b"ERROR" | b"SEVERE" => LogLevel::Error,
        b"FATAL" | b"CRITICAL" | b"PANIC" | b"EMERG" | b"ALERT" => LogLevel::Fatal,
        _ => return None,
    })
}

/// True when enough of the first lines carry a level word to call the text a log.
pub fn looks_leveled(head: &str) -> bool {
    let lines: Vec<&str> = head
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(200)
        .collect();
    let leveled = lines.iter().filter(|l| line_level(l).is_some()).count();
    lines.len() >= 5 && leveled * 10 >= lines.len() * 6
}

/// True when most of the first lines are JSON objects.
pub fn looks_like_json_lines(head: &str) -> bool {
    let lines: Vec<&str> = head
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(50)
        .collect();
    let objects = lines
        .iter()
        .filter(|l| l.starts_with('{') && l.ends_with('}'))
        .count();
    lines.len() >= 3
        && objects * 10 >= lines.len() * 8
        && lines
            .iter()
            .take(5)
            .any(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
}

/// Running state of a log parse.
struct LogBuilder {
    counts: [usize; 6],
    entries: Vec<LogEntry>,
    errors: usize,
    warnings: usize,
    more: bool,
}

impl LogBuilder {
    fn new() -> Self {
        Self {
            counts: [0; 6],
            entries: Vec::new(),
            errors: 0,
            warnings: 0,
            more: false,
        }
    }

    /// Counts a line of `level`; stores it (built by `message`, so lower levels cost no
    /// allocation) while its level's cap allows.
    fn add(&mut self, line_no: usize, level: LogLevel, message: impl FnOnce() -> String) {
        self.counts[level as usize] += 1;
        self.more = false;
        let stored = match level {
            LogLevel::Error | LogLevel::Fatal => &mut self.errors,
            LogLevel::Warn => &mut self.warnings,
            _ => return,
        };
        let cap = if level == LogLevel::Warn {
            MAX_WARNINGS
        } else {
            MAX_ERRORS
        };
        if *stored < cap {
            *stored += 1;
            self.entries.push(LogEntry {
                line: line_no,
                level,
                message: message(),
                continuation: vec![],
            });
            self.more = level >= LogLevel::Error;
        }
    }

    /// A line without a level right after an error: a traceback or a wrapped message. The
    /// exception line that ends a Python traceback ends the continuation.
    fn continuation(&mut self, line: &str) {
        let Some(e) = self.entries.last_mut().filter(|_| self.more) else {
            return;
        };
        if e.continuation.len() >= MAX_CONTINUATION {
            // Keep the start and the newest lines: the last frame and the exception are at the end.
            e.continuation.remove(MAX_CONTINUATION / 2);
        }
        e.continuation
            .push(crate::text::shorten(line, 300).into_owned());
        if ends_traceback(line) {
            self.more = false;
        }
    }

    fn finish(self, encoding: &str) -> StructuredLog {
        let mut counts: Vec<(LogLevel, usize)> = ALL_LEVELS
            .iter()
            .rev()
            .filter(|l| self.counts[**l as usize] > 0)
            .map(|l| (*l, self.counts[*l as usize]))
            .collect();
        counts.sort_by_key(|c| std::cmp::Reverse(c.0));
        let level = counts.first().map_or(LogLevel::Info, |c| c.0);
        StructuredLog {
            level,
            encoding: encoding.into(),
            counts,
            entries: self.entries,
        }
    }
}

const ALL_LEVELS: [LogLevel; 6] = [
    LogLevel::Trace,
    LogLevel::Debug,
    LogLevel::Info,
    LogLevel::Warn,
    LogLevel::Error,
    LogLevel::Fatal,
];

/// Parses a text log. Lines without a level count as the previous line's continuation when they follow an
/// error, as an error when they start an uncaught exception, and as `info` otherwise.
pub fn parse_text_log(text: &str) -> StructuredLog {
    let mut b = LogBuilder::new();
    for (i, line) in text.lines().enumerate() {
        let stored = || crate::text::shorten(line, 500).into_owned();
        match line_level(line) {
            Some(level) => b.add(i + 1, level, stored),
            None if line.trim().is_empty() => {}
            None if starts_exception(line) && !(b.more && line.starts_with(' ')) => {
                if b.more && line.starts_with("Traceback") {
                    // `log.exception(...)`: the traceback belongs to the error line above it.
                    b.continuation(line);
                } else {
                    b.add(i + 1, LogLevel::Error, stored);
                }
            }
            None if b.more => b.continuation(line),
            None => b.add(i + 1, LogLevel::Info, String::new),
        }
    }
    b.finish("text")
}

/// The first line of an uncaught exception or crash, in the languages whose runtimes print one.
pub fn starts_exception(line: &str) -> bool {
    line.starts_with("Traceback (most recent call last):")
        || line.starts_with("panic: ")
        || line.starts_with("Exception in thread ")
        || line.starts_with("Uncaught ")
        || (line.starts_with("thread '") && line.contains("' panicked at "))
}

/// The exception line that ends a Python traceback: `KeyError: 'tenant'`, `pkg.Error: msg`,
/// `SystemExit`.
fn ends_traceback(line: &str) -> bool {
    if line.starts_with(char::is_whitespace) {
        return false;
    }
    let name = line.split([':', ' ']).next().unwrap_or("");
    let last = name.rsplit('.').next().unwrap_or(name);
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && (last.ends_with("Error")
            || last.ends_with("Exception")
            || last.ends_with("Exit")
            || last.ends_with("Interrupt")
            || last == "Warning")
}

/// Parses JSON lines. Only lines whose level is warning or above are fully decoded.
pub fn parse_json_log(text: &str) -> StructuredLog {
    let mut b = LogBuilder::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let level = json_level(t).unwrap_or(LogLevel::Info);
        b.add(i + 1, level, || {
            match serde_json::from_str::<serde_json::Value>(t) {
                Ok(v) => json_message(&v),
                Err(_) => crate::text::shorten(t, 500).into_owned(),
            }
        });
    }
    b.finish("json")
}

/// The level of a JSON line, read from `"level"`, `"lvl"` or `"severity"` without decoding the line.
fn json_level(line: &str) -> Option<LogLevel> {
    for key in ["\"level\"", "\"lvl\"", "\"severity\"", "\"levelname\""] {
        if let Some(pos) = line.find(key) {
            let rest = line[pos + key.len()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start();
            let value = rest
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
                .unwrap_or(rest);
            let word: String = value
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            return level_word(word.to_ascii_uppercase().as_bytes()).or(match word.as_str() {
                "warn" | "warning" => Some(LogLevel::Warn),
                "err" => Some(LogLevel::Error),
                _ => None,
            });
        }
    }
    None
}

/// `message key=value ...` for a JSON record, without the time and level fields.
fn json_message(v: &serde_json::Value) -> String {
    let Some(obj) = v.as_object() else {
        return v.to_string();
    };
    let mut parts = Vec::new();
    for key in ["msg", "message", "event", "error", "err"] {
        if let Some(m) = obj.get(key) {
            parts.push(m.as_str().map_or_else(|| m.to_string(), str::to_string));
        }
    }
    for (k, val) in obj {
        let skip = [
            "msg",
            "message",
            "event",
            "error",
            "err",
            "level",
            "lvl",
            "severity",
            "levelname",
            "ts",
            "time",
            "timestamp",
            "@timestamp",
        ];
        if !skip.contains(&k.as_str()) {
            let s = val.as_str().map_or_else(|| val.to_string(), str::to_string);
            parts.push(format!("{k}={s}"));
        }
    }
    crate::text::shorten(&parts.join(" "), 500).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_whole_words() {
        assert_eq!(line_level("2024-01-01 ERROR x"), Some(LogLevel::Error));
        assert_eq!(line_level("[WARN] disk"), Some(LogLevel::Warn));
        assert_eq!(line_level("ERRORS: none"), None);
        assert_eq!(line_level("errorHandler"), None);
    }

    #[test]
    fn errors_after_many_warnings_are_kept() {
        // More warnings than any cap (the old shared cap of 5,000 lost the error after them).
        let mut text = "2024-01-01 10:00:00 WARN [w] queue deep\n".repeat(6_000);
        text.push_str("2024-01-01 10:00:01 ERROR [w] job 7 failed\n");
        let log = parse_text_log(&text);
        assert_eq!(log.level, LogLevel::Error);
        assert!(
            log.entries
                .iter()
                .any(|e| e.message.contains("job 7 failed"))
        );
    }

    #[test]
    fn long_traceback_keeps_exception_line() {
        let mut text = String::from(
            "2024-01-01 ERROR [w] unhandled error\nTraceback (most recent call last):\n",
        );
        for i in 0..40 {
            text.push_str(&format!(
                "  File \"/app/m{i}.py\", line {i}, in f\n    f()\n"
            ));
        }
        text.push_str("KeyError: 'tenant'\nplain line after\n");
        let log = parse_text_log(&text);
        let e = &log.entries[0];
        assert_eq!(
            e.continuation.last().map(String::as_str),
            Some("KeyError: 'tenant'")
        );
        assert!(e.continuation.iter().any(|c| c.contains("m39.py")));
    }

    #[test]
    fn uncaught_exception_without_level_is_an_error() {
        let text = "starting\nTraceback (most recent call last):\n  File \"x.py\", line 3, in <module>\nZeroDivisionError: division by zero\n";
        let log = parse_text_log(text);
        assert_eq!(log.level, LogLevel::Error);
        assert_eq!(log.entries[0].line, 2);
        assert_eq!(log.entries[0].continuation.len(), 2);
    }

    #[test]
    fn json_levels() {
        let log = parse_json_log(
            "{\"level\":\"info\",\"msg\":\"a\"}\n{\"level\":\"error\",\"msg\":\"boom\",\"code\":5}\n",
        );
        assert_eq!(log.level, LogLevel::Error);
        assert_eq!(log.entries[0].message, "boom code=5");
    }
}
