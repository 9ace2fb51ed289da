//! Binding the socket (in a directory only its user can enter), holding the daemon lock,
//! accepting connections, and shutting down cleanly.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ai_session_core::paths::Paths;
use ai_session_core::{ManagerConfig, SessionManager};
use tokio::net::UnixListener;
use tokio::sync::Notify;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another daemon holds the lock for this label or socket (named here); talk to it
    /// instead. A client that raced another to start the daemon just connects.
    #[error("another daemon is already running for {}", .0.display())]
    AlreadyRunning(PathBuf),
    /// A file or directory of the daemon's state could not be created, locked or bound (a
    /// permission, a full disk, a socket path too long); the path says which.
    #[error("cannot set up {}: {source}", .path.display())]
    Setup {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The session manager could not start.
    #[error(transparent)]
    Session(#[from] ai_session_core::Error),
    /// `--http` was given and the HTTP server could not start (address taken, not loopback).
    #[error("cannot start the HTTP server: {0}")]
    Http(ai_session_protocol::RpcError),
    /// The session store cannot be opened: a wrong or missing passphrase, or a store setting
    /// out of range. Fix what the message names and start again.
    #[error(transparent)]
    Store(#[from] crate::persist::StoreOpenError),
    /// The configuration file (`$AI_SESSION_HOME/config.toml`) cannot be read or has a bad
    /// key: the message names the file, the key and its line.
    #[error("{}", one_line(.0))]
    Config(#[from] ai_session_protocol::config::ConfigError),
    /// Spans cannot be exported as configured (`[telemetry]`, `OTEL_EXPORTER_OTLP_*`).
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::SetupError),
    /// `--cluster` was given and the daemon could not join (or start serving) the cluster: the
    /// message says what failed (the server, JetStream, the node name).
    #[error(transparent)]
    Cluster(#[from] ai_session_cluster::ClusterError),
    /// A `[[hooks]]` entry cannot start (the message names it).
    #[error("cannot start the hooks: {0}")]
    Hooks(String),
}

/// State shared by every connection.
pub struct Daemon {
    pub manager: SessionManager,
    /// Agents, the message bus and the task distributor (`agent.*`, `bus.*`, `task.*`).
    pub coord: ai_session_coord::Coordinator,
    pub paths: Paths,
    pub started: Instant,
    pub shutdown: Notify,
    /// Cancelled when the daemon stops: connections answer new requests `shutting_down`.
    pub(crate) cancel: tokio_util::sync::CancellationToken,
    /// Every request in flight, waited for (against a deadline) at shutdown.
    pub(crate) tasks: tokio_util::task::TaskTracker,
    /// The HTTP server (`daemon.serve`), when it runs.
    pub(crate) http: crate::http::Http,
    /// Capabilities, API tokens and the audit log.
    pub(crate) access: crate::access::Access,
    /// Every session's token-aware context, on its own thread.
    pub(crate) contexts: crate::context::Contexts,
    /// The session store: checkpoints, resurrection, snapshots.
    pub(crate) persist: crate::persist::Persist,
    /// Counters and histograms of what the daemon did (`daemon.stats`, `/metrics`).
    pub(crate) telemetry: crate::telemetry::Telemetry,
    /// `daemon upgrade`: its phase, and what is handed over.
    pub(crate) upgrade: crate::upgrade::Upgrade,
    /// Membership of a cluster of daemons (`--cluster`); `None` for a daemon on its own.
    pub(crate) cluster: Option<ai_session_cluster::Cluster>,
    /// The configuration file as read at start (`[exec]` defaults, `[http] listen`; `[session]`
    /// went into the manager's configuration).
    pub(crate) config: ai_session_protocol::config::Config,
    /// Where the configuration was looked for, and whether a file was there.
    pub(crate) config_file: (PathBuf, bool),
    /// `[[hooks]]` and the exec history reports are built from.
    pub(crate) hooks: crate::hooks::Hooks,
    /// The agents that leave with their connection (registered without `keep`).
    pub(crate) tethers: crate::service::Tethers,
}

fn setup_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |source| ServeError::Setup {
        path: path.to_owned(),
        source,
    }
}

/// Runs the daemon until `daemon.stop`, SIGTERM or SIGINT. `ready` is called once the socket
/// accepts connections.
pub async fn serve(paths: Paths, ready: impl FnOnce()) -> Result<(), ServeError> {
    serve_with(paths, None, ready).await
}

/// [`serve`], with the HTTP server started before `ready` when `http` is given.
pub async fn serve_with(
    paths: Paths,
    http: Option<ai_session_protocol::methods::ServeParams>,
    ready: impl FnOnce(),
) -> Result<(), ServeError> {
    serve_from(paths, http, None, None, ready).await
}

/// [`serve_with`], joining the cluster `cluster` names before `ready` when it is given.
pub async fn serve_in(
    paths: Paths,
    http: Option<ai_session_protocol::methods::ServeParams>,
    cluster: Option<crate::cluster::Join>,
    ready: impl FnOnce(),
) -> Result<(), ServeError> {
    serve_from(paths, http, None, cluster, ready).await
}

/// [`serve`] for a daemon started by `daemon upgrade` (`daemon run --adopt FD`): the socket,
/// the lock and every session come from the old daemon over `adopt` (see `upgrade`); it joins
/// the cluster `cluster` names, as the daemon it replaces had.
pub async fn serve_adopting(
    paths: Paths,
    adopt: rustix::fd::OwnedFd,
    cluster: Option<crate::cluster::Join>,
    ready: impl FnOnce(),
) -> Result<(), ServeError> {
    serve_from(paths, None, Some(adopt), cluster, ready).await
}

/// Takes the daemon lock and binds the socket: a daemon starting on its own.
fn bind(paths: &Paths) -> Result<(std::fs::File, UnixListener), ServeError> {
    let lock_path = paths.data.join("daemon.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(setup_err(&lock_path))?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(ServeError::AlreadyRunning(paths.socket.clone()));
    }
    // Holding the lock, any socket file left here belongs to a daemon that died.
    if paths.socket.exists() {
        std::fs::remove_file(&paths.socket).map_err(setup_err(&paths.socket))?;
    }
    let listener = UnixListener::bind(&paths.socket).map_err(setup_err(&paths.socket))?;
    std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(setup_err(&paths.socket))?;
    Ok((lock, listener))
}

/// What the old daemon handed over, waiting to be adopted.
struct HandedOver {
    verdict: crate::upgrade::Verdict,
    old_pid: u32,
    sessions: Vec<ai_session_core::handover::Handover>,
    reapers: Vec<std::os::unix::net::UnixStream>,
}

/// Receives the lock, the socket and the sessions from the daemon being upgraded. Any
/// failure from here to the confirmation closes the channel, and the old daemon takes its
/// sessions back.
async fn take_over(
    paths: &Paths,
    adopt: rustix::fd::OwnedFd,
) -> Result<(std::fs::File, UnixListener, HandedOver), ServeError> {
    let received = tokio::task::spawn_blocking(move || crate::upgrade::receive(adopt))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    let (verdict, incoming) = received.map_err(setup_err(&paths.socket))?;
    let crate::upgrade::Incoming {
        old_pid,
        listener,
        lock,
        sessions,
        reapers,
    } = incoming;
    let listener = listener
        .set_nonblocking(true)
        .and_then(|()| UnixListener::from_std(listener))
        .map_err(setup_err(&paths.socket))?;
    let handed = HandedOver {
        verdict,
        old_pid,
        sessions,
        reapers,
    };
    Ok((lock, listener, handed))
}

async fn serve_from(
    paths: Paths,
    http: Option<ai_session_protocol::methods::ServeParams>,
    adopt: Option<rustix::fd::OwnedFd>,
    cluster: Option<crate::cluster::Join>,
    ready: impl FnOnce(),
) -> Result<(), ServeError> {
    paths.create_dirs().map_err(setup_err(&paths.data))?;
    // Before anything else: a bad file refuses the start, naming the key and its line.
    let config_path = ai_session_protocol::config::Config::path(&paths.home);
    let config = ai_session_protocol::config::Config::load_from(&config_path)?;
    let config_file = (config_path.clone(), config_path.is_file());
    // Signals next: SIGTERM and SIGINT stop the daemon cleanly, and SIGHUP
    // (a daemon has no terminal to lose; a stray hangup must not kill every session) is logged
    // and ignored. Installed handlers, unlike ignored signals, do not pass to the shells.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(setup_err(&paths.socket))?;
    let mut int = signal(SignalKind::interrupt()).map_err(setup_err(&paths.socket))?;
    let mut hup = signal(SignalKind::hangup()).map_err(setup_err(&paths.socket))?;
    let (lock, listener, handed) = match adopt {
        None => {
            let (lock, listener) = bind(&paths)?;
            (lock, listener, None)
        }
        Some(fd) => {
            let (lock, listener, handed) = take_over(&paths, fd).await?;
            (lock, listener, Some(handed))
        }
    };
    let mut manager_config = manager_config(&paths, &config.session);
    manager_config.log_key = crate::persist::log_key().map_err(setup_err(&paths.data))?;
    let manager = SessionManager::new(manager_config)?;
    let access = crate::access::Access::open(&paths.data, paths.audit_log())
        .map_err(setup_err(&paths.data))?;
    let persist = crate::persist::Persist::open(&paths.data)?;
    let contexts = crate::context::Contexts::start().map_err(setup_err(&paths.data))?;
    let first_agent_id = access.first_agent_id();
    let coord = ai_session_coord::Coordinator::new(ai_session_coord::CoordConfig {
        first_agent_id,
        ..ai_session_coord::CoordConfig::default()
    });
    let telemetry = crate::telemetry::Telemetry::from_env()
        .with_alerts(&config.alerts)
        .with_decisions(persist.store(), &coord)
        .with_tracing(&config.telemetry, tokio::runtime::Handle::current())?;
    use rustix::fd::AsFd;
    let upgrade = crate::upgrade::Upgrade::new(listener.as_fd(), lock.as_fd())
        .map_err(setup_err(&paths.socket))?;
    let cluster = match &cluster {
        Some(join) => Some(crate::cluster::join(join).await?),
        None => None,
    };
    let hooks = crate::hooks::Hooks::new(manager.clone());
    let daemon = Arc::new(Daemon {
        contexts,
        persist,
        access,
        manager,
        coord,
        paths: paths.clone(),
        started: Instant::now(),
        shutdown: Notify::new(),
        cancel: tokio_util::sync::CancellationToken::new(),
        tasks: tokio_util::task::TaskTracker::new(),
        http: crate::http::Http::default(),
        telemetry,
        upgrade,
        cluster,
        config,
        config_file,
        hooks,
        tethers: crate::service::Tethers::default(),
    });
    raise_fd_limit();
    if let Some(handed) = handed {
        adopt_sessions(&daemon, handed)?;
    }
    tracing::info!(socket = %paths.socket.display(), pid = std::process::id(), "daemon listening");
    daemon
        .hooks
        .start(&daemon.config.hooks, &daemon.coord)
        .await
        .map_err(ServeError::Hooks)?;
    tokio::spawn(announce_sessions(daemon.clone()));
    tokio::spawn(sync_audit(Arc::downgrade(&daemon)));
    crate::telemetry::alerts::start(&daemon);
    crate::persist::resurrect(&daemon).await;
    crate::persist::start(&daemon);
    // Session cgroups of daemons killed before they removed them (off the start's path: the
    // host probe spawns a few processes).
    tokio::task::spawn_blocking(|| {
        let cgroups = &ai_session_core::sandbox::capabilities().cgroup;
        let removed = ai_session_sandbox::cgroup::sweep(cgroups);
        if removed > 0 {
            tracing::info!("removed {removed} session cgroups left by daemons no longer running");
        }
    });
    if let Err(e) = crate::cluster::start(&daemon).await {
        crate::cluster::leave(&daemon).await;
        return Err(e.into());
    }
    if let Some(p) = http {
        crate::http::start(&daemon, p)
            .await
            .map_err(ServeError::Http)?;
    }
    ready();
    accept(&daemon, &listener, &mut term, &mut int, &mut hup).await;
    if let Some(reap) = daemon.upgrade.take_reap() {
        // The new daemon holds the socket and the lock; closing (never unlocking: the lock is
        // one open file, shared with it) leaves the reaper holding neither.
        drop(listener);
        drop(lock);
        daemon.upgrade.release();
        crate::upgrade::become_reaper(finish_handover(&daemon, reap).await);
    }
    tracing::info!("shutting down");
    drop(listener);
    // No new requests; the ones in flight finish, for a bounded time.
    daemon.cancel.cancel();
    daemon.tasks.close();
    if tokio::time::timeout(DRAIN, daemon.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} requests still running after {}s; stopping anyway",
            daemon.tasks.len(),
            DRAIN.as_secs()
        );
    }
    daemon.http.stop().await;
    crate::cluster::leave(&daemon).await;
    if let Err(e) = std::fs::remove_file(&paths.socket) {
        tracing::warn!("cannot remove the socket: {e}");
    }
    daemon.persist.stop(&daemon.manager, &daemon.contexts).await;
    daemon.manager.shutdown().await;
    daemon.access.sync_audit();
    // The last spans go out (bounded by the export timeout when the collector is down); the
    // export thread waits for the runtime, so this must not block a runtime thread.
    let flushing = daemon.clone();
    let flushed = tokio::task::spawn_blocking(move || flushing.telemetry.flush());
    if tokio::time::timeout(FLUSH, flushed).await.is_err() {
        tracing::warn!("the span collector did not take the last spans within {FLUSH:?}");
    }
    release(lock);
    Ok(())
}

