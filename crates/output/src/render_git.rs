//! The compact view of git and svn output: branch, conflicts, files grouped by state, commits,
//! and diffs (small ones line for line, large ones as files with their hunk headers).

use crate::budget::{Sink, push_all};
use crate::parsed::{GitOutput, Status};
use crate::render::outcome;

/// Diffs up to this many changed lines are shown in full (added and removed lines, no context).
const DIFF_BODY_LIMIT: usize = 80;
/// Untracked or ignored paths listed before the rest are counted.
const UNTRACKED_LIMIT: usize = 40;

pub(crate) fn render_git(g: &GitOutput, lines: &[&str], sink: &mut Sink) -> Status {
    sink.force(&format!(
        "{} {:?}: {}",
        g.vcs,
        g.operation,
        outcome(g.status)
    ));
    for b in &g.branch {
        sink.force(b);
    }
    push_all(
        sink,
        &g.conflicts,
        |c| format!("CONFLICT ({}): {}", c.kind, c.path),
        |n, rest| format!("+{n} more conflicts: {}", rest[0].path),
    );
    let messages: Vec<&str> = g
        .messages
        .iter()
        .filter(|m| !m.starts_with("CONFLICT") && !m.starts_with("hint:"))
        .map(|m| m.trim())
        .collect();
    // Errors and ref updates say how the operation ended: they come before listings.
    push_all(
        sink,
        &messages,
        |m| (*m).to_string(),
        |n, _| format!("+{n} more messages"),
    );
    render_files(g, sink);
    render_commits(g, sink);
    render_diffs(g, lines, sink);
    g.status
}

fn render_files(g: &GitOutput, sink: &mut Sink) {
    let mut groups: Vec<((&str, &str), Vec<&str>)> = Vec::new();
    for f in &g.files {
        let key = (f.state.as_str(), f.change.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, paths)) => paths.push(&f.path),
            None => groups.push((key, vec![&f.path])),
        }
    }
    for ((state, change), paths) in groups {
        let label = if state == change {
            state.to_string()
        } else {
            format!("{state} {change}")
        };
        let cap = if state == "untracked" || state == "ignored" {
            UNTRACKED_LIMIT
        } else {
            usize::MAX
        };
        // One line per group while it fits; a group too long for the room left is listed in part.
        let mut shown = Vec::new();
        let mut used = label.len();
        for p in paths.iter().take(cap) {
            if used + p.len() > 4000 {
                break;
            }
            used += p.len() + 2;
            shown.push(*p);
        }
        let rest = paths.len() - shown.len();
        let more = if rest > 0 {
            format!(" (+{rest} more)")
        } else {
            String::new()
        };
        if !sink.push(&format!("{label}: {}{more}", shown.join(", "))) {
            sink.force(&format!("{label}: {} files (not listed)", paths.len()));
        }
    }
}

fn render_commits(g: &GitOutput, sink: &mut Sink) {
    if g.commits.is_empty() {
        return;
    }
    let mut authors: Vec<&str> = Vec::new();
    for c in &g.commits {
        let name = c.author.split(" <").next().unwrap_or("");
        if !name.is_empty() && !authors.contains(&name) && authors.len() < 20 {
            authors.push(name);
        }
    }
    if !authors.is_empty() {
        sink.push(&format!("authors: {}", authors.join(", ")));
    }
    if let (Some(first), Some(last)) = (g.commits.first(), g.commits.last())
        && !first.date.is_empty()
    {
        sink.push(&format!("dates: {} .. {}", last.date, first.date));
    }
    push_all(
        sink,
        &g.commits,
        |c| {
            format!(
                "{} {}",
                crate::text::prefix_at_boundary(&c.hash, 7),
                c.subject
            )
        },
        |n, rest| {
            format!(
                "… {n} older commits (from {})",
                crate::text::prefix_at_boundary(&rest[0].hash, 7)
            )
        },
    );
}

