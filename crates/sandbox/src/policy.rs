//! The session security policy: its TOML form, the built-in profiles and validation.
//!
//! A policy is data only; [`crate::Sandbox::prepare`] turns it into kernel objects.
//! Paths may use two placeholders, expanded by [`Policy::resolve`]: `{workspace}` (the
//! session's working directory) and `{home}` (the daemon user's home directory).
//!
//! Built-in profiles (see [`Policy::profile`]):
//!
//! | profile | read | write | network | notes |
//! |---|---|---|---|---|
//! | `default` | system dirs, toolchains in `{home}`, workspace | workspace, private `/tmp` | loopback | all syscall groups denied, moderate limits |
//! | `workspace-write` | as default | workspace, private `/tmp` | all | for agents that install packages |
//! | `read-only` | system dirs, toolchains, workspace | nothing persistent (private `/tmp` only) | none | |
//! | `no-network` | the whole file system | workspace, private `/tmp` | none | only the network is cut |
//!
//! Every built-in profile sets `allow_degrade = true`: on a host lacking a mechanism the
//! session still starts, and [`crate::Prepared::active`] says exactly what is enforced.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors from loading or validating a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read; the caller should show the path and OS error.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key or bad value; the message names it.
    #[error("invalid policy {origin}: {message}")]
    Parse {
        /// File path or profile name.
        origin: String,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// Neither an existing file nor a built-in profile name.
    #[error(
        "unknown policy {0:?}: not a file and not a built-in profile (default, read-only, workspace-write, no-network)"
    )]
    UnknownProfile(String),
    /// A path rule is unusable (relative, contains `..`, empty, NUL byte).
    #[error("bad path {path:?} in fs.{list}: {reason}")]
    BadPath {
        /// Which list (`read`, `write`, `execute`).
        list: &'static str,
        /// The path as written.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A limit is zero or otherwise nonsensical.
    #[error("bad limit limits.{name}: {reason}")]
    BadLimit {
        /// The limit's key.
        name: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// Network policy for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// No network at all: only AF_UNIX sockets, and an empty network namespace.
    None,
    /// A private network namespace with only `lo` up; AF_UNIX/AF_INET/AF_INET6 allowed.
    Loopback,
    /// The host network, unrestricted.
    All,
}

/// Groups of system calls the seccomp filter can deny (each denied call fails with EPERM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyscallGroup {
    /// `ptrace`, `process_vm_readv`, `process_vm_writev`.
    Ptrace,
    /// `io_uring_setup`, `io_uring_enter`, `io_uring_register` (bypasses seccomp checks).
    IoUring,
    /// `init_module`, `finit_module`, `delete_module`.
    KernelModules,
    /// `mount`, `umount2`, `pivot_root`, plus the new mount API (`fsopen`, `open_tree`, ...).
    Mount,
    /// `kexec_load`, `kexec_file_load`, `reboot`.
    Kexec,
    /// `bpf`.
    Bpf,
    /// `perf_event_open`.
    Perf,
    /// `add_key`, `request_key`, `keyctl`.
    Keyring,
    /// `userfaultfd` (a kernel-exploit primitive).
    Userfaultfd,
    /// `open_by_handle_at` (the classic container escape).
    OpenByHandle,
}

impl SyscallGroup {
    /// Every group, the default deny set.
    pub const ALL: [SyscallGroup; 10] = [
        SyscallGroup::Ptrace,
        SyscallGroup::IoUring,
        SyscallGroup::KernelModules,
        SyscallGroup::Mount,
        SyscallGroup::Kexec,
        SyscallGroup::Bpf,
        SyscallGroup::Perf,
        SyscallGroup::Keyring,
        SyscallGroup::Userfaultfd,
        SyscallGroup::OpenByHandle,
    ];
}

/// File-system rules; each list holds directory trees or single files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsPolicy {
    /// Trees that may be read (files and directory listings).
    #[serde(default)]
    pub read: Vec<String>,
    /// Trees that may be written (create, write, truncate, remove, rename); implies read.
    #[serde(default)]
    pub write: Vec<String>,
    /// Trees whose files may be executed (also needs read to be useful for scripts).
    #[serde(default)]
    pub execute: Vec<String>,
    /// Mount a fresh tmpfs on `/tmp` in a private mount namespace (writable, per session).
    #[serde(default = "yes")]
    pub private_tmp: bool,
    /// Size of the private `/tmp` and of the private `/dev/shm`, in bytes (the tmpfs `size`
    /// option; memory they use counts against the session's memory limit).
    #[serde(default = "default_tmp_bytes")]
    pub tmp_bytes: u64,
}

