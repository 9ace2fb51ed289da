//! `ai-session`: the command-line client (and, with `daemon run`, the daemon itself).

// Output goes through `out!`/`outln!`/`errln!` (`out.rs`), which end quietly on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod out;
mod alerts;
mod answer;
mod args;
mod attach;
mod cluster;
mod commands;
mod context;
mod coord;
mod decide;
mod duration;
mod error;
mod exec;
mod guard;
mod hot;
mod manual;
mod persist;
mod report;
mod security;
mod stats;
mod stream;
mod tmux;
mod upgrade;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use ai_session_client::Selector;
use args::{DaemonChoice, ExecArgs, JsonFlag, NewArgs};
use error::CliError;

/// The exit statuses, in `--help` (and README.md, docs/cli.md).
const EXIT_STATUS: &str = "Exit status:
  0        success
  N        exec: the command's own exit status (also `restore --rerun-last`)
  1        a negative answer: `daemon status` finds no daemon, `audit verify` finds damage,
           `bus subscribe` ends because the stream closed
  3        `task claim`: no task is assigned
  124      a timeout: exec returned before its command finished (status running, timeout,
           waiting_for_input or starting; the hint on stderr says what to do), `wait` or
           `bus request` ran out of time
  125      ai-session could not run the command: bad usage, daemon unreachable or failing to
           start, unknown session, request refused; with --json the error is JSON on stdout:
           {kind, message, hint, exit_code}
  141      standard output was closed (`ai-session ... | head -1`)";