/// Lets go of the daemon lock before any connection closes. Closing this descriptor is not
/// enough: `upgrade` keeps a duplicate of it (to hand over), and a flock belongs to the open
/// file, so it would last until the daemon's last reference is dropped with the runtime,
/// after the connections close. `daemon stop` takes its connection closing as "the lock is
/// free", and the start right after it was refused. Unlocking releases it for every
/// duplicate at once.
fn release(lock: std::fs::File) {
    if let Err(e) = rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock) {
        tracing::warn!("cannot release the daemon lock: {e}; it goes with the process");
    }
}

/// A configuration error on one line (a client starting the daemon shows the first line of
/// what it printed): the TOML parser's message without its drawing of the line.
fn one_line(e: &ai_session_protocol::config::ConfigError) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
        .collect::<Vec<_>>()
        .join(": ")
}

/// How long the last spans get to reach the collector at shutdown.
const FLUSH: std::time::Duration = std::time::Duration::from_secs(2);
/// Adopts what the old daemon handed over and confirms it; on failure says so, so the old
/// daemon takes its sessions back, and stops.
fn adopt_sessions(daemon: &Arc<Daemon>, handed: HandedOver) -> Result<(), ServeError> {
    let HandedOver {
        verdict,
        old_pid,
        sessions,
        reapers,
    } = handed;
    let names = match daemon.manager.adopt_all(sessions) {
        Ok(names) => names,
        Err(e) => {
            verdict.failed(e.to_string());
            return Err(e.into());
        }
    };
    for sock in reapers {
        daemon.upgrade.add_reaper(sock, &daemon.manager);
    }
    let count = names.len();
    let report = verdict
        .adopted(names)
        .map_err(setup_err(&daemon.paths.socket))?;
    daemon.upgrade.add_reaper(report, &daemon.manager);
    use ai_session_sandbox::audit::{Actor, Record};
    daemon.access.record(Record::new(
        Actor::Daemon,
        "daemon.upgrade",
        format!("took over {count} session(s) from daemon pid {old_pid}"),
        "ok",
    ));
    tracing::info!(old_pid, sessions = count, "took over from the old daemon");
    Ok(())
}

