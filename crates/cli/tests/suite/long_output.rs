//! An output longer than an exec's answer keeps (`max_output_bytes`, 8 MiB by default) comes
//! back as its head and its tail, and every line of the part left out that names a problem
//! comes back between them: the answer and its views keep every error wherever it was printed.

use super::harness::Env;

/// A Python program printing about 21 MB of log lines, with ERROR lines at `errors`.
fn flood(env: &Env, errors: &[u32]) -> String {
    let script = env.home.path().join("flood.py");
    let listed = errors
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &script,
        format!(
            "import sys\n\
             w = sys.stdout.write\n\
             errors = {{{listed}}}\n\
             for i in range(300000):\n\
             \x20   if i in errors:\n\
             \x20       w(f'2026-11-30 10:00:00,000 ERROR [billing] invoice {{i}} failed: card declined\\n')\n\
             \x20       w(f'  File \"app/billing.py\", line {{i % 90 + 10}}, in charge\\n')\n\
             \x20   else:\n\
             \x20       w(f'2026-11-30 10:00:00,000 INFO [worker-{{i % 8}}] processed job {{i}} in {{i % 97}} ms\\n')\n"
        ),
    )
    .expect("script");
    format!("python3 {}", script.display())
}

#[test]
fn errors_in_the_part_of_a_long_output_left_out_reach_the_answer_and_its_view() {
    let env = Env::new();
    env.ok(&["new", "-s", "big", "--shell", "/bin/sh"]);
    // The head and the tail kept are 4 MiB each, about 57,000 lines: these are in between.
    let errors = [100_000, 150_000, 200_000];
    let r = env.exec("big", &flood(&env, &errors));
    assert_eq!(r["exit_code"], 0, "{}", r["hint"]);
    assert_eq!(r["truncated"], true);
    let output = r["output"].as_str().expect("output");
    assert!(output.len() < 9 << 20, "{}", output.len());
    let note = output
        .lines()
        .find(|l| l.starts_with("[the part left out holds "))
        .expect("a note on the part left out");
    assert!(note.contains("3 of them name a problem"), "{note}");
    let view = r["compact"]["text"].as_str().expect("view");
    for i in errors {
        let line = format!("ERROR [billing] invoice {i} failed: card declined");
        assert!(output.contains(&line), "{line} is not in the answer");
        assert!(view.contains(&line), "{line} is not in the view:\n{view}");
    }
    // The view says its counts are of what was kept.
    assert!(
        view.contains(
            "what was read here is its head, its tail and the lines between that name a problem"
        ),
        "{view}"
    );
    // Each comes with the line after it.
    let at = output.find("invoice 100000 failed").expect("the first");
    assert!(
        output[at..].starts_with(
            "invoice 100000 failed: card declined\n  File \"app/billing.py\", line 20, in charge\n"
        ),
        "{}",
        &output[at..at + 300]
    );
}

#[test]
fn a_long_output_with_no_problem_says_so_and_the_session_goes_on() {
    let env = Env::new();
    env.ok(&["new", "-s", "big", "--shell", "/bin/sh"]);
    let r = env.exec("big", &flood(&env, &[]));
    assert_eq!(r["truncated"], true);
    let output = r["output"].as_str().expect("output");
    assert!(
        output.contains("lines; none of them names a problem]"),
        "{}",
        &output[output.len() / 2 - 2000..output.len() / 2 + 2000]
    );
    assert_eq!(env.exec("big", "echo next")["output"], "next\n");
}

/// A log read with `cat` is content, shown as its head and its tail when long: the lines left
/// out that name a problem are listed between them with their line numbers.
/// `lines` log lines, numbered from 1, those in `errors` at level ERROR.
fn log_lines(lines: u32, errors: &[u32]) -> String {
    (1..=lines)
        .map(|i| {
            if errors.contains(&i) {
                format!("2026-11-30 10:00:00,000 ERROR [billing] invoice {i} failed\n")
            } else {
                format!(
                    "2026-11-30 10:00:00,000 INFO [worker-{}] processed job {i}\n",
                    i % 8
                )
            }
        })
        .collect()
}

#[test]
fn a_long_log_read_with_cat_still_shows_its_errors() {
    let env = Env::new();
    env.ok(&["new", "-s", "c", "--shell", "/bin/sh"]);
    let file = env.home.path().join("app.log");
    std::fs::write(&file, log_lines(40_000, &[12_345, 23_456])).expect("log");
    let r = env.exec("c", &format!("cat {}", file.display()));
    assert_eq!(r["exit_code"], 0);
    let view = r["compact"]["text"].as_str().expect("view");
    assert!(
        view.contains("[2 of the lines left out name a problem:]"),
        "{view}"
    );
    for i in [12_345, 23_456] {
        let want = format!("L{i} 2026-11-30 10:00:00,000 ERROR [billing] invoice {i} failed");
        assert!(view.contains(&want), "{want} not in\n{view}");
    }
}

/// `parse` of an input longer than `--max-bytes` keeps its head and its tail and reads the
/// middle in pieces: the view still lists every error and says what it read, from a pipe as
/// from a file; under the limit the same input is analyzed whole.
#[test]
fn parse_past_max_bytes_reads_in_pieces_and_keeps_every_error() {
    let env = Env::new();
    let errors = [10_000, 25_000, 40_000];
    let text = log_lines(50_000, &errors);
    let file = env.home.path().join("big.log");
    std::fs::write(&file, &text).expect("input");
    let parse = |max: &str, from_file: bool| {
        let mut cmd = env.command(&["parse", "--max-bytes", max]);
        let out = if from_file {
            cmd.stdin(std::fs::File::open(&file).expect("open"))
                .output()
                .expect("parse")
        } else {
            super::harness::with_stdin(&mut cmd, text.as_bytes()).expect("parse")
        };
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    // About 3 MB against 1 MiB: head and tail of 256 KiB, the errors all in between.
    for from_file in [true, false] {
        let view = parse("1048576", from_file);
        for i in errors {
            let line = format!("ERROR [billing] invoice {i} failed");
            assert!(view.contains(&line), "{line} not in\n{view}");
        }
        assert!(
            view.contains(
                "what was read here is its head, its tail and the lines between that name a problem"
            ),
            "{view}"
        );
    }
    let whole = parse("134217728", false);
    assert!(!whole.contains("what was read here"), "{whole}");
    assert!(
        whole.contains("ERROR [billing] invoice 25000 failed"),
        "{whole}"
    );
    // A limit too small to mean anything is refused with what to write.
    let out = env.run(&["parse", "--max-bytes", "10"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-bytes"));
}