fn render_diffs(g: &GitOutput, lines: &[&str], sink: &mut Sink) {
    if g.diffs.is_empty() {
        return;
    }
    let changed: usize = g.diffs.iter().map(|d| d.added + d.removed).sum();
    if changed > DIFF_BODY_LIMIT {
        render_large_diff(g, lines, sink);
        return;
    }
    push_all(
        sink,
        &g.diffs,
        |d| {
            let mut s = format!("{} +{} -{}", d.path, d.added, d.removed);
            for n in &d.notes {
                s.push_str(&format!("\n  {n}"));
            }
            s
        },
        |n, rest| format!("+{n} more files from {}", rest[0].path),
    );
    // Small diffs keep every hunk header and changed line, so nothing of the change is lost.
    let body: Vec<String> = lines
        .iter()
        .filter_map(|line| {
            let changed = line.starts_with('+') || line.starts_with('-');
            if line.starts_with("@@")
                || (changed && !line.starts_with("+++") && !line.starts_with("---"))
            {
                Some((*line).to_string())
            } else {
                line.strip_prefix("+++ b/").map(|p| format!("## {p}"))
            }
        })
        .collect();
    push_all(sink, &body, Clone::clone, |n, _| {
        format!("+{n} more diff lines: read the full diff")
    });
}

/// Changed lines shown per group of files of a large diff.
const GROUP_LINES: usize = 12;

/// A large diff: files grouped by their changed lines (a change made the same way in sixty files
/// is shown once, with the files), each group with its first changed lines.
fn render_large_diff(g: &GitOutput, lines: &[&str], sink: &mut Sink) {
    let groups = diff_groups(lines);
    let total: usize = g.diffs.iter().map(|d| d.added + d.removed).sum();
    sink.force(&format!(
        "{} files, {total} changed lines, {} distinct changes:",
        g.diffs.len(),
        groups.len()
    ));
    push_all(
        sink,
        &groups,
        |(files, body)| {
            let names = if files.len() <= 6 {
                files.join(", ")
            } else {
                format!(
                    "{}, {}, {} … {} ({} files)",
                    files[0],
                    files[1],
                    files[2],
                    files[files.len() - 1],
                    files.len()
                )
            };
            let mut s = format!("## {names}");
            for l in body.iter().take(GROUP_LINES) {
                s.push('\n');
                s.push_str(&crate::text::shorten(l, 200));
            }
            if body.len() > GROUP_LINES {
                s.push_str(&format!(
                    "\n+{} more changed lines",
                    body.len() - GROUP_LINES
                ));
            }
            s
        },
        |n, rest| {
            let files: usize = rest.iter().map(|(f, _)| f.len()).sum();
            format!("+{n} more changes in {files} files from {}", rest[0].0[0])
        },
    );
}

/// Files of a diff grouped by their changed lines, in order of first appearance.
type DiffGroup<'a> = (Vec<&'a str>, Vec<&'a str>);

fn diff_groups<'a>(lines: &[&'a str]) -> Vec<DiffGroup<'a>> {
    let mut groups: Vec<DiffGroup<'a>> = Vec::new();
    let mut index: std::collections::HashMap<Vec<&'a str>, usize> = Default::default();
    let mut file: Option<&'a str> = None;
    let mut body: Vec<&'a str> = Vec::new();
    let mut flush = |file: Option<&'a str>, body: Vec<&'a str>| {
        if let Some(f) = file {
            match index.get(&body) {
                Some(&i) => groups[i].0.push(f),
                None => {
                    index.insert(body.clone(), groups.len());
                    groups.push((vec![f], body));
                }
            }
        }
    };
    for line in lines {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            flush(file, std::mem::take(&mut body));
            file = Some(rest.rsplit(" b/").next().unwrap_or(rest));
        } else if (line.starts_with('+') && !line.starts_with("+++"))
            || (line.starts_with('-') && !line.starts_with("---"))
        {
            body.push(line);
        }
    }
    flush(file, body);
    groups
}
