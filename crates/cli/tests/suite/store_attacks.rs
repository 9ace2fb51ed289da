//! The session store attacked through the real daemon: exports whose ids climb out of the
//! store, links planted in it, decompression bombs and garbage (each refused as bad input,
//! nothing written anywhere, the daemon's memory unmoved), and what an encrypted store leaves
//! on disk in clear (nothing a session printed or was typed).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

use super::harness::{Env, alive, eventually};

const TAG_HISTORY: u32 = 3;
const TAG_SCROLLBACK: u32 = 4;
const TAG_SNAP_META: u32 = 6;
const TAG_END: u32 = u32::MAX;

/// JSON-RPC straight to the daemon's socket, to see each error's kind.
struct Raw {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    id: u64,
}

impl Raw {
    fn connect(env: &Env) -> Self {
        let stream = UnixStream::connect(env.home.path().join("run/t.sock")).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Self {
            stream,
            reader,
            id: 0,
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let req = json!({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params});
        let mut line = serde_json::to_vec(&req).unwrap();
        line.push(b'\n');
        self.stream.write_all(&line).unwrap();
        let mut reply = String::new();
        self.reader.read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"))
    }

    fn import(&mut self, bytes: &[u8], name: &str) -> Value {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.call(
            "session.import",
            json!({"data_b64": data, "name": name, "source": "hostile.aisx"}),
        )
    }
}

/// An export split into header and frames, to be edited and put back together (layout in
/// `crates/store/README.md`).
struct Export {
    header: Vec<u8>,
    frames: Vec<(u32, Vec<u8>)>,
}

impl Export {
    fn parse(bytes: &[u8]) -> Self {
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

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        let count = (self.frames.len() as u32).to_le_bytes();
        for (tag, body) in self
            .frames
            .iter()
            .map(|(t, b)| (*t, b.as_slice()))
            .chain([(TAG_END, &count[..])])
        {
            frame(tag, body, &mut out);
        }
        out
    }

    fn edit_json(&mut self, tag: u32, edit: impl Fn(&mut Value)) {
        for (t, body) in &mut self.frames {
            if *t == tag {
                let mut v: Value = serde_json::from_slice(body).unwrap();
                edit(&mut v);
                *body = serde_json::to_vec(&v).unwrap();
            }
        }
    }

    fn set_frame(&mut self, tag: u32, body: Vec<u8>) {
        self.frames.retain(|(t, _)| *t != tag);
        let at = self
            .frames
            .iter()
            .position(|(t, _)| *t > tag)
            .unwrap_or(self.frames.len());
        self.frames.insert(at, (tag, body));
    }

    fn session_id(&self) -> String {
        let (_, state) = self.frames.iter().find(|(t, _)| *t == 2).unwrap();
        let v: Value = serde_json::from_slice(state).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }
}

fn frame(tag: u32, body: &[u8], out: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&tag.to_le_bytes());
    crc.update(body);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(body);
}

/// A packed body: zstd (method 1), the declared size, the data.
fn packed(declared: u32, zstd_data: &[u8]) -> Vec<u8> {
    let mut body = vec![1u8];
    body.extend_from_slice(&declared.to_le_bytes());
    body.extend_from_slice(zstd_data);
    body
}

/// A scrollback blob (`AISB`, kind 2) around a packed body.
fn scrollback_blob(declared: u32, zstd_data: &[u8]) -> Vec<u8> {
    let body = packed(declared, zstd_data);
    let mut out = b"AISB".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&[2, 0]);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// `n` zero bytes as one zstd frame, compressed on the fly (about 32 KiB per GiB).
fn zstd_zeros(n: u64) -> Vec<u8> {
    zstd_fill(0, n)
}

/// `n` copies of `byte` as one zstd frame.
fn zstd_fill(byte: u8, n: u64) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let chunk = vec![byte; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        enc.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    enc.finish().unwrap()
}

/// A daemon with one session (an exec, a snapshot), and its export.
fn exported() -> (Env, Vec<u8>) {
    let from = Env::new();
    from.ok(&["new", "-s", "a"]);
    from.exec("a", "echo exported-line");
    from.ok(&["snapshot", "-t", "a", "--label", "before"]);
    let out = from.run(&["export", "-t", "a"]);
    assert!(out.status.success() && out.stdout.starts_with(b"AISX"));
    (from, out.stdout)
}

/// Every entry under `dir` (links not followed), relative to it.
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// [`entries`] without the files a live session's periodic checkpoint may add meanwhile (its
/// scrollback and context): what an import would leave behind is a session or snapshot entry.
fn records(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|e| !(e.ends_with("/scrollback") || e.ends_with("/context.bin")))
        .collect()
}