/// 1 GiB: room for builds that spill to `/tmp`, bounded so one session cannot fill memory.
pub const DEFAULT_TMP_BYTES: u64 = 1 << 30;

fn default_tmp_bytes() -> u64 {
    DEFAULT_TMP_BYTES
}

/// Which system calls are denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallPolicy {
    /// Groups denied with EPERM. Socket families are set by the network policy.
    #[serde(default = "all_groups")]
    pub deny: Vec<SyscallGroup>,
}

/// Resource limits; `None` leaves the inherited value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU time in seconds (RLIMIT_CPU: SIGXCPU at the limit, SIGKILL one second later).
    pub cpu_seconds: Option<u64>,
    /// Memory in bytes (cgroup memory.max where available, else RLIMIT_AS).
    pub memory_bytes: Option<u64>,
    /// Processes (cgroup pids.max where available, else RLIMIT_NPROC).
    pub processes: Option<u64>,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub open_files: Option<u64>,
    /// Largest file a process may write, in bytes (RLIMIT_FSIZE: SIGXFSZ past it).
    pub file_size_bytes: Option<u64>,
}

/// What the audit log records for sessions under this policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Record actions at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Record the text of each command sent to the session (else only that one was sent).
    #[serde(default = "yes")]
    pub log_commands: bool,
    /// Entries whose risk score is below this are not written (0 keeps everything).
    #[serde(default)]
    pub min_risk: u8,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            enabled: true,
            log_commands: true,
            min_risk: 0,
        }
    }
}

/// A session's security policy (the seed's `SecurityPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Start the session with fewer protections when the host lacks a mechanism.
    /// When false, [`crate::Sandbox::prepare`] fails instead.
    #[serde(default)]
    pub allow_degrade: bool,
    /// File-system rules (Landlock).
    pub fs: FsPolicy,
    /// Network policy (namespace + seccomp socket families + Landlock TCP rules).
    pub network: NetworkMode,
    /// A private pid namespace: the session sees, signals and traces only its own
    /// processes (needs a mount namespace for its `/proc`).
    #[serde(default = "yes")]
    pub private_pids: bool,
    /// Denied system calls (seccomp).
    #[serde(default = "default_syscalls")]
    pub syscalls: SyscallPolicy,
    /// Resource limits (rlimits and cgroups).
    #[serde(default)]
    pub limits: Limits,
    /// Audit settings.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Where a session started by an agent or a token under this policy may work (`new -c
    /// DIR` must be one of these or below one; `{home}` expands). Empty: anywhere but `/`, the
    /// home directory itself and the daemon's state, which are never an agent's workspace.
    #[serde(default)]
    pub workspaces: Vec<String>,
}

fn yes() -> bool {
    true
}

fn all_groups() -> Vec<SyscallGroup> {
    SyscallGroup::ALL.to_vec()
}

fn default_syscalls() -> SyscallPolicy {
    SyscallPolicy { deny: all_groups() }
}

/// System trees every built-in profile may read and execute.
const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt", "/proc", "/sys", "/run",
    "/var/lib", "/nix",
];
/// Toolchains under the home directory (never the home directory itself: it holds keys).
const HOME_TOOLCHAINS: &[&str] = &[
    "{home}/.cargo",
    "{home}/.rustup",
    "{home}/.pyenv",
    "{home}/.local/bin",
    "{home}/.local/lib",
    "{home}/.nvm",
];
/// Devices a shell needs; the rest of /dev stays closed.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/pts",
    "/dev/ptmx",
    "/dev/shm",
];

fn strings(items: &[&[&str]]) -> Vec<String> {
    items
        .iter()
        .flat_map(|list| list.iter().map(|s| (*s).to_string()))
        .collect()
}

/// The names accepted by [`Policy::profile`].
pub const PROFILES: [&str; 5] = [
    "default",
    "read-only",
    "workspace-write",
    "no-network",
    "isolated",
];

