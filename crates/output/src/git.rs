//! Version control output: git status, log, diff, show, push/pull/fetch, merge and rebase conflicts,
//! branch; svn status.
//!
//! One pass collects everything a git output can hold (branch lines, files, commits, diffs, conflicts,
//! errors), so an output mixing them (`git show`, `git pull` with a diffstat) keeps all its parts.

use std::sync::LazyLock;

use regex::Regex;

use crate::detect::Format;
use crate::parsed::{Commit, Conflict, FileChange, FileDiff, GitOperation, GitOutput, Status};

static BRANCH: LazyLock<Regex> = lazy_re!(
    r"^(On branch |HEAD detached |Your branch |You have unmerged|You are currently |interactive rebase|rebase in progress|All conflicts fixed|nothing to commit|nothing added to commit|no changes added)"
);
static SECTION: LazyLock<Regex> = lazy_re!(
    r"^(Changes to be committed|Changes not staged for commit|Untracked files|Unmerged paths|Ignored files):$"
);
static STATUS_FILE: LazyLock<Regex> = lazy_re!(r"^\t(?:([a-z ]+):\s+)?(.+)$");
static PORCELAIN: LazyLock<Regex> = lazy_re!(r"^([ MADRCU?!]{2}) (.+)$");
static COMMIT: LazyLock<Regex> = lazy_re!(r"^commit ([0-9a-f]{7,40})");
static ONELINE: LazyLock<Regex> = lazy_re!(r"^\*?\s*([0-9a-f]{7,12}) (.+)$");
static DIFF_HEAD: LazyLock<Regex> = lazy_re!(r"^diff --git a/(.+?) b/(.+)$");
static CONFLICT: LazyLock<Regex> = lazy_re!(r"^CONFLICT \(([^)]+)\): (.+)$");
static CONFLICT_PATH: LazyLock<Regex> = lazy_re!(
    r"(?:Merge conflict in |deleted in \S+ and modified in \S+\.\s+Version \S+ of |^)(\S+)(?:\s.*)?$"
);
static STAT: LazyLock<Regex> = lazy_re!(r"^ (\S.*?)\s+\|\s+(\d+|Bin.*)");
static KEEP: LazyLock<Regex> = lazy_re!(
    r"^(error|fatal|warning|hint: Resolve|Could not apply|Automatic merge failed|Auto-merging|To |From |\s+[0-9a-f]+\.\.+[0-9a-f]+\s|\s+\*\s|\s+\+\s|\s+!\s|\s+=\s|\s+-\s\[|Updating [0-9a-f]|Fast-forward|Already up to date|Merge made|Successfully rebased|Everything up-to-date|Switched to|\s*\d+ files? changed|Rebasing|Aborting|remote: error|\s*! \[)",
);

/// Parses git output; `format` says which command it came from when the command line told.
// The empty branches are "consumed by the helper in the condition"; they end the chain on purpose.
#[allow(clippy::if_same_then_else)]
pub fn parse_git(format: Format, lines: &[&str]) -> GitOutput {
    let mut g = GitOutput {
        vcs: "git".into(),
        operation: operation(format),
        status: Status::Unknown,
        branch: vec![],
        files: vec![],
        commits: vec![],
        diffs: vec![],
        conflicts: vec![],
        messages: vec![],
    };
    let mut section = "";
    let mut in_message = false;
    for line in lines {
        if let Some(c) = COMMIT.captures(line) {
            g.commits.push(Commit {
                hash: c[1].to_string(),
                author: String::new(),
                date: String::new(),
                subject: String::new(),
            });
            in_message = true;
        } else if let Some(c) = DIFF_HEAD.captures(line) {
            in_message = false;
            g.diffs.push(FileDiff {
                path: c[2].to_string(),
                added: 0,
                removed: 0,
                hunks: vec![],
                notes: vec![],
            });
        } else if let Some(d) = g.diffs.last_mut() {
            diff_line(d, line);
        } else if in_message && commit_line(&mut g, line) {
        } else if let Some(c) = CONFLICT.captures(line) {
            let path = CONFLICT_PATH
                .captures(&c[2])
                .map_or_else(|| c[2].to_string(), |p| p[1].to_string());
            if !g.conflicts.iter().any(|x| x.path == path) {
                g.conflicts.push(Conflict {
                    kind: c[1].to_string(),
                    path,
                });
            }
            g.messages.push(line.to_string());
        } else if BRANCH.is_match(line) {
            g.branch.push(line.trim().to_string());
        } else if let Some(c) = SECTION.captures(line) {
            section = section_state(&c[1]);
        } else if !section.is_empty() && status_line(&mut g, section, line) {
        } else if format == Format::GitStatus && porcelain_line(&mut g, line) {
        } else if format == Format::GitBranch && !line.trim().is_empty() {
            g.branch.push(line.trim_end().to_string());
        } else if format == Format::GitLog
            && let Some(c) = ONELINE.captures(line)
        {
            g.commits.push(Commit {
                hash: c[1].to_string(),
                author: String::new(),
                date: String::new(),
                subject: c[2].to_string(),
            });
        } else if KEEP.is_match(line) || STAT.is_match(line) {
            g.messages.push(line.trim_end().to_string());
        }
    }
    g.status = git_status(&g);
    g
}

fn operation(format: Format) -> GitOperation {
    match format {
        Format::GitStatus => GitOperation::Status,
        Format::GitLog => GitOperation::Log,
        Format::GitDiff => GitOperation::Diff,
        Format::GitShow => GitOperation::Show,
        Format::GitRemote => GitOperation::Fetch,
        Format::GitMerge => GitOperation::Merge,
        Format::GitBranch => GitOperation::Branch,
        _ => GitOperation::Other,
    }
}

