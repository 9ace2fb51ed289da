//! Logs with levels: text lines (`2024-05-01 10:00:00 ERROR [svc] message`) and JSON lines
//! (`{"level":"error","msg":...}`).
//!
//! Built for large inputs: a line's level is found by scanning its first bytes for a level word, without
//! a regex, and only lines at warning level or above are stored (up to [`MAX_ENTRIES`]); lower levels are
//! counted.

use crate::parsed::{LogEntry, LogLevel, StructuredLog};

/// Most entries stored; further warnings and errors are still counted per level.
pub const MAX_ENTRIES: usize = 5000;
/// Most continuation lines (a traceback) kept per error entry.
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
    more: bool,
}

impl LogBuilder {
    fn new() -> Self {
        Self {
            counts: [0; 6],
            entries: Vec::new(),
            more: false,
        }
    }

    fn add(&mut self, line_no: usize, level: LogLevel, message: String) {
        self.counts[level as usize] += 1;
        self.more = false;
        if level >= LogLevel::Warn && self.entries.len() < MAX_ENTRIES {
            self.entries.push(LogEntry {
                line: line_no,
                level,
                message,
                continuation: vec![],
            });
            self.more = level >= LogLevel::Error;
        }
    }

    /// A line without a level right after an error: a traceback or a wrapped message.
    fn continuation(&mut self, line: &str) {
        if !self.more {
            return;
        }
        match self.entries.last_mut() {
            Some(e) if e.continuation.len() < MAX_CONTINUATION => {
                e.continuation
                    .push(crate::text::shorten(line, 300).into_owned());
            }
            _ => self.more = false,
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
/// error, and as `info` otherwise.
pub fn parse_text_log(text: &str) -> StructuredLog {
    let mut b = LogBuilder::new();
    for (i, line) in text.lines().enumerate() {
        match line_level(line) {
            Some(level) => b.add(i + 1, level, crate::text::shorten(line, 500).into_owned()),
            None if line.trim().is_empty() => {}
            None if b.more => b.continuation(line),
            None => b.add(i + 1, LogLevel::Info, String::new()),
        }
    }
    b.finish("text")
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
        if level < LogLevel::Warn {
            b.add(i + 1, level, String::new());
            continue;
        }
        let message = match serde_json::from_str::<serde_json::Value>(t) {
            Ok(v) => json_message(&v),
            Err(_) => crate::text::shorten(t, 500).into_owned(),
        };
        b.add(i + 1, level, message);
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
    fn json_levels() {
        let log = parse_json_log(
            "{\"level\":\"info\",\"msg\":\"a\"}\n{\"level\":\"error\",\"msg\":\"boom\",\"code\":5}\n",
        );
        assert_eq!(log.level, LogLevel::Error);
        assert_eq!(log.entries[0].message, "boom code=5");
    }
}
