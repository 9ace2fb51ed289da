//! Content an agent asked to read: `cat FILE`, `sed -n 10,80p FILE`, `head`/`tail`, `nl`,
//! `git show COMMIT:FILE`, `jq`/`yq` output. Condensing it would defeat the command, so its view
//! is the whole text up to [`CONTENT_TOKENS`] tokens (or the exec's budget when larger); a longer
//! text keeps its head and its tail, each about half of that, and one line in between says which
//! lines were left out and the `read` command that returns exactly them.

use crate::compact::{Compact, Handle, ViewOptions};
use crate::parsed::Status;
use crate::tokens::{
    EXACT_LIMIT, SAMPLES, SampleCount, TokenCount, count_samples, count_tokens, scale_samples,
};

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

/// The view of content: whole when it fits, else head and tail; [`Halves`] in one thread.
#[cfg(test)]
pub(crate) fn view(
    status: Status,
    cleaned: &str,
    lines: &[&str],
    handle: &Handle,
    opts: &ViewOptions,
) -> Compact {
    let halves = Halves {
        status,
        cleaned,
        lines,
        handle,
        opts,
    };
    halves.join(halves.first(false), halves.second())
}

/// The work of [`view`] in two parts of about the same cost for a long text, to run on two
/// threads (the second beside the parse: `compact::analyze_content`): [`Halves::first`]
/// counts half the token count's samples and cuts the head and tail when the text is far over
/// the limit, [`Halves::second`] counts the other half, and [`Halves::join`] of the two is
/// exactly [`view`], wherever each ran.
pub(crate) struct Halves<'a> {
    pub status: Status,
    pub cleaned: &'a str,
    pub lines: &'a [&'a str],
    pub handle: &'a Handle,
    pub opts: &'a ViewOptions,
}

/// What [`Halves::first`] counted and cut.
pub(crate) struct First {
    counted: Counted,
    /// Head and tail, cut ahead when the text is far over the limit.
    cut: Option<Cut>,
    /// A cut lists the lines it leaves out that name a problem (see [`Halves::cut`]).
    list: bool,
}

/// The text's tokens as [`Halves::first`] counted them.
enum Counted {
    /// A short text, counted whole.
    Exact(usize),
    /// A long one: the first half of its samples.
    Sampled(SampleCount),
}

/// A view's head and tail around the line that says what was left out.
struct Cut {
    /// Lines of the head, and the first line of the tail.
    head: usize,
    tail_from: usize,
    text: String,
    tokens: usize,
}

