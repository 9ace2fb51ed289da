//! `exec` with standard input: a pipe or `--stdin FILE` becomes the command's stdin (never the
//! shell's line editor's), byte for byte, within a size limit; a terminal or /dev/null is left
//! alone.

use std::io::Write;
use std::process::Stdio;

use sha2::Digest;

use super::harness::Env;

fn with_stdin(env: &Env, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = env
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    let input = input.to_vec();
    // The CLI reads all of its input before it answers: write from a thread.
    let writer = std::thread::spawn(move || w.write_all(&input).ok());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn a_pipe_becomes_the_commands_stdin() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let out = with_stdin(&env, &["exec", "-t", "s", "wc -c"], b"data\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    // Lines that look like commands are data, not typed: nothing runs them.
    let out = with_stdin(
        &env,
        &["exec", "-t", "s", "cat"],
        b"touch /tmp/should-not-exist-ais\nexit 9\n",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "touch /tmp/should-not-exist-ais\nexit 9\n"
    );
    // The shell stays the session's: cd and export in a command with input carry over.
    with_stdin(
        &env,
        &["exec", "-t", "s", "cd /tmp; export FROM_STDIN=$(cat)"],
        b"yes",
    );
    assert_eq!(
        env.exec("s", "echo $PWD $FROM_STDIN")["output"],
        "/tmp yes\n"
    );
}

#[test]
fn binary_input_arrives_byte_for_byte_and_the_file_is_removed() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let input: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let out = with_stdin(&env, &["exec", "-t", "s", "sha256sum"], &input);
    assert!(out.status.success(), "{out:?}");
    let want = format!("{:x}", sha2::Sha256::digest(&input));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&want),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let cmd_dir = env.home.path().join("servers/t/sessions/s/cmd");
    let left: Vec<_> = std::fs::read_dir(&cmd_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    // --stdin FILE.
    let file = env.home.path().join("input.bin");
    std::fs::write(&file, &input).unwrap();
    let r = env.json(&[
        "exec",
        "-t",
        "s",
        "--stdin",
        file.to_str().unwrap(),
        "wc -c",
    ]);
    assert_eq!(r["output"], "200000\n", "{r}");
}

#[test]
fn too_much_input_is_a_clear_error_and_no_input_reads_the_terminal() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let big = vec![b'x'; 8 * 1024 * 1024 + 1];
    let out = with_stdin(&env, &["exec", "-t", "s", "--json", "wc -c"], &big);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "too_large", "{v}");
    assert!(v["hint"].as_str().unwrap().contains("< FILE"), "{v}");
    // Exactly the limit is fine.
    let out = with_stdin(&env, &["exec", "-t", "s", "wc -c"], &big[1..]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "8388608");
    // /dev/null (the harness's stdin) gives no input: the command reads the terminal.
    let r = env.json(&[
        "exec",
        "-t",
        "s",
        "--timeout",
        "20",
        "read -p 'Name? ' n; echo hi $n",
    ]);
    assert_eq!(r["status"], "waiting_for_input", "{r}");
    env.ok(&["send", "-t", "s", "bob", "Enter"]);
    env.ok(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
    // --no-stdin leaves a pipe unread.
    let out = with_stdin(
        &env,
        &[
            "exec",
            "-t",
            "s",
            "--no-stdin",
            "--json",
            "--timeout",
            "20",
            "read -p 'Again? ' n",
        ],
        b"ignored\n",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "waiting_for_input", "{v}");
}
