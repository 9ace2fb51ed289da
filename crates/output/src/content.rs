//! Content an agent asked to read: `cat FILE`, `sed -n 10,80p FILE`, `head`/`tail`, `nl`,
//! `git show COMMIT:FILE`, `jq`/`yq` output. Condensing it would defeat the command, so its view
//! is the whole text up to [`CONTENT_TOKENS`] tokens (or the exec's budget when larger); a longer
//! text keeps its head and its tail, each about half of that, and one line in between says which
//! lines were left out and the `read` command that returns exactly them.

use crate::compact::{Compact, Handle, ViewOptions};
use crate::parsed::Status;
use crate::tokens::{count_tokens, estimate_tokens};

/// Tokens of content returned whole (about 32 KB of source code).
pub const CONTENT_TOKENS: usize = 8_000;

/// Programs whose output is the content of a file or a document.
const READERS: &[&str] = &[
    "cat", "bat", "batcat", "nl", "head", "tail", "jq", "yq", "tac",
];

/// True when the last command of `command` prints content to read (see the module's list).
pub fn is_content_read(command: &str) -> bool {
    let Some(last) = last_command(command) else {
        return false;
    };
    let words: Vec<&str> = last.split_whitespace().collect();
    let Some(program) = words.first().map(|p| p.rsplit('/').next().unwrap_or(p)) else {
        return false;
    };
    match program {
        // `tail -f` follows; it prints what comes, not a file.
        "tail" => !words
            .iter()
            .any(|w| *w == "-f" || *w == "-F" || *w == "--follow"),
        p if READERS.contains(&p) => true,
        // `sed -n 10,80p FILE` prints lines; other sed scripts transform.
        "sed" => words.iter().any(|w| *w == "-n" || w.starts_with("-n")),
        "git" => {
            let rest: Vec<&str> = words[1..]
                .iter()
                .copied()
                .filter(|w| !w.starts_with('-'))
                .collect();
            match rest.first() {
                Some(&"show") => rest[1..].iter().any(|w| w.contains(':')),
                Some(&"cat-file") => words.contains(&"-p"),
                _ => false,
            }
        }
        _ => false,
    }
}

/// The last simple command of a command line: after the last `;`, `&&`, `||` or `|`, without
/// redirections of stderr (`2>&1`, `2>/dev/null`).
fn last_command(command: &str) -> Option<&str> {
    let line = command.lines().rev().find(|l| !l.trim().is_empty())?;
    let cut = [";", "&&", "||", "|"]
        .iter()
        .filter_map(|sep| line.rfind(sep).map(|i| i + sep.len()))
        .max()
        .unwrap_or(0);
    let last = line[cut..].trim();
    (!last.is_empty()).then_some(last)
}

/// The view of content: whole when it fits, else head and tail.
pub(crate) fn view(
    status: Status,
    cleaned: &str,
    lines: &[&str],
    handle: &Handle,
    opts: &ViewOptions,
) -> Compact {
    let enc = opts.encoding;
    let limit = opts.budget.max(CONTENT_TOKENS);
    let total = estimate_tokens(cleaned, enc);
    let base = Compact {
        text: String::new(),
        status,
        encoding: enc,
        raw_tokens: total.tokens,
        raw_tokens_estimated: total.estimated,
        compact_tokens: 0,
        budget: limit,
        whole: true,
        raw_lines: lines.len(),
        shown_lines: lines.len(),
        omitted_lines: 0,
    };
    if total.tokens <= limit {
        let mut text = cleaned.trim_end_matches('\n').to_owned();
        if !text.is_empty() {
            text.push('\n');
        }
        let compact_tokens = if total.estimated {
            count_tokens(&text, enc)
        } else {
            total.tokens
        };
        return Compact {
            text,
            compact_tokens,
            ..base
        };
    }
    let half = limit / 2;
    let head = take_lines(lines.iter(), half, enc);
    let tail = take_lines(lines[head..].iter().rev(), half, enc);
    let (gap_from, gap_to) = (head, lines.len() - tail);
    let mut text = String::new();
    for l in &lines[..gap_from] {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str(&gap_line(lines, gap_from, gap_to, handle));
    for l in &lines[gap_to..] {
        text.push_str(l);
        text.push('\n');
    }
    Compact {
        compact_tokens: count_tokens(&text, enc),
        whole: false,
        shown_lines: gap_from + (lines.len() - gap_to),
        omitted_lines: gap_to - gap_from,
        text,
        ..base
    }
}

/// How many lines, taken in order, fit in `tokens`.
fn take_lines<'a>(
    lines: impl Iterator<Item = &'a &'a str>,
    tokens: usize,
    enc: crate::tokens::Encoding,
) -> usize {
    let mut used = 0;
    let mut n = 0;
    for l in lines {
        used += count_tokens(l, enc) + 1;
        if used > tokens {
            break;
        }
        n += 1;
    }
    n
}

