//! Measures the store: `cargo run --release -p ai-session-store --example store_bench [-- DIR]`.
//! DIR (default: a temporary directory under $TMPDIR) should be on the disk the daemon uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ai_session_store::{ExecRecord, KdfParams, Options, Scrollback, SessionConfig, Size, Store};

fn config(name: &str) -> SessionConfig {
    let env: BTreeMap<String, String> = std::env::vars().take(40).collect();
    SessionConfig {
        name: name.into(),
        shell: Some("/bin/bash".into()),
        argv: vec!["/bin/bash".into()],
        size: Size {
            cols: 200,
            rows: 50,
        },
        env,
        cwd: "/work/main".into(),
        created_ms: 1_760_000_000_000,
        policy: None,
    }
}

fn exec(n: u64) -> ExecRecord {
    let commands = [
        "cargo test -p ai-session-store",
        "git status --short",
        "ls -la src/",
        "make -j4 all",
        "grep -rn TODO crates/",
        "python3 scripts/check.py --fast",
    ];
    ExecRecord {
        command: format!("{} # {n}", commands[n as usize % commands.len()]),
        exit_code: Some(if n % 11 == 0 { 1 } else { 0 }),
        cwd: format!(
            "/work/main/crates/{}",
            ["core", "store", "cli"][n as usize % 3]
        ),
        started_ms: 1_760_000_000_000 + n * 2_000,
        ended_ms: 1_760_000_000_000 + n * 2_000 + (n * 37) % 5_000,
        output_start: n * 4096,
        output_end: n * 4096 + 1234,
    }
}

fn scrollback(lines: usize) -> Scrollback {
    Scrollback {
        lines: (0..lines)
            .map(|i| match i % 4 {
                0 => format!(
                    "   Compiling crate-{} v0.{}.{} (/work/main/crates/c{})",
                    i % 97,
                    i % 13,
                    i % 5,
                    i % 9
                ),
                1 => format!("test suite::case_{i} ... ok"),
                2 => format!(
                    "{i:>6}  drwxr-xr-x  2 user user  4096 Oct  3 12:{:02} dir{i}",
                    i % 60
                ),
                _ => format!(
                    "warning: unused variable `x{i}` --> src/lib.rs:{}:{}",
                    i % 800,
                    i % 40
                ),
            })
            .collect(),
        screen: (0..50)
            .map(|r| format!("row {r} of the visible screen"))
            .collect::<Vec<_>>()
            .join("\n"),
        replay: vec![b'x'; 4096],
    }
}

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
    fn show(&self, what: &str) {
        println!(
            "{what:<52} p50 {:>9.3} ms   p99 {:>9.3} ms   (n={})",
            self.pct(0.5),
            self.pct(0.99),
            self.0.len()
        );
    }
}

fn time<T>(n: usize, mut f: impl FnMut(usize) -> T) -> Stats {
    Stats(
        (0..n)
            .map(|i| {
                let t = Instant::now();
                std::hint::black_box(f(i));
                t.elapsed()
            })
            .collect(),
    )
}

