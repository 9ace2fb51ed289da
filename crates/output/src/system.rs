//! System tools: ps, ss/netstat, df, du, ls -l, free. Columns are found from each tool's header, so
//! option variants (`ps aux`, `ps -ef`, `ps u`) parse the same way.

use std::sync::LazyLock;

use regex::Regex;

use crate::parsed::{
    Connection, Custom, FileEntry, FileSystemOutput, NetworkOutput, ProcessInfo, ProcessList,
    Status,
};

/// Splits a row into `n` whitespace-separated fields, the last one taking the rest of the line.
fn fields(line: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line.trim_start();
    while out.len() + 1 < n && !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Parses `ps` output with a header line.
pub fn parse_ps(lines: &[&str]) -> ProcessList {
    let Some(header) = lines.first() else {
        return ProcessList { processes: vec![] };
    };
    let cols: Vec<&str> = header.split_whitespace().collect();
    let idx = |names: &[&str]| cols.iter().position(|c| names.contains(c));
    let (pid, user, cpu, mem, rss) = (
        idx(&["PID"]),
        idx(&["USER", "UID"]),
        idx(&["%CPU", "C"]),
        idx(&["%MEM"]),
        idx(&["RSS", "RSZ"]),
    );
    let mut processes = Vec::new();
    for line in &lines[1..] {
        let f = fields(line, cols.len());
        let Some(p) = pid.and_then(|i| f.get(i)).and_then(|s| s.parse().ok()) else {
            continue;
        };
        let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied();
        processes.push(ProcessInfo {
            pid: p,
            user: get(user).map(str::to_string),
            cpu: get(cpu).and_then(|s| s.parse().ok()),
            mem: get(mem).and_then(|s| s.parse().ok()),
            rss_kib: get(rss).and_then(|s| s.parse().ok()),
            command: f.last().copied().unwrap_or("").to_string(),
        });
    }
    ProcessList { processes }
}

/// Processes sorted by CPU then memory, one line each, commands shortened.
pub fn render_ps(p: &ProcessList, out: &mut String) -> Status {
    outln!(
        out,
        "ps: {} processes (pid user %cpu %mem command)",
        p.processes.len()
    );
    let mut sorted: Vec<&ProcessInfo> = p.processes.iter().collect();
    sorted.sort_by(|a, b| {
        b.cpu
            .unwrap_or(0.0)
            .total_cmp(&a.cpu.unwrap_or(0.0))
            .then(b.mem.unwrap_or(0.0).total_cmp(&a.mem.unwrap_or(0.0)))
    });
    for q in sorted {
        let num = |v: Option<f32>| v.map_or_else(|| "-".to_string(), |x| format!("{x}"));
        outln!(
            out,
            "{} {} {} {} {}",
            q.pid,
            q.user.as_deref().unwrap_or("-"),
            num(q.cpu),
            num(q.mem),
            crate::text::shorten(&q.command, 80)
        );
    }
    Status::Unknown
}

/// Parses `ss` or `netstat` socket tables.
pub fn parse_net(tool: &str, lines: &[&str]) -> NetworkOutput {
    let mut connections = Vec::new();
    for line in lines.iter().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let c = if tool == "ss" {
            // `State Recv-Q Send-Q Local Peer [Process]`, with an optional leading `Netid`.
            let off = usize::from(
                f.first()
                    .is_some_and(|s| ["tcp", "udp", "u_str", "u_dgr", "raw"].contains(s)),
            );
            let Some(state) = f.get(off) else { continue };
            Connection {
                proto: if off == 1 {
                    f[0].to_string()
                } else {
                    "tcp".into()
                },
                state: state.to_string(),
                local: f.get(off + 3).unwrap_or(&"").to_string(),
                peer: f.get(off + 4).unwrap_or(&"").to_string(),
                process: f.get(off + 5).map(|s| s.to_string()),
            }
        } else {
            let Some(proto) = f
                .first()
                .filter(|p| p.starts_with("tcp") || p.starts_with("udp"))
            else {
                continue;
            };
            Connection {
                proto: proto.to_string(),
                state: f
                    .get(5)
                    .filter(|s| !s.contains('/'))
                    .unwrap_or(&"")
                    .to_string(),
                local: f.get(3).unwrap_or(&"").to_string(),
                peer: f.get(4).unwrap_or(&"").to_string(),
                process: f.last().filter(|s| s.contains('/')).map(|s| s.to_string()),
            }
        };
        connections.push(c);
    }
    NetworkOutput {
        tool: tool.into(),
        connections,
    }
}

/// One line per socket.
pub fn render_net(n: &NetworkOutput, out: &mut String) -> Status {
    outln!(
        out,
        "{}: {} sockets (proto state local peer process)",
        n.tool,
        n.connections.len()
    );
    for c in &n.connections {
        outln!(
            out,
            "{} {} {} {} {}",
            c.proto,
            c.state,
            c.local,
            c.peer,
            c.process.as_deref().unwrap_or("")
        );
    }
    Status::Unknown
}

static LS_ROW: LazyLock<Regex> = lazy_re!(
    r"^([-dlcbpsD])[rwxsStT-]{9}[.+@]?\s+\d+\s+\S+\s+\S+\s+(\d+(?:,\s*\d+)?)\s+\S+\s+\S+\s+\S+\s(.+)$"
);

