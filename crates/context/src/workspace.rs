//! Workspace state: the current directory, the git branch, the changed files, kept current from
//! what the session observes. [`probe_workspace`] reads the branch straight from `.git/HEAD`
//! (a few small reads, no git process).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the session's workspace looks like now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceState {
    /// The shell's current directory, from the last exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The repository's top directory (the one holding `.git`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_root: Option<String>,
    /// The checked-out branch, or `detached at <hash>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    /// Files the last `git status` listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_files: Vec<String>,
    /// Entry whose `git status` gave `changed_files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_files_seq: Option<u64>,
}

/// What [`probe_workspace`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceProbe {
    /// The directory probed.
    pub cwd: String,
    /// The directory holding `.git`, if any.
    pub git_root: Option<String>,
    /// The branch, or `detached at <hash>`.
    pub git_branch: Option<String>,
}

/// Finds the repository holding `cwd` and its branch by reading `.git/HEAD`. A `.git` file (a
/// worktree or submodule) is followed to its `gitdir:`. Never fails: what cannot be read is
/// `None`.
pub fn probe_workspace(cwd: &Path) -> WorkspaceProbe {
    let mut probe = WorkspaceProbe {
        cwd: cwd.display().to_string(),
        ..WorkspaceProbe::default()
    };
    let Some((root, git_dir)) = find_git_dir(cwd) else {
        return probe;
    };
    probe.git_root = Some(root.display().to_string());
    if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD")) {
        probe.git_branch = branch_from_head(&head);
    }
    probe
}

fn find_git_dir(cwd: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        let dot_git = d.join(".git");
        if dot_git.is_dir() {
            return Some((d.to_path_buf(), dot_git));
        }
        if dot_git.is_file() {
            let text = std::fs::read_to_string(&dot_git).ok()?;
            let target = text.strip_prefix("gitdir:")?.trim();
            let path = Path::new(target);
            let git_dir = if path.is_absolute() {
                path.to_path_buf()
            } else {
                d.join(path)
            };
            return Some((d.to_path_buf(), git_dir));
        }
        dir = d.parent();
    }
    None
}

/// `ref: refs/heads/main` gives `main`; a bare hash gives `detached at <first 12>`.
pub fn branch_from_head(head: &str) -> Option<String> {
    let head = head.trim();
    if let Some(r) = head.strip_prefix("ref:") {
        let r = r.trim();
        return Some(r.strip_prefix("refs/heads/").unwrap_or(r).to_string());
    }
    if head.len() >= 7 && head.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(format!("detached at {}", &head[..12.min(head.len())]));
    }
    None
}

impl WorkspaceState {
    /// Takes what a probe found.
    pub fn apply_probe(&mut self, probe: WorkspaceProbe) {
        if self.git_root.is_some() && self.git_root != probe.git_root {
            // Another repository: its changed files are not known yet.
            self.changed_files.clear();
            self.changed_files_seq = None;
        }
        self.cwd = Some(probe.cwd);
        self.git_root = probe.git_root;
        self.git_branch = probe.git_branch;
    }

    /// The one-line form in a view (starts with `[`, ends with `\n`).
    pub fn render(&self) -> String {
        let mut out = format!(
            "[workspace] cwd {} | branch {}",
            self.cwd.as_deref().unwrap_or("(unknown)"),
            self.git_branch.as_deref().unwrap_or("(none)")
        );
        if !self.changed_files.is_empty() {
            let shown: Vec<&str> = self
                .changed_files
                .iter()
                .take(12)
                .map(String::as_str)
                .collect();
            out.push_str(&format!(" | changed: {}", shown.join(", ")));
            if self.changed_files.len() > shown.len() {
                out.push_str(&format!(
                    " (+{} more)",
                    self.changed_files.len() - shown.len()
                ));
            }
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_forms() {
        assert_eq!(
            branch_from_head("ref: refs/heads/fix/x\n").as_deref(),
            Some("fix/x")
        );
        assert_eq!(
            branch_from_head("0123456789abcdef0123\n").as_deref(),
            Some("detached at 0123456789ab")
        );
        assert_eq!(branch_from_head("garbage"), None);
    }
}