#[derive(Parser)]
#[command(
    name = "ai-session",
    version,
    about = "Terminal sessions for AI agents: a daemon owns real PTY sessions; every command comes back with its exit code",
    after_help = EXIT_STATUS
)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a session running a shell (or PROGRAM).
    New(NewArgs),
    /// List sessions.
    Ls(JsonFlag),
    /// Run COMMAND in a session's shell; print its output and exit with its exit code.
    Exec(ExecArgs),
    /// Type keys into a session: tmux key names (Enter, C-c, Up, F5, M-x) or text.
    Send(SendArgs),
    /// Print a session's output since an offset (nothing lost, nothing twice).
    Read(ReadArgs),
    /// Print the screen as a person would see it.
    Capture(CaptureArgs),
    /// Wait until output matches, output goes quiet, or the shell prompt is back.
    Wait(WaitArgs),
    /// Connect this terminal to a session; Ctrl-\ detaches and leaves it running.
    Attach(AttachArgs),
    /// Change a session's terminal size.
    Resize(ResizeArgs),
    /// Kill a session and every process in it.
    Kill(TargetArgs),
    /// Parse saved command output from stdin: the compact view, or the full structure with --json.
    Parse(ParseArgs),
    /// A session's or a task's commands as a CI report: JUnit, SARIF, GitHub annotations, Markdown.
    Report(report::ReportArgs),
    #[command(flatten)]
    Coord(coord::CoordCommand),
    #[command(flatten)]
    Persist(persist::PersistCommand),
    #[command(flatten)]
    Decide(decide::DecideCommand),
    /// Serve the Model Context Protocol on stdin/stdout (for Claude Code, Codex, Cursor).
    Mcp(McpArgs),
    /// Serve the HTTP and WebSocket API (and MCP at /mcp) from the daemon; prints the URL and
    /// the token file.
    Serve(ServeArgs),
    /// The web dashboard: starts the HTTP server if needed and prints a one-time login link.
    Web(web::WebArgs),
    /// The daemon's figures: sessions, execs and their outcomes, tokens, requests, resources.
    Stats(StatsArgs),
    /// Anomalies detected: retry loops, slow execs, error spikes, floods, denial bursts.
    Alerts(alerts::AlertsArgs),
    /// Sandbox policies: check one and see what this host would enforce.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// The tamper-evident audit log: verify its hash chain, list entries.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// A session's token-aware context: what an agent should put in its prompt to go on.
    Context(context::ContextArgs),
    /// Capabilities: API tokens for agents and programs, grants and revocations.
    Access {
        #[command(subcommand)]
        action: AccessAction,
    },
    /// tmux's command line over this daemon (as when the binary is run as `tmux`):
    /// new-session, split-window, send-keys, capture-pane, wait-for... (see docs/tmux.md).
    Tmux(RawArgs),
    /// Copy every pane of a running tmux server into sessions named sess.W.P: directory,
    /// environment, size and scrollback with colours above a fresh prompt
    /// ([-L NAME | -S PATH] [-t SESSION] [--kill] [--json]).
    MigrateTmux(RawArgs),
    /// The daemons of this daemon's cluster: their sessions, load and last heartbeat.
    Nodes(JsonFlag),
    /// Print a shell completion script: `source <(ai-session completions bash)`, or save it
    /// where your shell loads completions (see README.md).
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff: `ai-session man | man -l -`), or with --dir write one page per
    /// command there.
    Man {
        /// Write ai-session.1 and ai-session-COMMAND.1 into DIR (e.g. ~/.local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Start, stop or inspect the daemon.
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Validate a policy file (or built-in profile), explain what it allows, and list the
    /// protections this host would enforce and those it cannot.
    Check {
        /// A TOML policy file or a profile: default, read-only, workspace-write, no-network.
        #[arg(value_name = "FILE|PROFILE")]
        policy: String,
        /// The workspace to plan for (default: the current directory).
        #[arg(short = 'c', value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Print JSON with a stable shape.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AccessAction {
    /// Create an API token holding exactly these capabilities; give it to an agent as
    /// $AI_SESSION_TOKEN (or as an HTTP bearer token).
    Token {
        /// A capability: resource:action[:target], e.g. session:exec:build, session:read:*.
        #[arg(long = "cap", value_name = "CAP", required = true)]
        caps: Vec<String>,
        /// A note saying who the token is for.
        #[arg(
            long = "label",
            id = "token_label",
            value_name = "TEXT",
            default_value = ""
        )]
        label: String,
        /// Every session this token creates runs in this sandbox (a policy file or profile).
        #[arg(long, value_name = "FILE|PROFILE")]
        policy: Option<String>,
        /// Print JSON with a stable shape.
        #[arg(long)]
        json: bool,
    },
    /// Grant a capability to an agent (agent:ID) or a token (token:ID).
    Grant {
        #[arg(value_name = "PRINCIPAL")]
        principal: String,
        #[arg(value_name = "CAP")]
        cap: String,
    },
    /// Revoke a granted capability.
    Revoke {
        #[arg(value_name = "PRINCIPAL")]
        principal: String,
        #[arg(value_name = "CAP")]
        cap: String,
    },
    /// Bind a sandbox policy to an agent or token: every session it creates runs in it.
    Policy {
        #[arg(value_name = "PRINCIPAL")]
        principal: String,
        /// A policy file or a profile (default, read-only, workspace-write, no-network).
        #[arg(value_name = "FILE|PROFILE", required_unless_present = "clear")]
        policy: Option<String>,
        /// Unbind: the principal's sessions choose their own policy again.
        #[arg(long, conflicts_with = "policy")]
        clear: bool,
    },
    /// Revoke an API token entirely; it stops working at once.
    RevokeToken {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List tokens and grants.
    Ls(JsonFlag),
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check every entry's keyed hash, the chain and the signed head; exit status 1 if any
    /// line was edited, removed, inserted or reordered, lines were cut from either end, or
    /// the chain was recomputed without the key.
    Verify(JsonFlag),
    /// Move a damaged or unwritable log aside and start a new chained segment whose first
    /// entry records the break (the daemon refuses writes until then).
    Repair(JsonFlag),
    /// List audit entries.
    Ls {
        /// Only entries since a duration ago (15m, 2h, 7d) or a UTC time (2026-11-23T10:00:00Z).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only entries with at least this risk score (0-100).
        #[arg(long, value_name = "R", default_value_t = 0)]
        min_risk: u8,
        /// Only this session.
        #[arg(short = 't', value_name = "NAME")]
        target: Option<String>,
        /// Print JSON with a stable shape.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments passed through untouched (the tmux entry points parse their own).
#[derive(Args)]
struct RawArgs {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

#[derive(Args)]
struct AttachArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
    /// Let programs in the session set this terminal's clipboard (OSC 52). Terminal queries
    /// (cursor position, device attributes, title reports) are never passed on.
    #[arg(long)]
    allow_clipboard: bool,
}

#[derive(Args)]
struct TargetArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct McpArgs {
    /// The tool groups to offer, comma-separated: sessions, context, snapshots, agents, bus,
    /// tasks, or all. Default: `[mcp] tools` of the configuration file, else
    /// sessions,context,snapshots.
    #[arg(long, value_name = "GROUPS")]
    tools: Option<String>,
}

#[derive(Args)]
struct ParseArgs {
    /// The command line that produced the output (helps recognise its format).
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// Most tokens of the compact view (default 1500).
    #[arg(long, value_name = "TOKENS")]
    budget: Option<usize>,
    /// Print the parsed structure and the compact view as JSON.
    #[arg(long)]
    json: bool,
    /// Longest input analyzed whole (bytes, default 128 MiB). A longer one is analyzed as its
    /// first and last quarter of this, with every line between that names a problem: memory
    /// stays bounded at any input size.
    #[arg(long, value_name = "BYTES", default_value_t = 128 << 20, value_parser = clap::value_parser!(u64).range(4096..))]
    max_bytes: u64,
}

#[derive(Args)]
struct SendArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
    /// Send every argument as literal text, not key names.
    #[arg(short = 'l')]
    literal: bool,
    /// Send the text as a bracketed paste when the program supports it.
    #[arg(long)]
    paste: bool,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
    #[arg(required = true, allow_hyphen_values = true, value_name = "KEYS")]
    keys: Vec<String>,
}

#[derive(Args)]
struct ReadArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
    /// First log offset wanted (default: the oldest kept).
    #[arg(long, value_name = "OFFSET")]
    since: Option<u64>,
    /// At most this many bytes (default 1 MiB).
    #[arg(long, value_name = "N")]
    max_bytes: Option<usize>,
    /// Keep escape sequences.
    #[arg(long)]
    raw: bool,
    /// Keep printing the session's output as it comes, until the session ends (exit 0) or
    /// Ctrl-C (exit 130).
    #[arg(short = 'f', long, conflicts_with_all = ["json", "max_bytes"])]
    follow: bool,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CaptureArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
    /// Include this many lines of scrollback above the screen.
    #[arg(long, value_name = "LINES", default_value_t = 0)]
    scrollback: usize,
    /// Keep colours and attributes as escape sequences.
    #[arg(long)]
    ansi: bool,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("condition").required(true).multiple(false)))]
