//! `snapshot`, `restore`, `export` and `import`: the daemon's session store from the CLI.

use ai_session_protocol::registry::{self as reg, Method};
use std::io::{Read, Write};
use std::process::ExitCode;

use ai_session_protocol::persist::*;
use base64::Engine;
use clap::{Args, Subcommand};

use crate::commands::{print_json, usage};
use crate::error::CliError;
use ai_session_client::{Client, Selector};

#[derive(Subcommand)]
pub enum PersistCommand {
    /// Save a session's config, cwd, environment, history, scrollback and context
    /// (`snapshot -t NAME [--label L]`), or list snapshots (`snapshot ls [-t NAME]`).
    #[command(args_conflicts_with_subcommands = true)]
    Snapshot(SnapshotArgs),
    /// Start a new session from a snapshot: a new shell in the saved cwd and environment with
    /// the old scrollback shown. Commands are not re-run unless --rerun-last.
    Restore(RestoreArgs),
    /// Write a session's whole record (with its snapshots) to stdout, for `import` elsewhere.
    Export(ExportArgs),
    /// Read an export from stdin and start its session here.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    action: Option<SnapshotAction>,
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: Option<String>,
    /// A note to find the snapshot by.
    #[arg(long = "label", id = "snapshot_label", value_name = "TEXT")]
    label: Option<String>,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SnapshotAction {
    /// List snapshots, oldest first.
    Ls {
        /// Only this session's snapshots.
        #[arg(short = 't', value_name = "NAME")]
        target: Option<String>,
        /// Print JSON with a stable shape.
        #[arg(long)]
        json: bool,
    },
    /// Remove old snapshots: keep the newest N per session (--keep) and/or all snapshots
    /// under a size on disk (--max-bytes, oldest removed first; the newest always stays).
    /// Data no remaining snapshot shares is removed with them.
    Prune {
        /// Only the snapshots of sessions of this name.
        #[arg(short = 't', value_name = "NAME")]
        target: Option<String>,
        /// Snapshots to keep per session.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        /// Bytes all snapshots may take (a number, or with K, M or G: 64M).
        #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
        max_bytes: Option<u64>,
        /// Print JSON with a stable shape.
        #[arg(long)]
        json: bool,
    },
}

/// `123`, `64K`, `64M`, `2G` (powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size: give bytes, or a number with K, M or G"))
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The snapshot id, or a unique prefix of it.
    #[arg(value_name = "SNAPSHOT", required_unless_present = "from_lost")]
    snapshot: Option<String>,
    /// In a cluster: bring back lost session NAME (its node died) from its last checkpoint,
    /// instead of a snapshot.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["snapshot", "rerun_last"])]
    from_lost: Option<String>,
    /// With --from-lost: the node to start it on (default: the node asked).
    #[arg(long, value_name = "NODE", requires = "from_lost")]
    node: Option<String>,
    /// The new session's name (default: the snapshot's session name).
    #[arg(short = 's', value_name = "NAME")]
    name: Option<String>,
    /// Run the snapshot's last command again, and print its output.
    #[arg(long)]
    rerun_last: bool,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The session's name here (default: its exported name).
    #[arg(short = 's', value_name = "NAME")]
    name: Option<String>,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

pub async fn run(sel: &Selector, command: PersistCommand) -> Result<ExitCode, CliError> {
    let client = crate::commands::connect(sel, true).await?;
    match command {
        PersistCommand::Snapshot(a) => match a.action {
            Some(SnapshotAction::Ls { target, json }) => list(&client, target, json).await,
            Some(SnapshotAction::Prune {
                target,
                keep,
                max_bytes,
                json,
            }) => {
                prune(
                    &client,
                    PruneParams {
                        target,
                        keep,
                        max_bytes,
                    },
                    json,
                )
                .await
            }
            None => {
                let target = a.target.ok_or_else(|| {
                    usage("snapshot needs -t NAME (or `snapshot ls` to list)".into())
                })?;
                let params = SnapshotParams {
                    target,
                    label: a.label,
                };
                let s: SnapshotInfo = client.call(reg::SnapshotCreate::NAME, params).await?;
                if a.json {
                    print_json(&s)?;
                } else {
                    outln!("{}", s.id);
                }
                Ok(ExitCode::SUCCESS)
            }
        },
        PersistCommand::Restore(a) if a.from_lost.is_some() => {
            let params = ai_session_protocol::cluster::RestoreLostParams {
                name: a.from_lost.unwrap_or_default(),
                node: a.node,
                as_name: a.name,
            };
            let info: ai_session_protocol::methods::SessionInfo =
                client.call(reg::ClusterRestore::NAME, params).await?;
            if a.json {
                print_json(&info)?;
            } else {
                outln!("{}", info.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        PersistCommand::Restore(a) => {
            let params = RestoreParams {
                snapshot: a.snapshot.unwrap_or_default(),
                name: a.name,
                rerun_last: a.rerun_last,
            };
            let r: RestoreResult = client.call(reg::SnapshotRestore::NAME, params).await?;
            if a.json {
                print_json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{}", r.session.name);
            if let Some(rerun) = &r.rerun {
                out!("{}", rerun.output);
                std::io::stdout().flush()?;
                if let Some(code) = rerun.exit_code.filter(|c| *c != 0) {
                    return Ok(ExitCode::from(code.clamp(1, 255) as u8));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PersistCommand::Export(a) => export(&client, a.target).await,
        PersistCommand::Import(a) => {
            let mut bytes = Vec::new();
            std::io::stdin().lock().read_to_end(&mut bytes)?;
            if bytes.is_empty() {
                return Err(usage(
                    "import reads an export from stdin: ai-session import < FILE".into(),
                ));
            }
            // One request carries the file in base64 (4 bytes per 3), under the daemon's
            // request bound, with room for the rest of the request.
            let max = (ai_session_protocol::MAX_REQUEST_BYTES - 4096) / 4 * 3;
            if bytes.len() > max {
                return Err(CliError::Refused(
                    ai_session_protocol::RpcError::new(
                        ai_session_protocol::ErrorKind::TooLarge,
                        format!(
                            "the export on stdin is {} bytes; one import takes at most {max}",
                            bytes.len()
                        ),
                    )
                    .with_hint(
                        "export fewer snapshots: `ai-session snapshot prune -t NAME --keep 1` on the exporting daemon, then export again",
                    ),
                ));
            }
            let params = ImportParams {
                data_b64: base64::engine::general_purpose::STANDARD.encode(&bytes),
                name: a.name,
                source: Some("<stdin>".into()),
            };
            let r: ImportResult = client.call(reg::SessionImport::NAME, params).await?;
            if a.json {
                print_json(&r)?;
            } else {
                outln!("{}", r.session.name);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Asks for the export piece by piece (the daemon spools it and answers at most
/// `EXPORT_PIECE_BYTES` a call), writing each to stdout as it comes: neither side holds the
/// whole file.
async fn export(client: &Client, target: String) -> Result<ExitCode, CliError> {
    let mut out = std::io::stdout().lock();
    let mut params = ExportParams {
        target,
        export: None,
        offset: 0,
        max_bytes: None,
    };
    loop {
        let r: ExportResult = client.call(reg::SessionExport::NAME, &params).await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&r.data_b64)
            .map_err(|e| CliError::Local(format!("export is not base64: {e}")))?;
        if r.offset != params.offset || r.next_offset != r.offset + bytes.len() as u64 {
            return Err(CliError::Local(format!(
                "the daemon answered the export piece at {} ({} bytes) when {} was asked",
                r.offset,
                bytes.len(),
                params.offset
            )));
        }
        out.write_all(&bytes)?;
        match r.export {
            Some(handle) if r.next_offset < r.bytes => {
                params.export = Some(handle);
                params.offset = r.next_offset;
            }
            _ => break,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn prune(client: &Client, params: PruneParams, json: bool) -> Result<ExitCode, CliError> {
    if params.keep.is_none() && params.max_bytes.is_none() {
        return Err(usage(
            "snapshot prune needs --keep N and/or --max-bytes BYTES".into(),
        ));
    }
    let r: PruneResult = client.call(reg::SnapshotPrune::NAME, params).await?;
    if json {
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    for s in &r.removed {
        outln!("removed {}  {}  {}", s.id, s.session_name, s.created_ms);
    }
    outln!(
        "{} snapshot(s) and {} chunk(s) removed, {} bytes freed; snapshots now take {} bytes",
        r.removed.len(),
        r.chunks_removed,
        r.bytes_freed,
        r.bytes_total
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &Client, target: Option<String>, json: bool) -> Result<ExitCode, CliError> {
    let r: SnapshotListResult = client
        .call(reg::SnapshotList::NAME, SnapshotListParams { target })
        .await?;
    if json {
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    for s in &r.snapshots {
        outln!(
            "{}  {}  {} exec(s)  {} bytes  {}{}{}",
            s.id,
            s.session_name,
            s.execs,
            s.bytes,
            s.created_ms,
            s.label
                .as_deref()
                .map(|l| format!("  {l}"))
                .unwrap_or_default(),
            s.node
                .as_deref()
                .map(|n| format!("  on node {n}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
