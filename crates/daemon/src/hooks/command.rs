//! A `[[hooks]]` entry with `command`: a program run once per event, the event as JSON on its
//! standard input. It runs in a process group of its own, with the daemon's environment minus
//! the daemon's secrets, plus `AI_SESSION_EVENT`; past its timeout the whole group is killed.
//! What it prints goes to the daemon's log; a non-zero exit or a timeout is a failed delivery.

use std::process::Stdio;
use std::time::Duration;

use ai_session_core::integration::IntegrationError;
use ai_session_protocol::config::HookConfig;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// How much of a hook's output the log keeps, per stream.
const LOGGED: usize = 2048;

pub(crate) struct CommandHook {
    name: String,
    argv: Vec<String>,
    timeout: Duration,
}

impl CommandHook {
    pub(crate) fn new(hook: &HookConfig, argv: Vec<String>) -> Self {
        CommandHook {
            name: hook.name.clone(),
            argv,
            timeout: Duration::from_secs_f64(hook.timeout_secs),
        }
    }

    async fn run(&self, kind: &str, input: &[u8]) -> Result<(), IntegrationError> {
        let fail = |what: String| IntegrationError::Failed(format!("{}: {what}", self.argv[0]));
        let mut env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        ai_session_core::strip_secrets(&mut env);
        let mut child = tokio::process::Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .env_clear()
            .envs(env)
            .env("AI_SESSION_EVENT", kind)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        let pid = child.id();
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is not an error: it may only need the
            // event's name (`AI_SESSION_EVENT`).
            let write = async {
                stdin.write_all(input).await.ok();
                stdin.shutdown().await.ok();
            };
            if tokio::time::timeout(self.timeout, write).await.is_err() {
                kill_group(pid);
                return Err(fail(format!(
                    "did not read its input within {:.1}s; killed",
                    self.timeout.as_secs_f64()
                )));
            }
        }
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Err(_) => {
                kill_group(pid);
                Err(fail(format!(
                    "still running after {:.1}s (timeout_secs); killed",
                    self.timeout.as_secs_f64()
                )))
            }
            Ok(Err(e)) => Err(fail(format!("cannot wait for it: {e}"))),
            Ok(Ok(out)) => {
                let stdout = clip(&out.stdout);
                let stderr = clip(&out.stderr);
                if out.status.success() {
                    tracing::info!(hook = %self.name, event = kind, %stdout, %stderr, "hook ran");
                    Ok(())
                } else {
                    tracing::warn!(hook = %self.name, event = kind, status = %out.status, %stdout, %stderr, "hook failed");
                    Err(fail(format!("{}; stderr: {}", out.status, stderr.trim())))
                }
            }
        }
    }
}

/// Kills the hook's process group (it leads one of its own), children included.
fn kill_group(pid: Option<u32>) {
    if let Some(pgid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL).ok();
    }
}

fn clip(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= LOGGED {
        return text.into_owned();
    }
    let mut end = LOGGED;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

#[async_trait::async_trait]
impl super::Deliver for CommandHook {
    async fn deliver(&self, kind: &str, envelope: Value) -> Result<(), IntegrationError> {
        self.run(kind, envelope.to_string().as_bytes()).await
    }
}