fn store(env: &Env) -> PathBuf {
    env.home.path().join("servers/t/store")
}

/// A line of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`: the peak).
fn vm_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn kind(reply: &Value) -> &str {
    reply["error"]["data"]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

#[test]
fn hostile_exports_are_refused_as_bad_input_and_write_nothing() {
    let (_from, bytes) = exported();
    let to = Env::new();
    to.ok(&["daemon", "start"]);
    let outside = tempfile::tempdir().unwrap();
    let before = records(&store(&to));
    let mut raw = Raw::connect(&to);

    let escape = format!("../../../../../../../..{}/x", outside.path().display());
    let absolute = outside.path().join("x").display().to_string();
    for id in [escape.as_str(), absolute.as_str(), "a\0b", &"x".repeat(65)] {
        let mut e = Export::parse(&bytes);
        e.edit_json(TAG_SNAP_META, |v| v["id"] = id.into());
        let r = raw.import(&e.bytes(), "moved");
        assert_eq!(kind(&r), "invalid_params", "{id:?}: {r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid snapshot id"),
            "{r}"
        );
    }
    let mut e = Export::parse(&bytes);
    e.edit_json(2, |v| v["config"]["name"] = "../../x".into());
    assert_eq!(kind(&raw.import(&e.bytes(), "moved")), "invalid_params");

    // Truncated and garbled files: bad input, never an internal error.
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    let mut bad_zstd = Export::parse(&bytes);
    bad_zstd.set_frame(
        TAG_SCROLLBACK,
        scrollback_blob(100, b"\x28\xb5\x2f\xfdjunk"),
    );
    for (what, input) in [
        ("cut", bytes[..bytes.len() * 2 / 3].to_vec()),
        ("bit flipped", flipped),
        ("bad zstd", bad_zstd.bytes()),
        ("garbage", b"AISX\x01\x00\x00\x00garbage garbage".to_vec()),
    ] {
        let r = raw.import(&input, "moved");
        assert_eq!(kind(&r), "invalid_params", "{what}: {r}");
    }

    // A link planted where the imported session's snapshots go.
    let id = Export::parse(&bytes).session_id();
    let link = store(&to).join("snapshots").join(&id);
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    let r = raw.import(&bytes, "moved");
    assert_eq!(kind(&r), "invalid_params", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{r}"
    );
    std::fs::remove_file(&link).unwrap();

    assert!(
        entries(outside.path()).is_empty(),
        "wrote outside the store"
    );
    assert_eq!(records(&store(&to)), before, "a refused import left files");
    let list = to.json(&["ls"]);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 0, "{list}");
    // The daemon is fine, and the untouched export imports.
    assert_eq!(
        raw.import(&bytes, "moved")["result"]["session"]["name"],
        "moved"
    );
}

#[test]
fn a_decompression_bomb_is_refused_and_the_daemon_stays_small() {
    let (_from, bytes) = exported();
    let to = Env::new();
    to.ok(&["new", "-s", "warm"]);
    // An exec whose view counts tokens: the tokenizer is loaded before the peak is measured.
    assert_eq!(to.exec("warm", "seq 1 3000")["exit_code"], 0);
    let pid = to.daemon_pid();
    let before = records(&store(&to));
    let mut raw = Raw::connect(&to);

    // 1 GiB of zeros, declared as such, in a ~40 KB export.
    let gib = zstd_zeros(1 << 30);
    let mut e = Export::parse(&bytes);
    e.set_frame(TAG_SCROLLBACK, scrollback_blob(1 << 30, &gib));
    let bomb = e.bytes();
    assert!(bomb.len() < 100 * 1024, "{} bytes", bomb.len());
    // The same zeros declared as 4 KiB: the frame lies about its size.
    let mut e = Export::parse(&bytes);
    e.set_frame(TAG_SCROLLBACK, scrollback_blob(4096, &gib));
    let liar = e.bytes();

    let (rss0, peak0) = (vm_kib(pid, "VmRSS"), vm_kib(pid, "VmHWM"));
    let started = std::time::Instant::now();
    let r = raw.import(&bomb, "boom");
    assert_eq!(kind(&r), "too_large", "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("1073741824") && msg.contains("hostile.aisx"),
        "{msg}"
    );
    let hint = r["error"]["data"]["hint"].as_str().unwrap();
    assert!(hint.contains("AI_SESSION_UNPACK_LIMIT_MIB"), "{hint}");
    for _ in 0..20 {
        let r = raw.import(&liar, "boom");
        assert_eq!(kind(&r), "invalid_params", "{r}");
    }
    let elapsed = started.elapsed();
    let (rss1, peak1) = (vm_kib(pid, "VmRSS"), vm_kib(pid, "VmHWM"));
    eprintln!(
        "daemon VmRSS {rss0} -> {rss1} KiB, VmHWM {peak0} -> {peak1} KiB; 21 bombs refused in {elapsed:?}"
    );
    // The kernel reports the high-water mark as at least the current RSS, but records it only
    // at some events, so a later reading can be a little lower than an earlier one.
    let grown = peak1.saturating_sub(peak0);
    assert!(grown < 32 * 1024, "peak RSS grew by {grown} KiB");
    assert_eq!(records(&store(&to)), before, "a refused import left files");
    assert_eq!(to.exec("warm", "echo still-here")["exit_code"], 0);
}

