//! A full disk under the daemon's state directory (issue 16, point 1): output that cannot be
//! written is lost and said to be, but offsets stay true, marks still finish execs with their
//! exit codes, the session is visibly degraded, and it recovers when space returns.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::harness::Env;

/// A daemon whose `AI_SESSION_HOME` is a small tmpfs (the tests run as root), unmounted after
/// the daemon stops.
struct SmallHome {
    env: Env,
}

impl SmallHome {
    fn new(bytes: u64) -> Self {
        let env = Env::new();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "tmpfs",
            ])
            .arg(env.home.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs (needs root) failed");
        // A daemon that cannot write its audit log refuses every change by default; this one
        // is told to go on (the audit log's own test covers the refusal).
        let out = env
            .command(&["daemon", "start"])
            .env("AI_SESSION_AUDIT", "best-effort")
            .output()
            .expect("daemon start");
        assert!(out.status.success(), "{out:?}");
        Self { env }
    }

    /// Fills the file system to its last byte with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.env.home.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![b'f'; 64 * 1024];
        for size in [block.len(), 4096, 1] {
            while matches!(file.write(&block[..size]), Ok(n) if n > 0) {}
        }
        assert_eq!(free_bytes(self.env.home.path()), 0);
        path
    }
}

impl Drop for SmallHome {
    fn drop(&mut self) {
        self.env.command(&["daemon", "stop"]).output().ok();
        std::process::Command::new("umount")
            .arg("-l")
            .arg(self.env.home.path())
            .status()
            .ok();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%a %S"])
        .arg(path)
        .output()
        .expect("stat");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("number"));
    it.next().expect("blocks") * it.next().expect("block size")
}

fn session<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["name"] == name)
        .expect("session listed")
}

#[test]
fn a_full_disk_loses_output_but_not_exit_codes_offsets_or_the_session() {
    let home = SmallHome::new(16 << 20);
    let env = &home.env;
    env.ok(&["new", "-s", "s", "--shell", "/bin/bash"]);
    assert_eq!(env.exec("s", "echo before")["output"], "before\n");

    let filler = home.fill();
    // The command's output and its end mark cannot be written: it still finishes, at once,
    // with its own exit code, and says what was lost.
    let r = env.json(&[
        "exec",
        "-t",
        "s",
        "--timeout",
        "20",
        "seq 1 20000; (exit 3)",
    ]);
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["exit_code"], 3, "{r}");
    let output = r["output"].as_str().expect("output");
    assert!(output.contains("bytes lost (log offsets"), "{output}");
    let degraded = r["degraded"]
        .as_str()
        .expect("the exec says output was lost");
    assert!(degraded.contains("No space left"), "{degraded}");
    let r = env.json(&["exec", "-t", "s", "--timeout", "20", "echo hi; false"]);
    assert_eq!(r["exit_code"], 1, "{r}");

    // The session is idle (not left busy) and visibly degraded, in `ls` and `daemon status`.
    let list = env.json(&["ls"]);
    let s = session(&list, "s");
    assert_eq!(s["state"], "idle", "{s}");
    assert!(
        s["degraded"]
            .as_str()
            .is_some_and(|d| d.contains("No space left")),
        "{s}"
    );
    let status = env.json(&["daemon", "status"]);
    assert_eq!(status["degraded"][0]["session"], "s", "{status}");

    // Space returns: the next output is written, the session is whole again, and a read at
    // an exec's offsets returns exactly its bytes.
    std::fs::remove_file(filler).expect("remove filler");
    let r = env.exec("s", "printf 'recovered-%s\\n' 1 2 3");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(
        r["output"], "recovered-1\nrecovered-2\nrecovered-3\n",
        "{r}"
    );
    assert!(r.get("degraded").is_none(), "{r}");
    let (start, end) = (
        r["output_start"].as_u64().expect("start"),
        r["output_end"].as_u64().expect("end"),
    );
    let read = env.json(&[
        "read",
        "-t",
        "s",
        "--raw",
        "--since",
        &start.to_string(),
        "--max-bytes",
        &(end - start).to_string(),
    ]);
    assert_eq!(read["start"].as_u64(), Some(start), "{read}");
    assert_eq!(read["dropped"], 0, "{read}");
    assert_eq!(
        read["data"], "recovered-1\r\nrecovered-2\r\nrecovered-3\r\n",
        "{read}"
    );
    let list = env.json(&["ls"]);
    assert!(session(&list, "s").get("degraded").is_none(), "{list}");
    let status = env.json(&["daemon", "status"]);
    assert!(status.get("degraded").is_none(), "{status}");
    assert_eq!(env.exec("s", "echo after")["output"], "after\n");
}