/// The old daemon once the new one serves: requests still in flight are answered
/// `shutting_down` by their connections (cancelled), and the process becomes the reaper once
/// its clients have gone (the one that asked for the upgrade reads its answer first), or
/// after a bounded wait.
async fn finish_handover(daemon: &Daemon, reap: crate::upgrade::Reap) -> crate::upgrade::Reap {
    daemon.tasks.close();
    if tokio::time::timeout(DRAIN, daemon.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("requests still running at the handover's end");
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
    while daemon.telemetry.open_connections() > 0 && Instant::now() < deadline {
        tick.tick().await;
    }
    daemon.http.stop().await;
    reap
}

/// Accepts connections until `daemon.stop`, a signal, or a handover; pauses while an upgrade
/// hands over (clients wait in the backlog).
async fn accept(
    daemon: &Arc<Daemon>,
    listener: &UnixListener,
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
    hup: &mut tokio::signal::unix::Signal,
) {
    use crate::upgrade::Phase;
    let uid = rustix::process::geteuid().as_raw();
    let mut spare = Spare::open();
    let mut phase = daemon.upgrade.phase();
    loop {
        let serving = *phase.borrow_and_update() == Phase::Serving;
        tokio::select! {
            accepted = listener.accept(), if serving => match accepted {
                Ok((stream, _)) => match crate::peer::check(&stream, uid) {
                    Ok(()) => {
                        tokio::spawn(crate::connection::run(stream, daemon.clone()));
                    }
                    Err(refusal) => {
                        tokio::spawn(refuse(stream, daemon.clone(), refusal));
                    }
                },
                Err(e) if is_fd_exhaustion(&e) => {
                    // Out of descriptors: the spare one lets us take the waiting client and
                    // tell it why, instead of leaving it hanging; logged once a second.
                    spare.refuse_one(listener, daemon).await;
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::HandedOver {
                    return;
                }
            }
            () = daemon.shutdown.notified() => return,
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => tracing::warn!("SIGHUP received and ignored (`daemon stop` stops the daemon)"),
        }
    }
}

/// How long requests in flight at shutdown get to finish.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
    )
}

