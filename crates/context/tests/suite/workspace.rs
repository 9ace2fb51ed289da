use std::path::PathBuf;

use ai_session_context::{ExecRecord, probe_workspace};
use ai_session_output::{Handle, compact, parse};

use super::small;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ai-session-context-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn probe_reads_head_from_a_subdirectory_and_through_a_gitdir_file() {
    let d = temp("probe");
    std::fs::create_dir_all(d.join("repo/.git")).unwrap();
    std::fs::create_dir_all(d.join("repo/src/deep")).unwrap();
    std::fs::write(d.join("repo/.git/HEAD"), "ref: refs/heads/fix/parser\n").unwrap();
    let p = probe_workspace(&d.join("repo/src/deep"));
    assert_eq!(p.git_branch.as_deref(), Some("fix/parser"));
    assert_eq!(
        p.git_root.as_deref(),
        Some(d.join("repo").to_str().unwrap())
    );
    // A worktree: `.git` is a file naming the real git dir.
    std::fs::create_dir_all(d.join("gitdirs/wt")).unwrap();
    std::fs::write(
        d.join("gitdirs/wt/HEAD"),
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("wt")).unwrap();
    std::fs::write(
        d.join("wt/.git"),
        format!("gitdir: {}\n", d.join("gitdirs/wt").display()),
    )
    .unwrap();
    let p = probe_workspace(&d.join("wt"));
    assert_eq!(p.git_branch.as_deref(), Some("detached at 4b825dc642cb"));
    assert_eq!(probe_workspace(std::path::Path::new("/")).git_branch, None);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn execs_keep_cwd_branch_and_changed_files_current() {
    let d = temp("ws");
    std::fs::create_dir_all(d.join(".git")).unwrap();
    std::fs::write(d.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let cwd = d.display().to_string();
    let mut ctx = small(20_000, 0.8, 64);
    let status = "On branch main\nChanges not staged for commit:\n  (use \"git add <file>...\" to update what will be committed)\n\tmodified:   src/lib.rs\n\tmodified:   Cargo.toml\n\nno changes added to commit (use \"git add\" and/or \"git commit -a\")\n";
    let parsed = parse(Some("git status"), status);
    let text = compact(&parsed, status, &Handle::command("git status")).text;
    ctx.record_exec(
        ExecRecord::new("git status", Some(0), &cwd)
            .output(text)
            .parsed(parsed),
    )
    .unwrap();
    ctx.refresh_workspace();
    let ws = ctx.workspace();
    assert_eq!(ws.cwd.as_deref(), Some(cwd.as_str()));
    assert_eq!(ws.git_branch.as_deref(), Some("main"));
    assert_eq!(ws.changed_files, ["src/lib.rs", "Cargo.toml"]);
    // A branch switch seen in the output, then confirmed by the probe.
    ctx.record_exec(
        ExecRecord::new("git checkout -b fix/x", Some(0), &cwd)
            .output("Switched to a new branch 'fix/x'"),
    )
    .unwrap();
    assert_eq!(ctx.workspace().git_branch.as_deref(), Some("fix/x"));
    std::fs::write(d.join(".git/HEAD"), "ref: refs/heads/fix/x\n").unwrap();
    ctx.refresh_workspace();
    let v = ctx.build(500, None).unwrap();
    assert!(
        v.text.contains(&format!(
            "[workspace] cwd {cwd} | branch fix/x | changed: src/lib.rs, Cargo.toml"
        )),
        "{}",
        v.text
    );
    std::fs::remove_dir_all(&d).unwrap();
}
