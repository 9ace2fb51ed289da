use std::collections::BTreeMap;
use std::path::Path;

use ai_session_store::{ExecRecord, KdfParams, Options, Scrollback, SessionConfig, Size, Store};

/// Cheap Argon2 costs: the tests derive keys many times.
pub fn fast_kdf() -> KdfParams {
    KdfParams {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    }
}

pub fn plain() -> Options {
    Options {
        durable: false,
        ..Options::default()
    }
}

pub fn encrypted(pass: &str) -> Options {
    Options {
        passphrase: Some(pass.into()),
        kdf: fast_kdf(),
        durable: false,
        ..Options::default()
    }
}

pub fn open(dir: &Path) -> Store {
    Store::open(dir, plain()).unwrap()
}

pub fn config(name: &str) -> SessionConfig {
    let mut env = BTreeMap::new();
    env.insert("PATH".into(), "/usr/bin:/bin".into());
    env.insert("SECRET_TOKEN".into(), "hunter2-very-secret".into());
    SessionConfig {
        name: name.into(),
        shell: Some("/bin/bash".into()),
        argv: vec!["/bin/bash".into(), "--noprofile".into()],
        size: Size {
            cols: 120,
            rows: 40,
        },
        env,
        cwd: "/tmp".into(),
        created_ms: 1_700_000_000_000,
    }
}

pub fn exec(n: u64) -> ExecRecord {
    ExecRecord {
        command: format!("cargo test --package secret-pkg-{n}"),
        exit_code: Some((n % 3) as i32),
        cwd: format!("/work/dir{}", n % 5),
        started_ms: 1_700_000_000_000 + n * 1000,
        ended_ms: 1_700_000_000_000 + n * 1000 + 10 * n,
        output_start: n * 100,
        output_end: n * 100 + 99,
    }
}

pub fn scrollback(lines: usize) -> Scrollback {
    Scrollback {
        lines: (0..lines)
            .map(|i| {
                format!(
                    "line {i}: compiling crate-{} v0.{}.0 (/work/secret-path)",
                    i % 50,
                    i % 7
                )
            })
            .collect(),
        screen: "$ ls\nCargo.toml  src\n$ ".into(),
        replay: vec![0x1b, b'[', b'H', b'x'],
    }
}

/// Every regular file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