/// Every top-level directory of `/` but `/dev`, plus the devices a shell needs: the whole
/// machine except raw devices (a disk opened for writing would bypass every other rule).
fn root_but_devices() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir("/")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name() != "dev")
                .map(|e| format!("/{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.extend(strings(&[DEVICES]));
    dirs
}

impl Policy {
    /// A built-in profile by name, or `None`.
    pub fn profile(name: &str) -> Option<Policy> {
        let system_exec = strings(&[SYSTEM_READ, HOME_TOOLCHAINS]);
        let readable = strings(&[SYSTEM_READ, HOME_TOOLCHAINS, DEVICES, &["{workspace}"]]);
        let mut writable = strings(&[DEVICES, &["{workspace}"]]);
        let mut network = NetworkMode::Loopback;
        let mut read = readable;
        let mut execute = system_exec;
        execute.push("{workspace}".to_string());
        match name {
            "default" => {}
            "workspace-write" => network = NetworkMode::All,
            "read-only" => {
                writable = strings(&[DEVICES]);
                network = NetworkMode::None;
            }
            "no-network" => {
                read = vec!["/".to_string()];
                execute = vec!["/".to_string()];
                network = NetworkMode::None;
            }
            "isolated" => {
                // What agents' sessions get when nothing stricter is asked for or bound: the
                // machine as an unconfined session sees it, without the daemon (hidden by
                // the mount namespace), other sessions' processes (pid namespace) or raw
                // devices, and with the same syscall filter.
                read = root_but_devices();
                writable = read.clone();
                execute = vec!["/".to_string()];
                network = NetworkMode::All;
            }
            _ => return None,
        }
        Some(Policy {
            allow_degrade: true,
            fs: FsPolicy {
                read,
                write: writable,
                execute,
                private_tmp: name != "isolated",
                tmp_bytes: DEFAULT_TMP_BYTES,
            },
            network,
            private_pids: true,
            syscalls: default_syscalls(),
            limits: Limits {
                // Per process: a runaway loop is stopped after an hour of CPU; a shell that
                // lives for days uses seconds of its own.
                cpu_seconds: Some(3600),
                memory_bytes: Some(4 << 30),
                processes: Some(1024),
                open_files: Some(4096),
                file_size_bytes: Some(8 << 30),
            },
            audit: AuditSettings::default(),
            workspaces: Vec::new(),
        })
    }

    /// Parses a policy from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Loads `spec`: an existing file path, or else a built-in profile name.
    pub fn load(spec: &str) -> Result<Policy, PolicyError> {
        let path = Path::new(spec);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            return Policy::from_toml(&text, &path.display().to_string());
        }
        Policy::profile(spec).ok_or_else(|| PolicyError::UnknownProfile(spec.to_string()))
    }

    /// Serializes the policy to TOML (for `policy check` and for writing a starting file).
    pub fn to_toml(&self) -> Result<String, PolicyError> {
        toml::to_string_pretty(self).map_err(|e| PolicyError::Parse {
            origin: "serialize".to_string(),
            message: e.to_string(),
        })
    }

    /// Checks every path rule and limit.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let lists: [(&'static str, &Vec<String>); 3] = [
            ("read", &self.fs.read),
            ("write", &self.fs.write),
            ("execute", &self.fs.execute),
        ];
        for (list, paths) in lists {
            for path in paths {
                check_path(list, path)?;
            }
        }
        let limits = [
            ("cpu_seconds", self.limits.cpu_seconds),
            ("memory_bytes", self.limits.memory_bytes),
            ("processes", self.limits.processes),
            ("open_files", self.limits.open_files),
            ("file_size_bytes", self.limits.file_size_bytes),
        ];
        for (name, value) in limits {
            if value == Some(0) {
                return Err(PolicyError::BadLimit {
                    name,
                    reason: "zero would stop the session before it starts; omit the key for no limit",
                });
            }
        }
        if matches!(self.limits.open_files, Some(n) if n < 16) {
            return Err(PolicyError::BadLimit {
                name: "open_files",
                reason: "below 16 a shell cannot start",
            });
        }
        Ok(())
    }

    /// Expands placeholders into absolute paths for this workspace and home directory.
    pub fn resolve(&self, workspace: &Path, home: Option<&Path>) -> ResolvedFs {
        let expand = |list: &[String]| -> Vec<PathBuf> {
            list.iter()
                .filter_map(|p| expand_path(p, workspace, home))
                .collect()
        };
        let mut list = Vec::new();
        ResolvedFs {
            read: without_private_files(expand(&self.fs.read), &mut list),
            write: without_private_files(expand(&self.fs.write), &mut list),
            execute: expand(&self.fs.execute),
            list,
        }
    }

    /// Checks that `cwd` may be the workspace of a session an agent or a token starts under
    /// this policy. `forbidden` are directories never allowed as or above a workspace (the
    /// daemon's state). The error says which directories are allowed.
    pub fn check_workspace(
        &self,
        cwd: &Path,
        home: Option<&Path>,
        forbidden: &[&Path],
    ) -> Result<(), String> {
        let cwd = cwd
            .canonicalize()
            .map_err(|e| format!("{}: {e}", cwd.display()))?;
        if cwd == Path::new("/") || home.is_some_and(|h| cwd == h) {
            return Err(format!(
                "{} cannot be an agent's workspace: give a project directory (-c DIR)",
                cwd.display()
            ));
        }
        if let Some(dir) = forbidden
            .iter()
            .find(|f| cwd.starts_with(f) || f.starts_with(&cwd))
        {
            return Err(format!(
                "{} holds or lies in the daemon's state directory {}: give a project directory (-c DIR)",
                cwd.display(),
                dir.display()
            ));
        }
        if self.workspaces.is_empty() {
            return Ok(());
        }
        let roots: Vec<PathBuf> = self
            .workspaces
            .iter()
            .filter_map(|w| expand_path(w, &cwd, home))
            .collect();
        if roots.iter().any(|r| cwd.starts_with(r)) {
            return Ok(());
        }
        let names: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        Err(format!(
            "{} is outside the workspaces this policy allows ({}): use -c with a directory under one of them",
            cwd.display(),
            names.join(", ")
        ))
    }

    /// A human explanation of what the policy allows, for `ai-session policy check`.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let join = |v: &[String]| {
            if v.is_empty() {
                "(nothing)".to_string()
            } else {
                v.join(", ")
            }
        };
        out.push_str(&format!("read:    {}\n", join(&self.fs.read)));
        out.push_str(&format!("write:   {}\n", join(&self.fs.write)));
        out.push_str(&format!("execute: {}\n", join(&self.fs.execute)));
        out.push_str(&format!(
            "/tmp:    {}\n",
            if self.fs.private_tmp {
                "private tmpfs per session"
            } else {
                "host /tmp (only if listed above)"
            }
        ));
        out.push_str(&format!(
            "processes: {}\n",
            if self.private_pids {
                "private pid namespace (the session sees only its own processes)"
            } else {
                "host pid namespace"
            }
        ));
        let net = match self.network {
            NetworkMode::None => "none (AF_UNIX only, empty network namespace)",
            NetworkMode::Loopback => "loopback only (private network namespace)",
            NetworkMode::All => "all (host network)",
        };
        out.push_str(&format!("network: {net}\n"));
        let denied: Vec<String> = self
            .syscalls
            .deny
            .iter()
            .map(|g| format!("{g:?}"))
            .collect();
        out.push_str(&format!("denied syscalls: {}\n", join(&denied)));
        out.push_str(&format!("limits:  {:?}\n", self.limits));
        out.push_str(&format!(
            "degrade: {}\n",
            if self.allow_degrade {
                "allowed (missing mechanisms are reported, the session still starts)"
            } else {
                "refused (a missing mechanism stops the session from starting)"
            }
        ));
        out
    }
}