/// Parses `df`, `du` or `ls -l`.
pub fn parse_fs(tool: &str, lines: &[&str]) -> FileSystemOutput {
    let mut fs = FileSystemOutput {
        tool: tool.into(),
        entries: vec![],
        messages: vec![],
    };
    for (i, line) in lines.iter().enumerate() {
        let entry = match tool {
            "df" if i > 0 => df_row(line),
            "du" => du_row(line),
            "ls" => ls_row(line),
            _ => None,
        };
        match entry {
            Some(e) => fs.entries.push(e),
            None if !(line.trim().is_empty() || tool == "df" && i == 0) => {
                fs.messages.push(line.to_string())
            }
            None => {}
        }
    }
    fs
}

fn df_row(line: &str) -> Option<FileEntry> {
    let f = fields(line, 6);
    let pct = f.get(4).filter(|s| s.ends_with('%'))?;
    Some(FileEntry {
        path: f.get(5)?.to_string(),
        size: Some(format!(
            "{} used of {}, {} free",
            f.get(2)?,
            f.get(1)?,
            f.get(3)?
        )),
        bytes: None,
        kind: Some(f[0].to_string()),
        detail: Some(pct.to_string()),
    })
}

fn du_row(line: &str) -> Option<FileEntry> {
    let (size, path) = line.split_once('\t')?;
    Some(FileEntry {
        path: path.into(),
        size: Some(size.into()),
        bytes: human_bytes(size),
        kind: None,
        detail: None,
    })
}

fn human_bytes(s: &str) -> Option<u64> {
    let unit = s.chars().last()?;
    let (num, mult) = match unit {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1024),
    };
    num.parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

fn ls_row(line: &str) -> Option<FileEntry> {
    let c = LS_ROW.captures(line)?;
    let kind = match &c[1] {
        "d" => "dir",
        "l" => "link",
        "-" => "file",
        _ => "special",
    };
    let (name, target) = match c[3].split_once(" -> ") {
        Some((n, t)) if kind == "link" => (n.to_string(), Some(t.to_string())),
        _ => (c[3].to_string(), None),
    };
    Some(FileEntry {
        path: name,
        size: Some(c[2].to_string()),
        bytes: c[2].parse().ok(),
        kind: Some(kind.into()),
        detail: target,
    })
}

/// Names listed for `ls -l` before the rest are counted; names are what an `ls` is run for.
const LS_NAMES: usize = 2000;

/// df rows one per line, du largest first, ls grouped by kind.
pub fn render_fs(f: &FileSystemOutput, out: &mut String) -> Status {
    for m in &f.messages {
        outln!(out, "{m}");
    }
    match f.tool.as_str() {
        "df" => {
            for e in &f.entries {
                outln!(
                    out,
                    "{} {} ({}, {})",
                    e.path,
                    e.detail.as_deref().unwrap_or(""),
                    e.size.as_deref().unwrap_or(""),
                    e.kind.as_deref().unwrap_or("")
                );
            }
        }
        "du" => {
            let mut v: Vec<&FileEntry> = f.entries.iter().collect();
            v.sort_by_key(|e| std::cmp::Reverse(e.bytes));
            outln!(out, "du: {} entries, largest first", v.len());
            for e in v.iter().take(30) {
                outln!(out, "{} {}", e.size.as_deref().unwrap_or(""), e.path);
            }
        }
        _ => render_ls(f, out),
    }
    Status::Unknown
}

fn render_ls(f: &FileSystemOutput, out: &mut String) {
    let count = |k: &str| {
        f.entries
            .iter()
            .filter(|e| e.kind.as_deref() == Some(k))
            .count()
    };
    outln!(
        out,
        "ls: {} entries ({} dirs, {} files, {} links)",
        f.entries.len(),
        count("dir"),
        count("file"),
        count("link")
    );
    let mut largest: Vec<&FileEntry> = f
        .entries
        .iter()
        .filter(|e| e.kind.as_deref() == Some("file"))
        .collect();
    largest.sort_by_key(|e| std::cmp::Reverse(e.bytes));
    let big: Vec<String> = largest
        .iter()
        .take(5)
        .map(|e| format!("{} ({})", e.path, e.size.as_deref().unwrap_or("")))
        .collect();
    if !big.is_empty() {
        outln!(out, "largest: {}", big.join(", "));
    }
    for kind in ["dir", "file", "link", "special"] {
        let names: Vec<&str> = f
            .entries
            .iter()
            .filter(|e| e.kind.as_deref() == Some(kind))
            .map(|e| e.path.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        let more = names.len().saturating_sub(LS_NAMES);
        let list = names
            .iter()
            .take(LS_NAMES)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let tail = if more > 0 {
            format!(" … +{more} more")
        } else {
            String::new()
        };
        outln!(out, "{kind}s: {list}{tail}");
    }
}

/// Parses `free`: one object per row (`Mem`, `Swap`) keyed by the header's columns.
pub fn parse_free(lines: &[&str]) -> Custom {
    let header: Vec<&str> = lines
        .first()
        .map(|h| h.split_whitespace().collect())
        .unwrap_or_default();
    let mut data = serde_json::Map::new();
    for line in lines.iter().skip(1) {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        let row: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(f)
            .map(|(h, v)| (h.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        data.insert(
            name.trim_end_matches(':').to_string(),
            serde_json::Value::Object(row),
        );
    }
    Custom {
        kind: "memory".into(),
        data: serde_json::Value::Object(data),
    }
}

/// `free` is already short: its rows with spacing collapsed.
pub fn render_free(lines: &[&str], out: &mut String) -> Status {
    for l in lines {
        outln!(
            out,
            "{}",
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    Status::Unknown
}
