//! Starting the daemon on first use. One rule for every client: take the start lock
//! (`run/<label>.lock`), look again, run `ai-session daemon run --notify-ready`, and wait for
//! the `ready` line it prints once it listens.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;

use crate::{Error, Paths, Selector};

/// How long a freshly started daemon may take to say it is ready. It restores every persisted
/// session before that, so this is generous.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Starts the daemon unless another client did meanwhile, and connects to it. `program` is the
/// `ai-session` binary (the running executable when `None`).
pub(crate) async fn start(
    sel: &Selector,
    paths: &Paths,
    program: Option<&Path>,
) -> Result<UnixStream, Error> {
    paths.create_dirs()?;
    // One starter at a time: the others wait here, then find the daemon running.
    let lock = lock(paths).await?;
    if let Ok(stream) = UnixStream::connect(&paths.socket).await {
        return Ok(stream);
    }
    let program = match program {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()?,
    };
    spawn_daemon(sel, paths, &program).await?;
    let stream = UnixStream::connect(&paths.socket).await?;
    drop(lock);
    Ok(stream)
}

/// Takes the start lock; released when the file is dropped.
async fn lock(paths: &Paths) -> Result<std::fs::File, Error> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.start_lock())?;
    let locked = tokio::task::spawn_blocking(move || {
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map(|()| file)
            .map_err(std::io::Error::from)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(locked)
}

/// Runs `program daemon run --notify-ready` and waits until it says it is listening. The daemon
/// puts itself in a session of its own (no controlling terminal) and points its stdout and
/// stderr at /dev/null once ready, which closes our pipes.
async fn spawn_daemon(sel: &Selector, paths: &Paths, program: &Path) -> Result<(), Error> {
    let mut child = tokio::process::Command::new(program)
        .args(sel.args())
        .args(["daemon", "run", "--notify-ready"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the daemon's stdout is missing"))?;
    let mut line = String::new();
    let read =
        tokio::time::timeout(START_DEADLINE, BufReader::new(stdout).read_line(&mut line)).await;
    match read {
        Ok(Ok(_)) if line.trim() == "ready" => {
            // The daemon runs on its own from now on. Waiting for it in the background reaps it
            // should it exit while this process still runs (a long-lived `ai-session mcp`);
            // otherwise it is reparented when this process exits.
            tokio::spawn(async move {
                if let Err(e) = child.wait().await {
                    tracing::debug!("waiting for the daemon: {e}");
                }
            });
            Ok(())
        }
        Ok(_) => {
            let mut stderr = String::new();
            if let Some(err) = child.stderr.take() {
                let mut r = BufReader::new(err);
                // Best effort: the daemon's first error line, if it comes within a second.
                tokio::time::timeout(Duration::from_secs(1), r.read_line(&mut stderr))
                    .await
                    .ok();
            }
            Err(Error::StartFailed {
                stderr: stderr.trim().to_owned(),
            })
        }
        Err(_) => Err(Error::StartTimeout {
            secs: START_DEADLINE.as_secs(),
            log: paths.data.clone(),
        }),
    }
}
