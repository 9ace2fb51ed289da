//! The library used in-process, without the daemon: `SessionManager` driving real shells.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use ai_session_core::protocol::methods::{ExecParams, ExecStatus, NewParams};
use ai_session_core::{ManagerConfig, SessionEvent, SessionManager, WaitCondition};

fn exec(target: &str, command: &str) -> ExecParams {
    ExecParams {
        target: target.into(),
        command: command.into(),
        timeout_ms: Some(20_000),
        idle_timeout_ms: None,
        max_output_bytes: None,
        view_budget: None,
        stdin_b64: None,
        view_only: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_sessions_for_bash_and_sh() {
    let dir = tempfile::tempdir().unwrap();
    let manager = SessionManager::new(ManagerConfig::new(dir.path())).unwrap();
    let home = tempfile::tempdir().unwrap();
    let env: std::collections::BTreeMap<String, String> = [
        ("HOME".to_owned(), home.path().display().to_string()),
        ("PATH".to_owned(), std::env::var("PATH").unwrap()),
    ]
    .into();
    for shell in ["/bin/bash", "/bin/sh"] {
        let params = NewParams {
            shell: Some(shell.into()),
            env: Some(env.clone()),
            ..Default::default()
        };
        let info = manager.create(params).await.unwrap();
        let h = manager.get(&info.name).unwrap();
        let r = h.exec(exec(&info.name, "cd / && echo hi")).await.unwrap();
        assert_eq!(
            (r.status, r.exit_code, r.output.as_str()),
            (ExecStatus::Exited, Some(0), "hi\n"),
            "{shell}"
        );
        let r = h.exec(exec(&info.name, "pwd; (exit 5)")).await.unwrap();
        assert_eq!(
            (r.exit_code, r.output.as_str()),
            (Some(5), "/\n"),
            "{shell}"
        );
        let r = h
            .exec(exec(&info.name, "for i in 1 2; do\n echo line $i\ndone"))
            .await
            .unwrap();
        assert_eq!(r.output, "line 1\nline 2\n", "{shell}");
    }
    assert_eq!(manager.len(), 2);
    manager.shutdown().await;
    assert!(manager.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_output_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let manager = SessionManager::new(ManagerConfig::new(dir.path())).unwrap();
    let params = NewParams {
        program: Some(vec!["sh".into(), "-c".into(), "read x; echo got-$x".into()]),
        ..Default::default()
    };
    let info = manager.create(params).await.unwrap();
    let h = manager.get(&info.name).unwrap();
    let (_, mut rx) = h.subscribe().await.unwrap();
    h.send_keys(vec!["hello".into(), "Enter".into()], false, false)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let exit_code = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            SessionEvent::Output { data, .. } => seen.extend_from_slice(&data),
            SessionEvent::Closed { exit_code } => break exit_code,
            _ => {}
        }
    };
    assert!(String::from_utf8_lossy(&seen).contains("got-hello"));
    assert_eq!(exit_code, Some(0));
    let regex = WaitCondition::parse(&ai_session_core::protocol::methods::WaitFor::Regex {
        pattern: "got-(\\w+)".into(),
    })
    .unwrap();
    let w = h.wait(regex, Some(5000), Some(0)).await.unwrap();
    assert_eq!(w.matched.as_deref(), Some("got-hello"));
    manager.kill(&info.name).await.unwrap();
    assert!(manager.get(&info.name).is_err());
}

/// An exec that floods the terminal is answered before the emulator draws the flood's last
/// screen and scrollback (its D mark would make it draw them first); the drawing still comes
/// before anything looks at the screen, and a query in the flood is still not answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_drawn_after_its_exec_is_answered() {
    use ai_session_core::protocol::methods::CaptureParams;
    let dir = tempfile::tempdir().unwrap();
    let manager = SessionManager::new(ManagerConfig::new(dir.path())).unwrap();
    let params = NewParams {
        shell: Some("/bin/sh".into()),
        ..Default::default()
    };
    let info = manager.create(params).await.unwrap();
    let h = manager.get(&info.name).unwrap();
    // 2.5 MB of plain lines, then a cursor-position query and one more line.
    let flood = "seq 1 400000; printf '\\033[6nafter-query\\n'";
    let r = h.exec(exec(&info.name, flood)).await.unwrap();
    assert_eq!((r.status, r.exit_code), (ExecStatus::Exited, Some(0)));
    assert!(
        r.output.ends_with("399999\n400000\nafter-query\n"),
        "{}",
        &r.output[r.output.len() - 40..]
    );
    let capture = |scrollback| CaptureParams {
        target: info.name.clone(),
        scrollback,
        ansi: false,
    };
    let screen = h.capture(capture(0)).await.unwrap();
    let text = screen.lines.join("\n");
    assert!(text.contains("400000\nafter-query"), "{text}");
    // The scrollback holds the flood's tail, line for line.
    let back = h.capture(capture(10_000)).await.unwrap();
    let numbers: Vec<&str> = back
        .lines
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert!(numbers.len() >= 9_000, "{} lines", numbers.len());
    let last: Vec<String> = (400_001 - numbers.len()..=400_000)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(numbers, last);
    // No answer to the query was typed into the shell: the next exec sees only its own line.
    let r = h.exec(exec(&info.name, "echo next")).await.unwrap();
    assert_eq!(r.output, "next\n");
    manager.shutdown().await;
}

/// An output longer than the session's log keeps: the log drops its start while the command
/// runs, and the answer still opens with every line of that start that names a problem (the
/// log scanned what it dropped), and its view lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_printed_before_what_the_log_keeps_are_still_in_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ManagerConfig::new(dir.path());
    config.log_bytes = 1 << 20;
    let manager = SessionManager::new(config).unwrap();
    let home = tempfile::tempdir().unwrap();
    let env: std::collections::BTreeMap<String, String> = [
        ("HOME".to_owned(), home.path().display().to_string()),
        ("PATH".to_owned(), std::env::var("PATH").unwrap()),
    ]
    .into();
    let info = manager
        .create(NewParams {
            shell: Some("/bin/sh".into()),
            env: Some(env),
            ..Default::default()
        })
        .await
        .unwrap();
    let h = manager.get(&info.name).unwrap();
    // About 3 MB: errors at lines 1,000 and 20,000 (long gone from a 1 MiB log) and 59,000.
    let script = home.path().join("flood.py");
    std::fs::write(
        &script,
        "import sys\n\
         for i in range(60000):\n\
         \x20   if i in (1000, 20000, 59000):\n\
         \x20       sys.stdout.write(f'2026-11-30 10:00:00,000 ERROR [job] step {i} failed\\n')\n\
         \x20   else:\n\
         \x20       sys.stdout.write(f'2026-11-30 10:00:00,000 INFO [job] step {i} went fine\\n')\n",
    )
    .unwrap();
    let mut params = exec(&info.name, &format!("python3 {}", script.display()));
    params.timeout_ms = Some(60_000);
    let r = h.exec(params).await.unwrap();
    assert_eq!(r.exit_code, Some(0));
    assert!(r.truncated);
    assert!(
        r.output
            .starts_with("[the start of this output is no longer in the session's log"),
        "{}",
        &r.output[..r.output.len().min(500)]
    );
    let view = r.compact.as_ref().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in [1000, 20000, 59000] {
        let line = format!("ERROR [job] step {i} failed");
        assert!(r.output.contains(&line), "{line} not in the answer");
        assert!(view.contains(&line), "{line} not in the view:\n{view}");
    }
    // The next exec's answer carries no note.
    let r = h.exec(exec(&info.name, "echo next")).await.unwrap();
    assert_eq!(r.output, "next\n");
}