/// A descriptor kept in reserve for the moment the daemon runs out: freed, it lets the daemon
/// accept the waiting client and answer it with an error before closing it.
struct Spare {
    fd: Option<std::fs::File>,
    logged: Option<Instant>,
    refused: u64,
}

impl Spare {
    fn open() -> Self {
        Spare {
            fd: std::fs::File::open("/dev/null").ok(),
            logged: None,
            refused: 0,
        }
    }

    async fn refuse_one(&mut self, listener: &UnixListener, daemon: &Daemon) {
        self.fd = None;
        if let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let error = ai_session_protocol::RpcError::new(
                ai_session_protocol::ErrorKind::Overloaded,
                "the daemon is out of file descriptors",
            )
            .with_hint(
                "close sessions or clients, or raise the daemon's open-file limit (ulimit -n)",
            );
            let resp = ai_session_protocol::Response::err(serde_json::Value::Null, error);
            let line = crate::connection::encode(&resp);
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                stream.write_all(line.as_bytes()),
            )
            .await;
            self.refused += 1;
        }
        self.fd = std::fs::File::open("/dev/null").ok();
        if self
            .logged
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
        {
            tracing::warn!(
                sessions = daemon.manager.len(),
                "out of file descriptors: {} clients refused so far",
                self.refused
            );
            self.logged = Some(Instant::now());
        }
        if self.fd.is_none() {
            // Not even the spare came back: wait for descriptors to free up.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The session manager's settings: every sandboxed session gets the daemon's state covered:
/// `run/` and `servers/` under `$AI_SESSION_HOME` (every label's socket and state) and the
/// socket itself wherever `-S` put it.
fn manager_config(
    paths: &Paths,
    session: &ai_session_protocol::config::SessionConfig,
) -> ManagerConfig {
    let mut config = ManagerConfig::new(&paths.data);
    config.session_env = session.env.clone();
    config.no_pager = session.no_pager;
    let servers = paths.home.join("servers");
    config.hidden.dirs = vec![paths.home.join("run"), servers.clone()];
    if !paths.data.starts_with(&servers) {
        config.hidden.dirs.push(paths.data.clone());
    }
    // Where unconfined shells leave what they export, which the next daemon's shells source:
    // a sandboxed program must not write there (under `/dev/shm` it has its own already).
    let exported = ai_session_core::shell::exported::Place::for_data(&paths.data);
    let dir = exported.dir();
    if !dir.starts_with("/dev/shm") && !dir.starts_with(&servers) && !dir.starts_with(&paths.data) {
        config.hidden.dirs.push(dir.to_owned());
    }
    config.hidden.files = vec![paths.socket.clone()];
    config
}

/// Answers a refused connection with one error line (so the client can say why), records
/// the attempt in the audit log, and closes it.
async fn refuse(
    mut stream: tokio::net::UnixStream,
    daemon: Arc<Daemon>,
    refusal: crate::peer::Refusal,
) {
    use tokio::io::AsyncWriteExt;
    tracing::warn!("refused a connection: {}", refusal.0);
    daemon.access.record(ai_session_sandbox::audit::Record::new(
        ai_session_sandbox::audit::Actor::Daemon,
        "connection.refused",
        refusal.0.clone(),
        "denied",
    ));
    let error = ai_session_protocol::RpcError::new(
        ai_session_protocol::ErrorKind::PermissionDenied,
        format!("connection refused: {}", refusal.0),
    );
    // Answer the client's first request (its `hello`) by its id, so any JSON-RPC client
    // shows the reason instead of "connection closed". Bounded in time and size.
    let answer = async {
        let id = first_request_id(&mut stream).await;
        let response = ai_session_protocol::Response::err(id, error);
        let mut line = serde_json::to_vec(&response).unwrap_or_default();
        line.push(b'\n');
        stream.write_all(&line).await
    };
    if tokio::time::timeout(std::time::Duration::from_secs(2), answer)
        .await
        .is_err()
    {
        tracing::debug!("a refused client sent no request in time");
    }
}

/// The id of the first request on `stream` (`null` when it is not a readable request).
async fn first_request_id(stream: &mut tokio::net::UnixStream) -> serde_json::Value {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut reader = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(stream, 64 * 1024));
    if reader.read_until(b'\n', &mut line).await.is_err() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice::<serde_json::Value>(&line)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// Makes the audit log durable once a second (appends are not fsynced one by one), off the
/// runtime's workers.
async fn sync_audit(daemon: std::sync::Weak<Daemon>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(d) = daemon.upgrade() else {
            return;
        };
        if tokio::task::spawn_blocking(move || d.access.sync_audit())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Each session holds a PTY master and a log file: lift the soft descriptor limit to the hard
/// one so thousands of sessions fit.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
    }
}

/// Relays every session's state changes to the coordinator's system topic, where agents and
/// `events.subscribe` clients see them.
async fn announce_sessions(daemon: Arc<Daemon>) {
    let mut rx = daemon.manager.state_events();
    loop {
        match rx.recv().await {
            Ok(change) => {
                if let Some(reason) = &change.stop_reason {
                    // A security event: a sandboxed session hit one of its resource limits.
                    use ai_session_sandbox::audit::{Actor, Record};
                    daemon.access.record(Record {
                        session: Some(change.session.clone()),
                        ..Record::new(Actor::Daemon, "limit_hit", reason.clone(), "stopped")
                    });
                }
                let detail = serde_json::json!({ "exit_code": change.exit_code });
                daemon
                    .coord
                    .publish_session_state(&change.session, change.state, detail);
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("{n} session state changes were not announced (listener behind)");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