/// `[lines A-B of N left out: READ]`: with exact log offsets when the handle has them.
fn gap_line(lines: &[&str], from: usize, to: usize, handle: &Handle) -> String {
    let what = format!(
        "[lines {}-{} of {} left out ({} lines)",
        from + 1,
        to,
        lines.len(),
        to - from
    );
    match (&handle.session, handle.since, handle.exact_lines) {
        (Some(s), Some(since), true) => {
            // The log holds each line followed by CR LF (the terminal's line end).
            let offset = |k: usize| -> u64 {
                since + lines[..k].iter().map(|l| l.len() as u64 + 2).sum::<u64>()
            };
            let (a, b) = (offset(from), offset(to));
            format!(
                "{what}: `ai-session read -t {s} --since {a} --max-bytes {}` returns exactly them]\n",
                b - a
            )
        }
        _ => format!("{what}; all of it: {}]\n", handle.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_commands_are_recognised() {
        for c in [
            "cat src/main.rs",
            "cd x && cat -n a.txt",
            "sed -n 10,80p lib.rs",
            "head -50 README.md",
            "tail -n 20 log.txt",
            "git show HEAD~2:src/lib.rs",
            "git --no-pager show abc123:Cargo.toml",
            "jq . package.json",
            "curl -s localhost/x | jq '.items[]'",
            "nl -ba file",
            "/bin/cat x 2>&1",
        ] {
            assert!(is_content_read(c), "{c}");
        }
        for c in [
            "cargo build",
            "tail -f log.txt",
            "sed -i s/a/b/ x",
            "git show HEAD",
            "ls -la",
            "grep -rn foo .",
            "",
        ] {
            assert!(!is_content_read(c), "{c}");
        }
    }

    fn analyze(command: &str, text: &str, handle: &Handle) -> Compact {
        crate::analyze(Some(command), text, handle, &ViewOptions::default()).1
    }

    fn source(lines: usize) -> String {
        (1..=lines)
            .map(|i| format!("    let value_{i} = compute(input_{i}, \"label {i}\")?;\n"))
            .collect()
    }

    #[test]
    fn content_under_the_limit_comes_back_whole_without_a_footer() {
        // About 4,000 tokens: far over the default budget of 1,500, under CONTENT_TOKENS.
        let text = source(250);
        let v = analyze(
            "cat src/lib.rs",
            &text,
            &Handle::log("s", 100, 100 + text.len() as u64),
        );
        assert!(v.whole, "{}", v.text);
        assert_eq!(v.text, text);
        assert_eq!(v.omitted_lines, 0);
        assert!(
            v.compact_tokens > crate::DEFAULT_BUDGET,
            "{}",
            v.compact_tokens
        );
        // The same text from another command is condensed.
        let v = analyze("./print-things", &text, &Handle::log("s", 0, 0));
        assert!(!v.whole);
    }

    #[test]
    fn longer_content_keeps_head_and_tail_and_the_exact_read_of_the_middle() {
        let text = source(3000);
        let since = 1000u64;
        let crlf = text.len() as u64 + 3000;
        let handle = Handle::log("s", since, since + crlf).with_exact_lines(true);
        let v = analyze("sed -n 1,3000p big.rs", &text, &handle);
        assert!(!v.whole);
        assert!(
            v.compact_tokens <= CONTENT_TOKENS + 100,
            "{}",
            v.compact_tokens
        );
        let lines: Vec<&str> = text.lines().collect();
        let shown: Vec<&str> = v.text.lines().collect();
        let gap = shown.iter().position(|l| l.starts_with("[lines ")).unwrap();
        // Head and tail are the file's own lines, in order.
        assert_eq!(shown[..gap], lines[..gap]);
        let tail = &shown[gap + 1..];
        assert_eq!(tail, &lines[lines.len() - tail.len()..]);
        assert_eq!(v.omitted_lines, lines.len() - gap - tail.len());
        // The read command names exactly the left-out lines' bytes (CR LF line ends).
        let (from, to) = (gap, lines.len() - tail.len());
        let a = since
            + lines[..from]
                .iter()
                .map(|l| l.len() as u64 + 2)
                .sum::<u64>();
        let n: u64 = lines[from..to].iter().map(|l| l.len() as u64 + 2).sum();
        let want = format!("`ai-session read -t s --since {a} --max-bytes {n}`");
        assert!(shown[gap].contains(&want), "{}\nwant {want}", shown[gap]);
        assert!(shown[gap].contains(&format!("lines {}-{} of 3000", from + 1, to)));
        // Without exact offsets, the whole range.
        let v = analyze("cat big.rs", &text, &Handle::log("s", since, since + crlf));
        assert!(
            v.text
                .contains(&format!("`ai-session read -t s --since {since}`"))
        );
    }
}