fn run(base: &std::path::Path, encrypted: bool) {
    let mode = if encrypted { "encrypted" } else { "plaintext" };
    println!("\n== {mode} ==");
    let root = base.join(mode);
    let options = Options {
        passphrase: encrypted.then(|| "bench passphrase".to_string()),
        kdf: KdfParams::default(),
        ..Options::default()
    };
    let t = Instant::now();
    let store = Store::open(&root, options.clone()).unwrap();
    println!(
        "{:<52} {:>9.3} ms (includes Argon2id key derivation when encrypted)",
        "open new store",
        t.elapsed().as_secs_f64() * 1e3
    );

    // Checkpoint cost per exec.
    let s = store.create_session(config("bench")).unwrap();
    let records: Vec<ExecRecord> = (0..10_000).map(exec).collect();
    let st = time(records.len(), |i| {
        store.append_exec(&s.id, &records[i]).unwrap()
    });
    st.show("checkpoint: append_exec (history frame + index row)");
    println!(
        "{:<52} max {:>9.3} ms   mean {:.4} ms",
        "",
        st.pct(1.0),
        st.0.iter().sum::<Duration>().as_secs_f64() * 1e3 / st.0.len() as f64
    );
    let t = Instant::now();
    store.sync().unwrap();
    println!(
        "{:<52} {:>9.3} ms",
        "sync (fsync history + WAL checkpoint)",
        t.elapsed().as_secs_f64() * 1e3
    );

    // History format: size and throughput.
    let raw: usize = records
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len() + 1)
        .sum();
    let file = std::fs::metadata(
        root.join("sessions")
            .join(s.id.as_str())
            .join("history.log"),
    )
    .unwrap()
    .len();
    let t = Instant::now();
    let back = store.load_history(&s.id).unwrap();
    let load = t.elapsed();
    assert_eq!(back.len(), records.len());
    println!(
        "history: 10,000 records, {raw} B as JSON lines -> {file} B on disk (ratio {:.2}, {:.1} B/record)",
        raw as f64 / file as f64,
        file as f64 / records.len() as f64
    );
    println!(
        "history: append {:.1} MB/s of records ({:.0} records/s); load {:.1} MB/s ({:.0} records/s)",
        raw as f64 / st.0.iter().sum::<Duration>().as_secs_f64() / 1e6,
        records.len() as f64 / st.0.iter().sum::<Duration>().as_secs_f64(),
        raw as f64 / load.as_secs_f64() / 1e6,
        records.len() as f64 / load.as_secs_f64()
    );
    // Batched appends (64 records a frame), as import and migration write.
    let s2 = store.create_session(config("batched")).unwrap();
    for chunk in records.chunks(64) {
        store.append_execs(&s2.id, chunk).unwrap();
    }
    let file2 = std::fs::metadata(
        root.join("sessions")
            .join(s2.id.as_str())
            .join("history.log"),
    )
    .unwrap()
    .len();
    println!(
        "history in frames of 64 records: {file2} B (ratio {:.2})",
        raw as f64 / file2 as f64
    );

    // A session with 10,000 lines of scrollback, 1,000 execs, 64 KiB of context.
    let big = store.create_session(config("big")).unwrap();
    store.append_execs(&big.id, &records[..1000]).unwrap();
    let sb = scrollback(10_000);
    let sb_raw: usize = sb.lines.iter().map(|l| l.len() + 1).sum();
    store.save_context(&big.id, &vec![7u8; 65536]).unwrap();
    let st = time(50, |_| store.save_scrollback(&big.id, &sb).unwrap());
    let sb_file = std::fs::metadata(
        root.join("sessions")
            .join(big.id.as_str())
            .join("scrollback"),
    )
    .unwrap()
    .len();
    st.show("save_scrollback 10,000 lines (fsync + rename)");
    println!(
        "scrollback: {sb_raw} B of text -> {sb_file} B on disk (ratio {:.2})",
        sb_raw as f64 / sb_file as f64
    );
    let mut ids = Vec::new();
    let st = time(50, |_| ids.push(store.snapshot(&big.id, None).unwrap().id));
    st.show("snapshot (10k-line scrollback, 1k execs, 64 KiB ctx)");
    let st = time(50, |i| store.load_snapshot(&ids[i]).unwrap());
    st.show("load snapshot (decode everything)");
    let st = time(20, |i| store.restore(&ids[i], Some("restored")).unwrap());
    st.show("restore into a new session (load + write)");
    let st = time(20, |_| store.export(&big.id).unwrap());
    st.show("export (session + its 50 snapshots)");

    // 1,000 sessions, each with 20 execs and 100 lines of scrollback.
    let many_root = base.join(format!("{mode}-many"));
    let many = Store::open(&many_root, options.clone()).unwrap();
    let small = scrollback(100);
    for i in 0..1000 {
        let s = many.create_session(config(&format!("s{i}"))).unwrap();
        many.append_execs(&s.id, &records[i..i + 20]).unwrap();
        many.save_scrollback(&s.id, &small).unwrap();
    }
    drop(many);
    let t = Instant::now();
    let many = Store::open(&many_root, options.clone()).unwrap();
    let open = t.elapsed();
    let st = time(5, |_| {
        let all = many.load_all_sessions().unwrap();
        assert_eq!(all.len(), 1000);
        assert!(
            all.iter()
                .all(|(_, r)| r.as_ref().is_ok_and(|r| r.execs == 20))
        );
    });
    println!(
        "{:<52} {:>9.3} ms",
        "open store with 1,000 sessions",
        open.as_secs_f64() * 1e3
    );
    st.show("load_all_sessions, 1,000 sessions");
}

fn main() {
    let tmp;
    let base = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_owned()
        }
    };
    println!("store under {}", base.display());
    run(&base, false);
    run(&base, true);
}
