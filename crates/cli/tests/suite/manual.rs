//! Shell completions and man pages generated from the CLI's definition.

use super::harness::Env;

#[test]
fn the_bash_completion_script_loads_and_completes_commands() {
    let env = Env::new();
    let exe = env!("CARGO_BIN_EXE_ai-session");
    let script = format!(
        "source <('{exe}' completions bash) && complete -p ai-session && \
         COMP_WORDS=(ai-session ex) COMP_CWORD=1 COMP_LINE='ai-session ex' COMP_POINT=13 && \
         f=$(complete -p ai-session | sed -E 's/.* -F ([^ ]+) .*/\\1/') && \
         \"$f\" ai-session ex ai-session && printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("HOME", env.home.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("complete ") && text.contains(" ai-session\n"),
        "{text}"
    );
    let replies: Vec<&str> = text.lines().skip(1).collect();
    assert!(replies.contains(&"exec"), "{replies:?}");
    assert!(replies.contains(&"export"), "{replies:?}");
    for shell in ["zsh", "fish"] {
        let script = env.ok(&["completions", shell]);
        assert!(
            script.contains("capture") && script.contains("exec"),
            "{shell}"
        );
    }
    let bad = env.run(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(125));
}

#[test]
fn man_pages_come_from_the_cli() {
    let env = Env::new();
    let page = env.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ai-session 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(
        page.contains("completions") && page.contains("Exit status"),
        "{page}"
    );
    let dir = env.home.path().join("man1");
    let list = env.ok(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(list.lines().count() > 20, "{list}");
    let exec = std::fs::read_to_string(dir.join("ai-session-exec.1")).unwrap();
    assert!(exec.contains("\\-\\-idle\\-timeout"), "{exec}");
    assert!(
        exec.contains(".TH ai-session-exec 1"),
        "{}",
        &exec[..300.min(exec.len())]
    );
}
