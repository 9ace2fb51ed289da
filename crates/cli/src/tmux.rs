//! The tmux layer's entry points: the binary run as `tmux` (a symlink on `PATH`),
//! `ai-session tmux ARGS` and `ai-session migrate-tmux`. They take their arguments raw, before
//! the CLI's own parser: tmux's `-L`/`-S` and migrate-tmux's name a tmux server, not this
//! CLI's daemon label.

use std::ffi::OsString;
use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_tmux::migrate::{MigrateOptions, migrate};
use ai_session_tmux::server::Context;

/// Runs the command when it is one of the tmux entry points; `None` hands it to the CLI.
pub fn intercept(argv: &[OsString]) -> Option<ExitCode> {
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = args.first().map(String::as_str).unwrap_or("");
    let base = program.rsplit('/').next().unwrap_or(program);
    if base == "tmux" {
        return Some(status(ai_session_tmux::run(&args[1..])));
    }
    // `ai-session [-L NAME | -S SOCKET] tmux|migrate-tmux ...`
    let mut i = 1;
    let mut sel = Selector::default();
    while i + 1 < args.len() && matches!(args[i].as_str(), "-L" | "-S") {
        if args[i] == "-L" {
            sel.label = Some(args[i + 1].clone());
        } else {
            sel.socket = Some(args[i + 1].clone().into());
        }
        i += 2;
    }
    match args.get(i).map(String::as_str) {
        Some("tmux") => {
            let mut words = Vec::new();
            if let Some(l) = &sel.label {
                words.extend(["-L".to_owned(), l.clone()]);
            }
            if let Some(s) = &sel.socket {
                words.extend(["-S".to_owned(), s.display().to_string()]);
            }
            words.extend(args[i + 1..].iter().cloned());
            Some(status(ai_session_tmux::run(&words)))
        }
        Some("migrate-tmux") => Some(migrate_tmux(sel, &args[i + 1..])),
        _ => None,
    }
}

fn status(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

const MIGRATE_USAGE: &str = "usage: ai-session [-L NAME | -S SOCKET] migrate-tmux [-L TMUX-SOCKET-NAME | -S TMUX-SOCKET-PATH] [-t SESSION] [--kill] [--json]";

fn migrate_tmux(sel: Selector, args: &[String]) -> ExitCode {
    let mut opts = MigrateOptions::default();
    let mut json = false;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match (args[i].as_str(), value) {
            ("-L", Some(v)) => {
                opts.tmux_label = Some(v);
                i += 1;
            }
            ("-S", Some(v)) => {
                opts.tmux_socket = Some(v.into());
                i += 1;
            }
            ("-t", Some(v)) => {
                opts.session = Some(v);
                i += 1;
            }
            ("--kill", _) => opts.kill = true,
            ("--json", _) => json = true,
            ("-h" | "--help", _) => {
                outln!(
                    "Copy every pane of a running tmux server into ai-session sessions (named sess.W.P): directory, environment, size and scrollback with colours above a fresh prompt.\n\n{MIGRATE_USAGE}"
                );
                return ExitCode::SUCCESS;
            }
            _ => {
                errln!("error: {MIGRATE_USAGE}");
                return ExitCode::from(crate::error::COULD_NOT_RUN);
            }
        }
        i += 1;
    }
    let ctx = Context {
        sel,
        ..Context::default()
    };
    match migrate(&ctx, &opts) {
        Ok(done) => {
            if json {
                match serde_json::to_string_pretty(&serde_json::json!({ "panes": done })) {
                    Ok(text) => outln!("{text}"),
                    Err(e) => {
                        errln!("error: {e}");
                        return ExitCode::from(crate::error::COULD_NOT_RUN);
                    }
                }
            } else {
                for m in &done {
                    let running = m
                        .left_running
                        .as_deref()
                        .map(|c| format!(" ('{c}' was running in it and was not moved)"))
                        .unwrap_or_default();
                    let killed = if m.killed { ", tmux pane closed" } else { "" };
                    outln!(
                        "{} -> {} ({}x{}, {} lines of history, {}){running}{killed}",
                        m.tmux,
                        m.session,
                        m.cols,
                        m.rows,
                        m.scrollback_lines,
                        m.cwd
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(crate::error::COULD_NOT_RUN)
        }
    }
}
