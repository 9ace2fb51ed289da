//! Lines that name a problem in the parts of an exec's output its answer does not hold, read
//! from the session's log: the middle of an output longer than `max_output_bytes`, and the
//! start of one longer than the log keeps (scanned as the log drops it, see
//! [`OutputLog::watch_from`]). The scanner is [`Problems`]; this reads the log in its pieces.

pub(crate) use ai_session_output::problems::{MIDDLE_NOTE, Problems};

use crate::log::OutputLog;

/// How an answer whose output's start the log no longer holds starts.
pub(crate) const DROPPED_NOTE: &str = "[the start of this output is no longer in the session's log";

/// Scans log bytes `from..to` alone.
pub(crate) fn of(log: &OutputLog, from: u64, to: u64) -> Problems {
    let mut p = Problems::default();
    scan(&mut p, log, from, to);
    p.end();
    p
}

/// Gives `p` log bytes `from..to`, after the parts it was given before.
pub(crate) fn scan(p: &mut Problems, log: &OutputLog, from: u64, to: u64) {
    let mut pos = from;
    while pos < to {
        let Ok(chunk) = log.read(
            pos,
            ai_session_output::problems::PIECE.min((to - pos) as usize),
        ) else {
            break;
        };
        if chunk.data.is_empty() || chunk.start >= to {
            break;
        }
        let mut data = chunk.data;
        data.truncate((to - chunk.start) as usize);
        pos = chunk.start + data.len() as u64;
        p.piece(chunk.start, &data);
    }
}

/// True when `output` holds a note of this module: the text analyzed is not the whole output.
pub(crate) fn has_note(output: &str) -> bool {
    output.starts_with(DROPPED_NOTE)
        || memchr::memmem::find(output.as_bytes(), MIDDLE_NOTE.as_bytes()).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Lines of `n` bytes (line end included) of the log's shape, ending CR LF.
    fn line(text: &str, n: usize) -> Vec<u8> {
        let mut l = text.as_bytes().to_vec();
        l.resize(n - 2, b'.');
        l.extend_from_slice(b"\r\n");
        l
    }

    /// The part is read in pieces: lines that name a problem are found wherever the
    /// pieces end, their next lines come with them, the lines are counted, and a full answer
    /// lists the first and the last ones kept with how many more there were.
    #[test]
    fn a_part_is_scanned_piece_by_piece_for_every_problem_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 64 << 20, None).unwrap();
        let mut data = Vec::new();
        let mut errors = Vec::new();
        // 100-byte lines: a read of 1 MiB ends inside line 10,485; errors on both sides of
        // that and of the next reads' ends.
        for i in 0..40_000usize {
            if matches!(i, 10_484..=10_486 | 20_970 | 31_456 | 39_999) {
                errors.push(i);
                data.extend(line(&format!("\x1b[31mERROR\x1b[0m job {i}"), 100));
            } else if i > 0 && errors.last() == Some(&(i - 1)) {
                data.extend(line(&format!("  at step {i}"), 100));
            } else {
                data.extend(line(&format!("INFO job {i} done"), 100));
            }
        }
        log.append(&data).unwrap();
        let m = of(&log, 0, data.len() as u64);
        assert_eq!(m.lines, 40_000);
        assert_eq!(m.found, errors.len() as u64);
        let kept: Vec<&String> = m.first.iter().chain(&m.last).collect();
        assert_eq!(kept.len(), errors.len());
        for (group, i) in kept.iter().zip(&errors) {
            let want = format!("ERROR job {i}.");
            assert!(group.starts_with(&want), "{group:?}");
            // The line after it, unless that line is a problem of its own or there is none.
            if !errors.contains(&(i + 1)) && *i != 39_999 {
                assert!(
                    group.contains(&format!("\n  at step {}", i + 1)),
                    "{group:?}"
                );
            }
        }

        // More than the answer keeps: the first and the last, and how many in between.
        let mut many = Vec::new();
        for i in 0..1_000 {
            many.extend(line(&format!("error: case {i}"), 40));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 64 << 20, None).unwrap();
        log.append(&many).unwrap();
        let m = of(&log, 0, many.len() as u64);
        assert_eq!(m.found, 1_000);
        assert_eq!(m.first.len(), ai_session_output::problems::FIRST);
        assert_eq!(m.last.len(), ai_session_output::problems::LAST);
        assert!(m.first[0].starts_with("error: case 0"));
        assert!(m.last.back().unwrap().starts_with("error: case 999"));
        let mut out = String::new();
        m.write(&mut out, "[part: ", "then");
        assert!(
            out.contains("1000 of them name a problem: the first 192 and the last 64"),
            "{out}"
        );
        assert!(out.contains(&format!("[... {} more lines like these ...]", 1_000 - 256)));
    }

    /// A log that drops the start of a watched output scans it first: the lines that name a
    /// problem are kept (not the echoed command line), however much the log dropped.
    #[test]
    fn a_watched_log_keeps_the_problems_of_what_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 64 << 10, None).unwrap();
        log.append(b"old prompt $ ").unwrap();
        let from = log.end();
        log.watch_from(from, 1);
        log.append(b"echo error in the command line\r\n").unwrap();
        for i in 0..20_000u32 {
            let line = if i % 5_000 == 7 {
                format!("ERROR step {i} failed\r\n  at job.py:{i}\r\n")
            } else {
                format!("INFO step {i} done\r\n")
            };
            log.append(line.as_bytes()).unwrap();
        }
        assert!(log.start() > from + 200_000, "the log dropped the start");
        let (at, p) = log.take_watch().unwrap();
        assert_eq!(at, from);
        assert!(p.bytes > 0 && p.bytes <= log.start() - from, "{}", p.bytes);
        let kept: Vec<&String> = p.first.iter().collect();
        let dropped_errors: Vec<u32> = (0..20_000u32)
            .filter(|i| i % 5_000 == 7)
            .filter(|i| {
                kept.iter()
                    .any(|k| k.starts_with(&format!("ERROR step {i} failed")))
            })
            .collect();
        assert_eq!(p.found as usize, dropped_errors.len(), "{kept:?}");
        assert!(!dropped_errors.is_empty());
        assert!(kept.iter().all(|k| !k.contains("command line")), "{kept:?}");
        assert!(kept[0].contains("\n  at job.py:7"), "{kept:?}");
        // Taken once.
        assert!(log.take_watch().is_none());
    }
}