#[test]
fn the_unpack_limit_bounds_an_import_as_a_whole_and_is_configurable() {
    let (_from, bytes) = exported();
    let to = Env::new();
    // A bad value is a clear error at start.
    let out = to
        .command(&["daemon", "start"])
        .env("AI_SESSION_UNPACK_LIMIT_MIB", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AI_SESSION_UNPACK_LIMIT_MIB=0"), "{err}");
    let out = to
        .command(&["daemon", "start"])
        .env("AI_SESSION_UNPACK_LIMIT_MIB", "16")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The daemon loads its tokenizer (tens of MB) on a spare thread at start: an exec whose
    // view counts tokens waits for it, so the peak measured below is the import's alone.
    to.ok(&["new", "-s", "warm"]);
    assert_eq!(to.exec("warm", "seq 1 3000")["exit_code"], 0);
    let pid = to.daemon_pid();
    let before = records(&store(&to));

    // A history of twelve frames, each honestly 4 MiB (of empty lines, which parse as no
    // records): every one is under the limit, together they are three times over it.
    let four = zstd_fill(b'\n', 4 << 20);
    let mut history = b"AISH\x01\x00\x00\x00".to_vec();
    for _ in 0..12 {
        frame(1, &packed(4 << 20, &four), &mut history);
    }
    let mut e = Export::parse(&bytes);
    e.set_frame(TAG_HISTORY, history);
    let peak0 = vm_kib(pid, "VmHWM");
    let mut raw = Raw::connect(&to);
    let r = raw.import(&e.bytes(), "many");
    assert_eq!(kind(&r), "too_large", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("16777216"),
        "{r}"
    );
    let grew = vm_kib(pid, "VmHWM").saturating_sub(peak0);
    assert!(grew < 40 * 1024, "peak RSS grew by {grew} KiB");
    assert_eq!(records(&store(&to)), before);
}

/// Files under `dir` holding `needle`, in their bytes or in any zstd frame inside them
/// (decoded with and without the store's record dictionary).
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            // A file may go while the walk runs (a command's pipe, a temporary file).
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            // The audit log is searched too: with a passphrase its details are sealed.
            if !meta.is_file() {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            if holds(&bytes, needle) || zstd_frames_hold(&bytes, needle) {
                hits.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    hits
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn zstd_frames_hold(bytes: &[u8], needle: &[u8]) -> bool {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    (0..bytes.len().saturating_sub(4))
        .filter(|&i| bytes[i..i + 4] == MAGIC)
        .any(|i| {
            [&[][..], ai_session_store::RECORD_DICT].iter().any(|dict| {
                let mut out = Vec::new();
                if let Ok(d) = zstd::stream::read::Decoder::with_dictionary(&bytes[i..], dict) {
                    // A damaged or foreign frame ends the read early; what came out counts.
                    d.take(64 << 20).read_to_end(&mut out).ok();
                }
                holds(&out, needle)
            })
        })
}

/// One daemon run: a command whose text and output differ, printing more than a sealed log
/// block (so whole blocks reach the disk), and a snapshot. Returns the files under
/// `AI_SESSION_HOME` holding what was typed and what was printed, searched while the daemon
/// runs (the output logs exist only then) and again after a clean stop.
fn run_and_grep(passphrase: Option<&str>) -> (Vec<String>, Vec<String>) {
    let env = Env::new();
    // The shell's own home (its history file) is not ai-session's state: keep it apart.
    let shell_home = tempfile::tempdir().unwrap();
    let uniq = format!(
        "{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let typed = format!("MARKER_$((6*7))_{uniq}");
    let printed = format!("MARKER_42_{uniq}");
    let run = |args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.env("HOME", shell_home.path());
        match passphrase {
            Some(p) => cmd.env("AI_SESSION_PASSPHRASE", p),
            None => cmd.env_remove("AI_SESSION_PASSPHRASE"),
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&["new", "-s", "a"]);
    let command = format!("for i in $(seq 1000); do echo {typed}; done");
    let r: Value = serde_json::from_slice(&run(&["exec", "--json", "-t", "a", &command])).unwrap();
    assert_eq!(r["exit_code"], 0, "{r}");
    assert!(r["output"].as_str().unwrap().contains(&printed), "{r}");
    // `read` gives back exact bytes, from the sealed log too.
    let log = run(&["read", "-t", "a"]);
    assert!(holds(&log, command.as_bytes()) && holds(&log, printed.as_bytes()));
    run(&["snapshot", "-t", "a"]);
    // A command too long to type is handed to the shell through the session's directory; it
    // is searched for while it runs.
    run(&["new", "-s", "b"]);
    let long_marker = format!("LONGCMD_{uniq}");
    let long = format!(
        "echo {long_marker} >/dev/null\nsleep 8\n# {}\n",
        "x".repeat(1100)
    );
    // Still running when the exec answers: not a success for the CLI.
    let mut exec = env.command(&["exec", "--json", "-t", "b", "--idle-timeout", "1", &long]);
    exec.env("HOME", shell_home.path());
    match passphrase {
        Some(p) => exec.env("AI_SESSION_PASSPHRASE", p),
        None => exec.env_remove("AI_SESSION_PASSPHRASE"),
    };
    let r: Value = serde_json::from_slice(&exec.output().unwrap().stdout).unwrap();
    assert_eq!(r["status"], "running", "{r}");
    let mut typed_in = files_holding(env.home.path(), typed.as_bytes());
    typed_in.extend(files_holding(env.home.path(), long_marker.as_bytes()));
    let mut printed_in = files_holding(env.home.path(), printed.as_bytes());
    let pid = env.daemon_pid();
    run(&["daemon", "stop"]);
    eventually(10, "the daemon to exit", || !alive(pid));
    typed_in.extend(files_holding(env.home.path(), typed.as_bytes()));
    printed_in.extend(files_holding(env.home.path(), printed.as_bytes()));
    (typed_in, printed_in)
}

#[test]
fn with_a_passphrase_nothing_typed_or_printed_is_left_in_clear() {
    // Without a passphrase the markers are on disk, in the output log and (compressed) in the
    // store: the search finds them.
    let (typed, printed) = run_and_grep(None);
    let found = |hits: &[String], end: &str| hits.iter().any(|f| f.ends_with(end));
    assert!(
        found(&typed, ".seg") && found(&typed, "history.log"),
        "{typed:?}"
    );
    assert!(
        found(&printed, ".seg") && found(&printed, "scrollback"),
        "{printed:?}"
    );
    // With one, nowhere under AI_SESSION_HOME (the audit log included), decompressed or not.
    let (typed, printed) = run_and_grep(Some("a passphrase"));
    assert!(typed.is_empty(), "typed text in clear in {typed:?}");
    assert!(printed.is_empty(), "printed text in clear in {printed:?}");
}

#[test]
fn read_since_walks_a_sealed_log_exactly() {
    let env = Env::new();
    let with_pass = |args: &[&str]| {
        let out = env
            .command(args)
            .env("AI_SESSION_PASSPHRASE", "sealed logs")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    with_pass(&["new", "-s", "s", "--shell", "/bin/sh"]);
    // About 24 KB: the walk crosses sealed blocks and ends in the partial one.
    env.exec("s", "seq 1 5000");
    let whole = env.json(&[
        "read",
        "-t",
        "s",
        "--since",
        "0",
        "--raw",
        "--max-bytes",
        "1000000",
    ]);
    let mut since = 0u64;
    let mut walked = String::new();
    loop {
        let r = env.json(&[
            "read",
            "-t",
            "s",
            "--since",
            &since.to_string(),
            "--max-bytes",
            "777",
            "--raw",
        ]);
        assert_eq!(r["start"].as_u64().unwrap(), since);
        walked.push_str(r["data"].as_str().unwrap());
        since = r["end"].as_u64().unwrap();
        if !r["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(walked, whole["data"].as_str().unwrap());
    let numbers: Vec<u32> = walked
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let seq: Vec<u32> = (1..=5000).collect();
    assert!(numbers.windows(5000).any(|w| w == seq.as_slice()));
}