/// Policy paths after placeholder expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedFs {
    /// Readable trees.
    pub read: Vec<PathBuf>,
    /// Writable trees.
    pub write: Vec<PathBuf>,
    /// Executable trees.
    pub execute: Vec<PathBuf>,
    /// Directories that may only be listed (their files are covered by other rules).
    pub list: Vec<PathBuf>,
}

/// The tree where systems keep their secrets readable by root alone (`shadow`, `gshadow`,
/// `sudoers`, SSH host keys, private TLS keys).
const SECRETS_TREE: &str = "/etc";

/// `/etc` as rules that leave out every file and directory others may not read, computed
/// once per process: (trees granted whole, directories only listed).
static ETC_COVER: std::sync::LazyLock<(Vec<PathBuf>, Vec<PathBuf>)> =
    std::sync::LazyLock::new(|| {
        let (mut whole, mut list) = (Vec::new(), Vec::new());
        if cover(Path::new(SECRETS_TREE), &mut whole, &mut list) {
            return (vec![PathBuf::from(SECRETS_TREE)], Vec::new());
        }
        (whole, list)
    });

/// A sandboxed shell is root in its user namespace, mapped to the daemon's own uid: for a
/// root daemon it owns every root-owned file, and mode bits alone would let it read
/// `/etc/shadow`. Rules covering `/etc` (or `/`) are therefore split so that files and
/// directories others may not read get no rule at all; the directories on the way are only
/// listable (names, not contents).
fn without_private_files(paths: Vec<PathBuf>, list: &mut Vec<PathBuf>) -> Vec<PathBuf> {
    let etc = Path::new(SECRETS_TREE);
    let mut out = Vec::new();
    for path in paths {
        let top = if path == Path::new("/") {
            list.push(path);
            let entries = std::fs::read_dir("/").into_iter().flatten().flatten();
            entries.map(|e| e.path()).collect()
        } else {
            vec![path]
        };
        for path in top {
            if path == etc {
                out.extend(ETC_COVER.0.iter().cloned());
                list.extend(ETC_COVER.1.iter().cloned());
            } else {
                out.push(path);
            }
        }
    }
    list.sort();
    list.dedup();
    out
}