fn git_status(g: &GitOutput) -> Status {
    let bad = |m: &String| {
        m.starts_with("error")
            || m.starts_with("fatal")
            || m.contains("[rejected]")
            || m.contains("! [remote rejected]")
            || m.starts_with("Automatic merge failed")
            || m.starts_with("Could not apply")
    };
    if !g.conflicts.is_empty()
        || g.files.iter().any(|f| f.state == "conflicted")
        || g.messages.iter().any(bad)
    {
        Status::Failed
    } else {
        Status::Success
    }
}

fn section_state(title: &str) -> &'static str {
    match title {
        "Changes to be committed" => "staged",
        "Changes not staged for commit" => "unstaged",
        "Untracked files" => "untracked",
        "Unmerged paths" => "conflicted",
        _ => "ignored",
    }
}

/// A `\tmodified:   path` line of a long-format status section.
fn status_line(g: &mut GitOutput, section: &'static str, line: &str) -> bool {
    let Some(c) = STATUS_FILE.captures(line) else {
        return false;
    };
    let change = c.get(1).map_or("untracked", |m| m.as_str().trim());
    g.files.push(FileChange {
        state: section.into(),
        change: change.into(),
        path: c[2].to_string(),
    });
    true
}

/// A `XY path` line of `git status --short`/`--porcelain`.
fn porcelain_line(g: &mut GitOutput, line: &str) -> bool {
    let Some(c) = PORCELAIN.captures(line) else {
        return false;
    };
    let xy = &c[1];
    let state = match xy {
        "??" => "untracked",
        "!!" => "ignored",
        "UU" | "AA" | "DD" | "AU" | "UA" | "DU" | "UD" => "conflicted",
        _ if !xy.starts_with(' ') => "staged",
        _ => "unstaged",
    };
    g.files.push(FileChange {
        state: state.into(),
        change: xy.trim().into(),
        path: c[2].to_string(),
    });
    true
}

/// Author, Date and the subject of the commit being read. Returns false for lines that are not part of it.
fn commit_line(g: &mut GitOutput, line: &str) -> bool {
    let Some(c) = g.commits.last_mut() else {
        return false;
    };
    if let Some(a) = line.strip_prefix("Author:") {
        c.author = a.trim().to_string();
    } else if let Some(d) = line.strip_prefix("Date:") {
        c.date = d.trim().to_string();
    } else if line.starts_with("    ") && c.subject.is_empty() {
        c.subject = line.trim().to_string();
    } else if line.starts_with("    ") || line.is_empty() || line.starts_with("Merge:") {
    } else {
        return false;
    }
    true
}

fn diff_line(d: &mut FileDiff, line: &str) {
    if line.starts_with("@@") {
        d.hunks.push(line.to_string());
    } else if line.starts_with("+++") || line.starts_with("---") || line.starts_with("index ") {
    } else if line.starts_with('+') {
        d.added += 1;
    } else if line.starts_with('-') {
        d.removed += 1;
    } else if line.starts_with("Binary files")
        || line.starts_with("new file")
        || line.starts_with("deleted file")
        || line.starts_with("rename ")
        || line.starts_with("old mode")
        || line.starts_with("new mode")
        || line.starts_with("similarity")
    {
        d.notes.push(line.to_string());
    }
}

static SVN_LINE: LazyLock<Regex> =
    lazy_re!(r"^([ ADMRCXI?!~])([ MC])[ L][ +][ SX][ KOTB][ C]?\s+(\S.*)$");

/// Parses `svn status`.
pub fn parse_svn_status(lines: &[&str]) -> GitOutput {
    let mut g = parse_git(Format::Text, &[]);
    g.vcs = "svn".into();
    g.operation = GitOperation::Status;
    for line in lines {
        let Some(c) = SVN_LINE.captures(line) else {
            if !line.trim().is_empty() {
                g.messages.push(line.to_string());
            }
            continue;
        };
        let (state, change) = match &c[1] {
            "A" => ("staged", "added"),
            "D" => ("staged", "deleted"),
            "M" => ("unstaged", "modified"),
            "R" => ("staged", "replaced"),
            "C" => ("conflicted", "conflicted"),
            "?" => ("untracked", "untracked"),
            "!" => ("missing", "missing"),
            "~" => ("obstructed", "obstructed"),
            "I" => ("ignored", "ignored"),
            _ if &c[2] == "C" => ("conflicted", "property conflict"),
            _ => ("unstaged", "properties modified"),
        };
        g.files.push(FileChange {
            state: state.into(),
            change: change.into(),
            path: c[3].to_string(),
        });
    }
    g.status = git_status(&g);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_conflict_fails() {
        let lines = [
            "Auto-merging a.txt",
            "CONFLICT (content): Merge conflict in a.txt",
            "Automatic merge failed; fix conflicts and then commit the result.",
        ];
        let g = parse_git(Format::GitMerge, &lines);
        assert_eq!(g.status, Status::Failed);
        assert_eq!(g.conflicts[0].path, "a.txt");
    }

    #[test]
    fn porcelain_status() {
        let g = parse_git(Format::GitStatus, &["UU a.rs", " M b.rs", "?? c.rs"]);
        assert_eq!(g.files.len(), 3);
        assert_eq!(g.status, Status::Failed);
    }
}