impl Halves<'_> {
    fn limit(&self) -> usize {
        self.opts.budget.max(CONTENT_TOKENS)
    }

    /// `list`: a cut lists the lines it leaves out that name a problem; for the output of a
    /// tool or a log, whose errors are what a reader looks for (source code and prose are
    /// left as they are).
    pub(crate) fn first(&self, list: bool) -> First {
        let enc = self.opts.encoding;
        if self.cleaned.len() <= EXACT_LIMIT {
            return First {
                counted: Counted::Exact(count_tokens(self.cleaned, enc)),
                cut: None,
                list,
            };
        }
        // Text takes 3 to 5 bytes a token; at 16 bytes a token it would still not fit. Should
        // it fit after all, `join` leaves the cut unused.
        let far_over = self.limit().saturating_mul(16) < self.cleaned.len();
        First {
            counted: Counted::Sampled(count_samples(self.cleaned, enc, 0..SAMPLES / 2)),
            cut: far_over.then(|| self.cut(list)),
            list,
        }
    }

    pub(crate) fn second(&self) -> SampleCount {
        if self.cleaned.len() <= EXACT_LIMIT {
            return SampleCount::default();
        }
        count_samples(self.cleaned, self.opts.encoding, SAMPLES / 2..SAMPLES)
    }

    pub(crate) fn join(&self, first: First, second: SampleCount) -> Compact {
        let (cleaned, lines, enc) = (self.cleaned, self.lines, self.opts.encoding);
        let limit = self.limit();
        let total = match first.counted {
            Counted::Exact(tokens) => TokenCount {
                tokens,
                estimated: false,
            },
            Counted::Sampled(samples) => scale_samples(cleaned, samples + second),
        };
        let base = Compact {
            text: String::new(),
            status: self.status,
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
        let cut = first.cut.unwrap_or_else(|| self.cut(first.list));
        Compact {
            compact_tokens: cut.tokens,
            whole: false,
            shown_lines: cut.head + (lines.len() - cut.tail_from),
            omitted_lines: cut.tail_from - cut.head,
            text: cut.text,
            ..base
        }
    }

    /// The head and the tail that fit in half the limit each, and the line between them. When
    /// `list` and the lines left out hold some that name a problem, the head and the tail take
    /// 3/8 of the limit each and the lines left out that name a problem are listed after the
    /// line saying what was left out, in the last quarter, each with its line number.
    fn cut(&self, list: bool) -> Cut {
        let (lines, enc) = (self.lines, self.opts.encoding);
        let limit = self.limit();
        let ends = |each: usize| {
            let head = take_lines(lines.iter(), each, enc);
            let tail = take_lines(lines[head..].iter().rev(), each, enc);
            (head, lines.len() - tail)
        };
        let listed = if list {
            let (from, to) = ends(limit * 3 / 8);
            let problems = self.problems(from, to);
            (!problems.is_empty()).then(|| (from, to, listing(lines, &problems, limit / 4, enc)))
        } else {
            None
        };
        let (gap_from, gap_to, listing) = listed.unwrap_or_else(|| {
            let (from, to) = ends(limit / 2);
            (from, to, String::new())
        });
        let mut text = String::new();
        for l in &lines[..gap_from] {
            text.push_str(l);
            text.push('\n');
        }
        text.push_str(&gap_line(lines, gap_from, gap_to, self.handle));
        text.push_str(&listing);
        for l in &lines[gap_to..] {
            text.push_str(l);
            text.push('\n');
        }
        Cut {
            head: gap_from,
            tail_from: gap_to,
            tokens: count_tokens(&text, enc),
            text,
        }
    }

    /// The indexes of lines `from..to` that name a problem.
    fn problems(&self, from: usize, to: usize) -> Vec<usize> {
        let lines = self.lines;
        if from >= to {
            return Vec::new();
        }
        let base = self.cleaned.as_ptr() as usize;
        let at = |l: &str| l.as_ptr() as usize - base;
        let (start, end) = (at(lines[from]), at(lines[to - 1]) + lines[to - 1].len());
        let mut out = Vec::new();
        let mut line = from;
        for r in crate::generic::problem_lines(&self.cleaned[start..end]) {
            let pos = start + r.start;
            while line + 1 < to && at(lines[line + 1]) <= pos {
                line += 1;
            }
            if out.last() != Some(&line) {
                out.push(line);
            }
        }
        out
    }
}

