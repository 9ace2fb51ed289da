//! Bytes on disk of many snapshots of one session whose large scrollback changes a little
//! between snapshots: `cargo run --release -p ai-session-store --example snapshot_disk
//! [-- SNAPSHOTS [NEW_LINES [DIR]]]` (200 snapshots, 20 new lines by default; DIR defaults to a
//! temporary directory).
//!
//! The session: 10,000 scrollback lines of build and test output and a 50-row screen; between
//! two snapshots one exec is recorded and NEW_LINES lines of output scroll in (the oldest drop
//! out, as in the emulator's bounded scrollback). Runs plaintext, then encrypted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ai_session_store::{ExecRecord, KdfParams, Options, Scrollback, SessionConfig, Size, Store};

const LINES: usize = 10_000;

fn line(i: usize) -> String {
    match i % 4 {
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
    }
}

fn scrollback(first: usize) -> Scrollback {
    Scrollback {
        lines: (first..first + LINES).map(line).collect(),
        screen: (0..50)
            .map(|r| line(first + LINES + r))
            .collect::<Vec<_>>()
            .join("\n"),
        replay: Vec::new(),
    }
}

fn exec(n: u64) -> ExecRecord {
    ExecRecord {
        command: format!("cargo test -p ai-session-store # {n}"),
        exit_code: Some(0),
        cwd: "/work/main/crates/store".into(),
        started_ms: 1_760_000_000_000 + n * 2_000,
        ended_ms: 1_760_000_000_000 + n * 2_000 + 1_500,
        output_start: n * 4096,
        output_end: n * 4096 + 1234,
    }
}

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += disk_bytes(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

fn run(root: &Path, snapshots: usize, new_lines: usize, passphrase: Option<&str>) {
    let options = Options {
        passphrase: passphrase.map(str::to_owned),
        kdf: KdfParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        },
        ..Options::default()
    };
    let store = Store::open(root, options).unwrap();
    let env: BTreeMap<String, String> = std::env::vars().take(40).collect();
    let state = store
        .create_session(SessionConfig {
            name: "big".into(),
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
        })
        .unwrap();
    let id = state.id;
    let started = Instant::now();
    let mut first_bytes = 0;
    for n in 0..snapshots {
        store.append_exec(&id, &exec(n as u64)).unwrap();
        store
            .save_scrollback(&id, &scrollback(n * new_lines))
            .unwrap();
        store.snapshot(&id, None).unwrap();
        if n == 0 {
            first_bytes = disk_bytes(&root.join("snapshots")) + chunk_bytes(root);
        }
    }
    let elapsed = started.elapsed();
    let total = disk_bytes(&root.join("snapshots")) + chunk_bytes(root);
    let loaded = store.list_snapshots(Some(&id)).unwrap();
    let last = store.load_snapshot(&loaded.last().unwrap().id).unwrap();
    assert_eq!(last.history.len(), snapshots);
    println!(
        "{:<10} {snapshots} snapshots, {new_lines} new lines each: {:.2} MB on disk ({total} bytes); the first alone {:.1} KB; {:.1} KB per further snapshot; {:.1} ms per snapshot (incl. append + save_scrollback)",
        if passphrase.is_some() {
            "encrypted"
        } else {
            "plaintext"
        },
        total as f64 / 1e6,
        first_bytes as f64 / 1e3,
        (total - first_bytes) as f64 / (snapshots.max(2) - 1) as f64 / 1e3,
        elapsed.as_secs_f64() * 1e3 / snapshots as f64,
    );
}

fn chunk_bytes(root: &Path) -> u64 {
    let dir = root.join("chunks");
    if dir.is_dir() { disk_bytes(&dir) } else { 0 }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let snapshots: usize = args.next().map_or(200, |a| a.parse().expect("SNAPSHOTS"));
    let new_lines: usize = args.next().map_or(20, |a| a.parse().expect("NEW_LINES"));
    let base = args.next().map(std::path::PathBuf::from);
    for passphrase in [None, Some("bench passphrase")] {
        let tmp = match &base {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        run(tmp.path(), snapshots, new_lines, passphrase);
    }
}
