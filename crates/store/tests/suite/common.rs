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
        policy: None,
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

/// The end frame's tag in an export.
pub const TAG_END: u32 = u32::MAX;

/// An export split into its header and frames, to be edited and put back together.
pub struct Export {
    pub header: Vec<u8>,
    pub frames: Vec<(u32, Vec<u8>)>,
}

impl Export {
    pub fn parse(bytes: &[u8]) -> Self {
        let mut frames = Vec::new();
        let mut pos = 8;
        while pos < bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let tag = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
            frames.push((tag, bytes[pos + 12..pos + 12 + len].to_vec()));
            pos += 12 + len;
        }
        assert_eq!(frames.pop().map(|f| f.0), Some(TAG_END));
        Self {
            header: bytes[..8].to_vec(),
            frames,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        let count = (self.frames.len() as u32).to_le_bytes();
        for (tag, body) in self
            .frames
            .iter()
            .map(|(t, b)| (*t, b.as_slice()))
            .chain([(TAG_END, &count[..])])
        {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&tag.to_le_bytes());
            crc.update(body);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&crc.finalize().to_le_bytes());
            out.extend_from_slice(body);
        }
        out
    }
}