/// True when everything under `dir` is readable by others; otherwise pushes the parts that
/// are to `whole`, and `dir` with its partly private subdirectories to `list`.
fn cover(dir: &Path, whole: &mut Vec<PathBuf>, list: &mut Vec<PathBuf>) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut open = Vec::new();
    let mut all = true;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let mode = meta.permissions().mode();
        let ok = if meta.file_type().is_symlink() {
            true // the target is governed by its own rules
        } else if meta.is_dir() {
            mode & 0o005 == 0o005 && cover(&path, whole, list)
        } else {
            mode & 0o004 != 0
        };
        if ok {
            open.push(path);
        } else {
            all = false;
        }
    }
    if !all {
        whole.extend(open);
        list.push(dir.to_path_buf());
    }
    all
}

fn expand_path(raw: &str, workspace: &Path, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(rest) = raw.strip_prefix("{workspace}") {
        return Some(join_rest(workspace, rest));
    }
    if let Some(rest) = raw.strip_prefix("{home}") {
        return home.map(|h| join_rest(h, rest));
    }
    Some(PathBuf::from(raw))
}

fn join_rest(base: &Path, rest: &str) -> PathBuf {
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rest)
    }
}

fn check_path(list: &'static str, raw: &str) -> Result<(), PolicyError> {
    let bad = |reason| {
        Err(PolicyError::BadPath {
            list,
            path: raw.to_string(),
            reason,
        })
    };
    if raw.is_empty() {
        return bad("empty path");
    }
    if raw.contains('\0') {
        return bad("contains a NUL byte");
    }
    let rest = raw
        .strip_prefix("{workspace}")
        .or_else(|| raw.strip_prefix("{home}"));
    let body = match rest {
        Some(rest) => {
            if !rest.is_empty() && !rest.starts_with('/') {
                return bad("a placeholder must be followed by '/' or nothing");
            }
            rest
        }
        None => {
            if raw.contains('{') {
                return bad("unknown placeholder (use {workspace} or {home})");
            }
            if !raw.starts_with('/') {
                return bad("must be absolute or start with {workspace} or {home}");
            }
            raw
        }
    };
    if Path::new(body)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return bad("'..' is not allowed: it would make the rule depend on symlinks");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_validates_and_round_trips() {
        for name in PROFILES {
            let policy = Policy::profile(name).unwrap();
            policy.validate().unwrap();
            let text = policy.to_toml().unwrap();
            assert_eq!(Policy::from_toml(&text, name).unwrap(), policy, "{name}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let text = "network = \"none\"\nbogus = 1\n[fs]\nread = []\n";
        let err = Policy::from_toml(text, "t").unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn bad_paths_are_refused_with_reason() {
        for (path, needle) in [
            ("relative/dir", "absolute"),
            ("/a/../etc", "'..'"),
            ("{workspace}x", "placeholder"),
            ("{nope}/x", "unknown placeholder"),
        ] {
            let text = format!("network = \"all\"\n[fs]\nwrite = [{path:?}]\n");
            let err = Policy::from_toml(&text, "t").unwrap_err().to_string();
            assert!(err.contains(needle), "{path}: {err}");
        }
    }

    #[test]
    fn zero_limit_is_refused() {
        let text = "network = \"all\"\n[fs]\n[limits]\nprocesses = 0\n";
        let err = Policy::from_toml(text, "t").unwrap_err().to_string();
        assert!(err.contains("processes"), "{err}");
    }

    #[test]
    fn placeholders_expand() {
        let p = Policy::profile("default").unwrap();
        let r = p.resolve(Path::new("/w/s"), Some(Path::new("/home/u")));
        assert!(r.write.contains(&PathBuf::from("/w/s")));
        assert!(r.read.contains(&PathBuf::from("/home/u/.cargo")));
        assert!(!r.read.contains(&PathBuf::from("/home/u")));
    }

    #[test]
    fn load_rejects_unknown_profile() {
        assert!(matches!(
            Policy::load("no-such-profile-xyz"),
            Err(PolicyError::UnknownProfile(_))
        ));
    }
}