/// Lines `problems` (indexes into `lines`) as `L<n> text` lines within `tokens`, the ones past
/// it named by number on a last line.
fn listing(
    lines: &[&str],
    problems: &[usize],
    tokens: usize,
    enc: crate::tokens::Encoding,
) -> String {
    let mut text = format!(
        "[{} of the lines left out name a problem:]\n",
        problems.len()
    );
    let mut used = count_tokens(&text, enc) + 16;
    for (k, &i) in problems.iter().enumerate() {
        let line = format!("L{} {}\n", i + 1, crate::text::shorten(lines[i], 300));
        let n = count_tokens(&line, enc);
        if used + n > tokens {
            text.push_str(&format!(
                "[+{} more at {}]\n",
                problems.len() - k,
                crate::budget::line_refs(problems[k..].iter().map(|i| i + 1))
            ));
            break;
        }
        used += n;
        text.push_str(&line);
    }
    text
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

    /// A log read with `cat` and cut to its head and tail still shows the lines it leaves out
    /// that name a problem, with their line numbers, within the limit; prose or code cut the
    /// same way is left as it was.
    #[test]
    fn a_cut_log_lists_the_problems_it_leaves_out_and_other_text_does_not() {
        let mut text = String::new();
        let errors = [20_000, 40_000, 60_000];
        for i in 1..=80_000 {
            if errors.contains(&i) {
                text.push_str(&format!(
                    "2026-11-30 10:00:00,000 ERROR [billing] invoice {i} failed\n"
                ));
            } else {
                text.push_str(&format!(
                    "2026-11-30 10:00:00,000 INFO [worker-{}] processed job {i}\n",
                    i % 8
                ));
            }
        }
        let handle = Handle::log("s", 0, text.len() as u64);
        let opts = ViewOptions::default();
        let (_, view) = crate::analyze(Some("cat app.log"), &text, &handle, &opts);
        assert!(!view.whole);
        assert!(
            view.text
                .contains("[3 of the lines left out name a problem:]"),
            "{}",
            view.text
        );
        for i in errors {
            let want = format!("L{i} 2026-11-30 10:00:00,000 ERROR [billing] invoice {i} failed\n");
            assert!(view.text.contains(&want), "{want}");
        }
        assert!(
            view.compact_tokens <= CONTENT_TOKENS + 100,
            "{}",
            view.compact_tokens
        );

        // Many: as many as fit, the rest named by number.
        let many = text.replace("INFO [worker-3]", "ERROR [worker-3]");
        let (_, view) = crate::analyze(Some("cat app.log"), &many, &handle, &opts);
        assert!(view.text.contains(" more at L"), "{}", view.text);
        assert!(
            view.compact_tokens <= CONTENT_TOKENS + 100,
            "{}",
            view.compact_tokens
        );

        // Prose with problem words is cut as before: head, the line, tail.
        let prose: String = (1..=80_000)
            .map(|i| format!("paragraph {i}: the error handling chapter cannot be skipped\n"))
            .collect();
        let (_, view) = crate::analyze(Some("cat book.txt"), &prose, &handle, &opts);
        assert!(!view.text.contains("name a problem"), "{}", view.text);
    }

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

    #[test]
    fn long_content_counted_in_halves_gives_the_one_pass_counts() {
        use crate::tokens::{Encoding, estimate_tokens};
        // 1.5 MB of lines shaped like a `cat` of base64: over the exact-count limit, so the
        // count is estimated from samples, half of them counted by each part.
        let text: String = (0..20_000u64)
            .map(|i| {
                format!(
                    "{:076x}\n",
                    u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )
            })
            .collect();
        assert!(text.len() > EXACT_LIMIT);
        let lines = crate::text::lines(&text);
        let handle = Handle::log("s", 0, text.len() as u64 + 20_000).with_exact_lines(true);
        // The default limit (head and tail cut ahead) and one too large for that (cut at the
        // join), in both vocabularies.
        for (budget, encoding) in [
            (None, Encoding::O200kBase),
            (Some(120_000), Encoding::O200kBase),
            (None, Encoding::Cl100kBase),
        ] {
            let opts = ViewOptions {
                encoding,
                ..ViewOptions::with_budget(budget)
            };
            let halves = Halves {
                status: Status::Unknown,
                cleaned: &text,
                lines: &lines,
                handle: &handle,
                opts: &opts,
            };
            let (first, second) = std::thread::scope(|s| {
                let second = s.spawn(|| halves.second());
                (halves.first(false), second.join().unwrap())
            });
            let two = halves.join(first, second);
            let one = view(Status::Unknown, &text, &lines, &handle, &opts);
            assert_eq!(one, two, "{budget:?}");
            // The counts are those of one pass over the whole text and over the view.
            let whole = estimate_tokens(&text, encoding);
            assert!(whole.estimated);
            assert_eq!(
                (two.raw_tokens, two.raw_tokens_estimated),
                (whole.tokens, true)
            );
            assert_eq!(two.compact_tokens, count_tokens(&two.text, encoding));
            assert!(!two.whole && two.omitted_lines > 0, "{budget:?}");
            assert_eq!(two.shown_lines + two.omitted_lines, lines.len());
        }
    }
}