struct WaitArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
    /// A regular expression to find in the output since the last input.
    #[arg(long = "for", value_name = "REGEX", group = "condition")]
    regex: Option<String>,
    /// This long without output (500ms, 2s; a bare number is milliseconds).
    #[arg(long, value_name = "DURATION", group = "condition", value_parser = duration::ms_flag)]
    idle: Option<duration::Millis>,
    /// The shell's prompt is back after the last input.
    #[arg(long, group = "condition")]
    prompt: bool,
    /// Give up after DURATION (500ms, 30s, 2m; a bare number is seconds; default 30s).
    #[arg(long, value_name = "DURATION", value_parser = duration::secs_flag)]
    timeout: Option<duration::Millis>,
    /// Look for the regex from this log offset instead of the last input.
    #[arg(long, value_name = "OFFSET")]
    since: Option<u64>,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ResizeArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: String,
    #[arg(value_name = "COLSxROWS")]
    size: String,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on, IP:PORT (port 0 picks a free one). Default: `[http] listen` of
    /// config.toml, else 127.0.0.1:7717.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Allow a non-loopback address: anyone who reaches it with the token controls every session.
    #[arg(long)]
    allow_remote: bool,
    /// Also serve GET /metrics alone, without a token, on this IP:PORT (for a Prometheus
    /// scraper on loopback; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StatsArgs {
    /// Print the figures in the Prometheus text format (what GET /metrics serves).
    #[arg(long, conflicts_with = "json")]
    prometheus: bool,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DaemonAction {
    /// Start the daemon if it is not running.
    Start(JsonFlag),
    /// Stop the daemon and every session.
    Stop(JsonFlag),
    /// Show the daemon's pid, socket, uptime and session count.
    Status(JsonFlag),
    /// Replace the daemon's binary under running sessions: the daemon hands every session to
    /// a newly started one; programs keep running with their pids, terminals and scrollback
    /// (see docs/upgrade.md).
    Upgrade(upgrade::UpgradeArgs),
    /// Reap the programs a daemon handed over (what the old daemon becomes after an upgrade).
    #[command(hide = true)]
    Reap {
        /// The socket the new daemon reads exit statuses from.
        #[arg(long)]
        report_fd: i32,
        /// The programs' pids.
        #[arg(long, value_delimiter = ',')]
        pids: Vec<i32>,
    },
    /// Run the daemon in the foreground.
    #[command(hide = true)]
    Run {
        /// Start a session of its own (no controlling terminal), print "ready" on stdout once
        /// listening, then detach stdout and stderr: how clients start the daemon.
        #[arg(long)]
        notify_ready: bool,
        /// Also serve the HTTP API on this address (as `ai-session serve --listen`).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Allow a non-loopback --http address.
        #[arg(long, requires = "http")]
        allow_remote: bool,
        /// Also serve GET /metrics without a token on this address (as `serve --metrics-listen`).
        #[arg(long, value_name = "ADDR", requires = "http")]
        metrics_listen: Option<String>,
        /// Encrypt the session store at rest; the passphrase comes from AI_SESSION_PASSPHRASE
        /// (which alone is enough: a store opened with it is encrypted from then on).
        #[arg(long)]
        encrypt: bool,
        /// Take over the sessions of the daemon being upgraded, sent over this descriptor
        /// (how `daemon upgrade` starts the new daemon).
        #[arg(long, value_name = "FD", hide = true)]
        adopt: Option<i32>,
        /// Join the cluster whose NATS server (with JetStream) is at URL, nats://HOST:PORT
        /// (overrides [cluster] url in config.toml; see docs/cluster.md).
        #[arg(long, value_name = "URL")]
        cluster: Option<String>,
        /// This daemon's node name in the cluster (default: [cluster] node, else the host name).
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// The NATS credentials file (.creds: user JWT and nkey seed) to join with (overrides
        /// [cluster] creds_file).
        #[arg(long, value_name = "FILE")]
        creds: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = tmux::intercept(&argv) {
        return code;
    }
    let (cli, json) = match parse_args(&argv) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let sel = Selector {
        label: cli.daemon.label,
        socket: cli.daemon.socket,
    };
    if let Command::Daemon {
        action: DaemonAction::Reap { report_fd, pids },
    } = &cli.command
    {
        return upgrade::reap(*report_fd, pids);
    }
    if let Command::Daemon {
        action:
            DaemonAction::Run {
                notify_ready,
                http,
                allow_remote,
                metrics_listen,
                encrypt,
                adopt,
                cluster,
                node,
                creds,
            },
    } = cli.command
    {
        if encrypt && std::env::var_os("AI_SESSION_PASSPHRASE").is_none_or(|p| p.is_empty()) {
            errln!("error: --encrypt needs the passphrase in AI_SESSION_PASSPHRASE");
            return ExitCode::from(1);
        }
        let http = http.map(|listen| ai_session_protocol::methods::ServeParams {
            listen: Some(listen),
            allow_remote,
            metrics_listen,
        });
        let cluster = match cluster::join(&sel, cluster, node, creds) {
            Ok(c) => c,
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        return commands::run_daemon(&sel, notify_ready, http, adopt, cluster);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return error::report(
                &CliError::Local(format!("cannot start the async runtime: {e}")),
                json,
                &sel,
            );
        }
    };
    match rt.block_on(commands::run(&sel, cli.command)) {
        Ok(code) => code,
        Err(e) => error::report(&e, json, &sel),
    }
}

/// Parses the command line; `--help` and `--version` print and exit 0, bad usage exits 125
/// (with a JSON error on stdout when `--json` was among the words). Also says whether the
/// command asked for `--json`.
fn parse_args(argv: &[std::ffi::OsString]) -> Result<(Cli, bool), ExitCode> {
    use clap::{CommandFactory, FromArgMatches};
    if let Some(parsed) = hot::parse(argv) {
        return Ok(parsed);
    }
    let parsed = Cli::command()
        .try_get_matches_from(argv)
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, wants_json(&m))));
    parsed.map_err(|e| {
        use clap::error::ErrorKind as K;
        if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
            // A closed pipe (`--help | head -1`) is no failure of the help.
            e.print().ok();
            return ExitCode::SUCCESS;
        }
        if argv.iter().any(|a| a == "--json") {
            let text = e.to_string();
            let (what, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
            let message = what
                .trim_start_matches("error: ")
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let usage = rest
                .lines()
                .find_map(|l| l.strip_prefix("Usage: "))
                .map(|u| format!("usage: {u}; "))
                .unwrap_or_default();
            let v = serde_json::json!({
                "kind": "usage",
                "message": message,
                "hint": format!("{usage}see `ai-session --help`, or `ai-session COMMAND --help` for one command"),
                "exit_code": error::COULD_NOT_RUN,
            });
            outln!("{v:#}");
        } else {
            e.print().ok();
        }
        ExitCode::from(error::COULD_NOT_RUN)
    })
}

/// True when the subcommand that runs was given `--json`.
fn wants_json(m: &clap::ArgMatches) -> bool {
    let mut m = m;
    loop {
        let here = m.ids().any(|id| id.as_str() == "json")
            && matches!(m.try_get_one::<bool>("json"), Ok(Some(true)));
        if here {
            return true;
        }
        match m.subcommand() {
            Some((_, sub)) => m = sub,
            None => return false,
        }
    }
}
