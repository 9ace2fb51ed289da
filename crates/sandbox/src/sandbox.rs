//! Turning a policy into a [`Prepared`] sandbox and applying it in the child.
//!
//! Order in the child, and why:
//! 1. enter the cgroup: needs the daemon's credentials for `cgroup.procs`, so before the
//!    user namespace; and early, so every later allocation is charged to the session;
//! 2. rlimits (all but NPROC);
//! 3. user namespace + identity uid/gid map;
//! 4. RLIMIT_NPROC, now counted per (namespace, uid), i.e. for this session only;
//! 5. mount/net/ipc namespaces, `/` made private, tmpfs on `/tmp`, `lo` up: mounts must
//!    precede Landlock (a Landlock domain may not change mounts) and seccomp (which
//!    denies `mount`);
//!    Then the pid namespace: the process forks into it and stays behind as the keeper;
//!    pid 1 of the namespace mounts its `/proc` (see the namespace module);
//! 6. `PR_SET_NO_NEW_PRIVS`: required by both Landlock and seccomp for an unprivileged
//!    caller, and it makes setuid binaries (sudo, su) unable to gain privileges;
//! 7. a Landlock rule for the fresh `/tmp` (see the landlock module), then
//!    `landlock_restrict_self`, before seccomp so the filter need not allow Landlock's
//!    syscalls;
//! 8. the seccomp filter: from here on, the denied calls fail with EPERM;
//! 9. with a pid namespace, pid 1 forks the program and stays as its init.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::cgroup::{CgroupVersion, SessionCgroup};
use crate::error::{ChildError, ChildStep, Error};
use crate::landlock::LandlockRuleset;
use crate::limits::{LimitEvents, RlimitPlan, StopReason};
use crate::namespace::{Hidden, NsPlan};
use crate::policy::{NetworkMode, Policy, SyscallGroup};
use crate::probe::Capabilities;
use crate::seccomp::SeccompProgram;

/// One protection that [`Prepared::apply_in_child`] will apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// Landlock file-system rules at this ABI.
    LandlockFs {
        /// Kernel Landlock ABI version.
        abi: u32,
    },
    /// Landlock denies every TCP bind/connect (ABI 4+, network = none).
    LandlockTcpDenied,
    /// Landlock scopes signals and abstract UNIX sockets to the session (ABI 6+).
    LandlockScoped,
    /// seccomp filter denying these groups, with socket families per the network mode.
    Seccomp {
        /// Denied syscall groups.
        denied: Vec<SyscallGroup>,
        /// Network mode the socket rule follows.
        network: NetworkMode,
    },
    /// `no_new_privs`: setuid/setcap binaries gain nothing.
    NoNewPrivs,
    /// A user namespace (host capabilities dropped).
    UserNamespace,
    /// A mount namespace with a private tmpfs on `/tmp`.
    PrivateTmp,
    /// A network namespace: empty (`loopback = false`) or with only `lo`.
    NetworkNamespace {
        /// `lo` is up.
        loopback: bool,
    },
    /// An IPC namespace (System V IPC and POSIX queues private).
    IpcNamespace,
    /// A pid namespace with its own `/proc`: only the session's processes are visible.
    PidNamespace,
    /// Its own `devpts` instance and `/dev/shm`: other terminals are out of sight.
    PrivateDevices,
    /// The daemon's state directory and socket are covered in the session's mount
    /// namespace: nothing in the session can reach the daemon.
    DaemonHidden,
    /// Memory limit in a cgroup.
    CgroupMemory {
        /// Bytes.
        bytes: u64,
        /// Hierarchy version.
        version: CgroupVersion,
    },
    /// Process limit in a cgroup.
    CgroupPids {
        /// Processes.
        max: u64,
        /// Hierarchy version.
        version: CgroupVersion,
    },
    /// An rlimit (`RLIMIT_CPU`, `RLIMIT_DATA`, ...) with its value.
    Rlimit {
        /// The resource name.
        name: &'static str,
        /// The value.
        value: u64,
    },
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protection::LandlockFs { abi } => write!(f, "landlock file-system rules (ABI {abi})"),
            Protection::LandlockTcpDenied => write!(f, "landlock: TCP bind/connect denied"),
            Protection::LandlockScoped => {
                write!(
                    f,
                    "landlock: signals and abstract unix sockets scoped to the session"
                )
            }
            Protection::Seccomp { denied, network } => {
                write!(
                    f,
                    "seccomp: deny {denied:?}; sockets per network={network:?}"
                )
            }
            Protection::NoNewPrivs => write!(f, "no_new_privs"),
            Protection::UserNamespace => write!(f, "user namespace"),
            Protection::PrivateTmp => write!(f, "mount namespace with private /tmp"),
            Protection::NetworkNamespace { loopback } => write!(
                f,
                "network namespace ({})",
                if *loopback {
                    "loopback only"
                } else {
                    "no interfaces up"
                }
            ),
            Protection::IpcNamespace => write!(f, "ipc namespace"),
            Protection::PidNamespace => write!(f, "pid namespace with its own /proc"),
            Protection::DaemonHidden => write!(f, "daemon socket and state hidden"),
            Protection::PrivateDevices => write!(f, "private /dev/pts and /dev/shm"),
            Protection::CgroupMemory { bytes, version } => {
                write!(f, "cgroup {version:?} memory limit {bytes} bytes")
            }
            Protection::CgroupPids { max, version } => {
                write!(f, "cgroup {version:?} process limit {max}")
            }
            Protection::Rlimit { name, value } => write!(f, "{name} = {value}"),
        }
    }
}

/// Entry point: turns a policy into a [`Prepared`] sandbox.
pub struct Sandbox;

/// Everything the child needs, built in the parent. Share it with the `pre_exec`
/// closure through an `Arc`; keep it alive until the session is reaped (it owns the
/// session's cgroup, which it removes on drop).
#[derive(Debug)]
pub struct Prepared {
    policy: Policy,
    landlock: Option<LandlockRuleset>,
    seccomp: Option<SeccompProgram>,
    ns: NsPlan,
    rlimits: RlimitPlan,
    cgroup: SessionCgroup,
    active: Vec<Protection>,
    missing: Vec<String>,
    notes: Vec<String>,
    /// The child adds a Landlock rule for its private `/tmp`.
    tmp_rule: bool,
    /// The child adds a Landlock read rule for its own `/proc`.
    proc_rule: bool,
}

impl Sandbox {
    /// Plans the sandbox for `policy` on a host with `caps`, for a session whose working
    /// directory (and `{workspace}`) is `workspace`.
    ///
    /// Errors: the policy is invalid, the workspace is not an absolute directory, a
    /// kernel object could not be built, or a mechanism is missing while
    /// `allow_degrade` is false ([`Error::Unenforceable`] lists each).
    pub fn prepare(
        policy: &Policy,
        caps: &Capabilities,
        workspace: &Path,
    ) -> Result<Prepared, Error> {
        Sandbox::prepare_hiding(policy, caps, workspace, &Hidden::default())
    }

    /// [`Sandbox::prepare`], also covering `hidden` (the daemon's own state) in the
    /// session's mount namespace. Hiding is not optional: a host without mount namespaces
    /// reports it missing, and the session starts only if the policy allows degrading.
    pub fn prepare_hiding(
        policy: &Policy,
        caps: &Capabilities,
        workspace: &Path,
        hidden: &Hidden,
    ) -> Result<Prepared, Error> {
        policy.validate()?;
        if !workspace.is_absolute() || !workspace.is_dir() {
            return Err(Error::Workspace(workspace.to_path_buf()));
        }
        let mut p = Prepared {
            policy: policy.clone(),
            landlock: None,
            seccomp: None,
            ns: NsPlan::new(false, false, false, false, false),
            rlimits: RlimitPlan::default(),
            cgroup: SessionCgroup::default(),
            active: Vec::new(),
            missing: Vec::new(),
            notes: caps.notes.clone(),
            tmp_rule: false,
            proc_rule: false,
        };
        p.plan_namespaces(caps);
        p.plan_hiding(caps, hidden);
        if p.ns.private_devices() {
            p.active.push(Protection::PrivateDevices);
        }
        p.plan_landlock(caps, workspace)?;
        p.plan_seccomp(caps)?;
        p.plan_limits(caps)?;
        if !p.missing.is_empty() && !policy.allow_degrade {
            return Err(Error::Unenforceable {
                missing: p.missing.clone(),
            });
        }
        Ok(p)
    }
}

impl Prepared {
    fn plan_namespaces(&mut self, caps: &Capabilities) {
        let want_tmp = self.policy.fs.private_tmp;
        let want_net = self.policy.network != NetworkMode::All;
        let loopback = self.policy.network == NetworkMode::Loopback;
        let tmp = want_tmp && caps.mount_ns;
        let net = want_net && caps.net_ns;
        let pids = self.policy.private_pids && caps.pid_ns && caps.mount_ns;
        self.ns = NsPlan::new(caps.user_ns, tmp || pids, net, tmp, loopback)
            .with_pid(pids)
            .with_tmp_size(self.policy.fs.tmp_bytes);
        if caps.user_ns {
            self.active.push(Protection::UserNamespace);
        }
        if tmp {
            self.active.push(Protection::PrivateTmp);
        } else if want_tmp {
            self.missing
                .push("private /tmp: mount namespace unavailable; /tmp is not writable".into());
        }
        if net {
            self.active.push(Protection::NetworkNamespace { loopback });
        } else if want_net && loopback {
            self.missing.push(
                "network=loopback: network namespace unavailable; IP sockets reach the host network".into(),
            );
        } else if want_net {
            self.missing.push(
                "network=none: network namespace unavailable (seccomp still blocks non-unix sockets)".into(),
            );
        }
        if !self.ns.is_empty() {
            self.active.push(Protection::IpcNamespace);
        }
        if self.ns.pid() {
            self.active.push(Protection::PidNamespace);
        } else if self.policy.private_pids {
            self.missing.push(
                "private pids: pid or mount namespace unavailable; the session sees host processes"
                    .into(),
            );
        }
    }

    fn plan_hiding(&mut self, caps: &Capabilities, hidden: &Hidden) {
        if hidden.is_empty() {
            return;
        }
        if !caps.mount_ns {
            self.missing.push(
                "daemon state: mount namespace unavailable; the daemon's socket path is visible \
                 (the daemon still refuses connections from the session)"
                    .into(),
            );
            return;
        }
        let ns = std::mem::replace(&mut self.ns, NsPlan::new(false, false, false, false, false));
        let (ns, hiding) = ns.with_hidden(hidden);
        self.ns = ns;
        if hiding {
            if !self.active.contains(&Protection::IpcNamespace) {
                self.active.push(Protection::IpcNamespace);
            }
            self.active.push(Protection::DaemonHidden);
        }
    }

    fn plan_landlock(&mut self, caps: &Capabilities, workspace: &Path) -> Result<(), Error> {
        let Some(abi) = caps.landlock_abi else {
            self.missing.push(
                "landlock: unavailable on this kernel; file-system rules not enforced".into(),
            );
            return Ok(());
        };
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let fs = self.policy.resolve(workspace, home.as_deref());
        let ruleset = LandlockRuleset::build(abi, &fs, self.policy.network)?;
        self.tmp_rule = self.active.contains(&Protection::PrivateTmp);
        // The namespace's own /proc is a new mount the parent's rules do not cover.
        self.proc_rule = self.ns.pid() && fs.read.iter().any(|p| Path::new("/proc").starts_with(p));
        self.active.push(Protection::LandlockFs { abi });
        if ruleset.tcp_denied {
            self.active.push(Protection::LandlockTcpDenied);
        }
        if ruleset.scoped {
            self.active.push(Protection::LandlockScoped);
        }
        for path in &ruleset.skipped {
            self.notes.push(format!(
                "landlock: {} does not exist here, rule skipped",
                path.display()
            ));
        }
        self.landlock = Some(ruleset);
        Ok(())
    }

    fn plan_seccomp(&mut self, caps: &Capabilities) -> Result<(), Error> {
        self.active.push(Protection::NoNewPrivs);
        if !caps.seccomp {
            self.missing.push(
                "seccomp: unavailable; ptrace, io_uring, mount and sockets not filtered".into(),
            );
            return Ok(());
        }
        let deny = &self.policy.syscalls.deny;
        self.seccomp = Some(SeccompProgram::compile(deny, self.policy.network)?);
        self.active.push(Protection::Seccomp {
            denied: deny.clone(),
            network: self.policy.network,
        });
        Ok(())
    }

    fn plan_limits(&mut self, caps: &Capabilities) -> Result<(), Error> {
        let limits = self.policy.limits.clone();
        self.cgroup = SessionCgroup::create(&caps.cgroup, limits.memory_bytes, limits.processes)?;
        if let (Some(version), Some(bytes)) = (self.cgroup.memory, limits.memory_bytes) {
            self.active
                .push(Protection::CgroupMemory { bytes, version });
        }
        if let (Some(version), Some(max)) = (self.cgroup.pids, limits.processes) {
            self.active.push(Protection::CgroupPids { max, version });
        }
        let mut plan = RlimitPlan::new(
            &limits,
            self.cgroup.memory.is_some(),
            self.cgroup.pids.is_some(),
        );
        if plan.processes.is_some() && !(caps.nproc_enforced() && caps.user_ns) {
            plan.processes = None;
            self.missing.push(if caps.nproc_enforced() {
                "process limit: no pids cgroup and no user namespace to scope RLIMIT_NPROC to the session".into()
            } else {
                "process limit: no pids cgroup, and RLIMIT_NPROC does not apply to a root daemon".into()
            });
        }
        self.rlimits = plan;
        let rl = [
            ("RLIMIT_CPU", plan.cpu_seconds),
            ("RLIMIT_DATA", plan.data_bytes),
            ("RLIMIT_NPROC", plan.processes),
            ("RLIMIT_NOFILE", plan.open_files),
            ("RLIMIT_FSIZE", plan.file_size_bytes),
        ];
        for (name, value) in rl {
            if let Some(value) = value {
                self.active.push(Protection::Rlimit { name, value });
            }
        }
        Ok(())
    }

    /// Exactly the protections [`Prepared::apply_in_child`] applies.
    pub fn active(&self) -> Vec<Protection> {
        self.active.clone()
    }

    /// True when the program runs under a keeper and an init in its own pid namespace.
    pub fn has_pid_namespace(&self) -> bool {
        self.ns.pid()
    }

    /// What the policy asked for but this host cannot enforce (empty = fully enforced).
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// Informational remarks (skipped nonexistent paths, pid namespace, host notes).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The policy this sandbox was prepared from.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The session's cgroup (empty when the host has none writable).
    pub fn cgroup(&self) -> &SessionCgroup {
        &self.cgroup
    }

    /// Limit events counted so far (OOM kills, refused forks).
    pub fn limit_events(&self) -> LimitEvents {
        self.cgroup.events()
    }

    /// Why the session's process stopped, from its wait status and the limit counters.
    pub fn stop_reason(&self, status: ExitStatus) -> StopReason {
        StopReason::classify(
            status,
            &self.policy.limits,
            self.limit_events(),
            self.cgroup.memory.is_some(),
        )
    }

    /// Applies the sandbox to the calling process. Call it inside `pre_exec`, after the
    /// daemon's `setsid()`/`TIOCSCTTY` and right before exec. On failure the step's name
    /// is written to fd 2 (the PTY) and the errno is returned; the spawn then fails.
    ///
    /// # Safety
    /// Must run in a forked, single-threaded child before exec. It allocates nothing and
    /// only issues syscalls on data prepared in the parent.
    pub unsafe fn apply_in_child(&self) -> Result<(), ChildError> {
        // SAFETY: forwarded from the caller's contract.
        let result = unsafe { self.apply_steps() };
        if let Err(e) = result {
            // Best effort diagnostic; the errno still reaches the parent through spawn.
            let _ignored = rustix::io::write(
                // SAFETY: fd 2 is open in the child (the PTY or /dev/null).
                unsafe { rustix::fd::BorrowedFd::borrow_raw(2) },
                e.step.message(),
            );
        }
        result
    }

    /// # Safety
    /// See [`Prepared::apply_in_child`].
    unsafe fn apply_steps(&self) -> Result<(), ChildError> {
        // SAFETY (all blocks below): we are the forked child before exec, per the caller.
        unsafe {
            self.cgroup.enter()?;
            self.rlimits.apply_early()?;
            self.ns.enter_user()?;
            self.rlimits.apply_nproc()?;
            self.ns.enter_rest()?;
            self.ns.enter_pid()?;
            self.ns.mount_proc()?;
        }
        rustix::thread::set_no_new_privs(true)
            .map_err(|e| ChildError::from_rustix(ChildStep::NoNewPrivs, e))?;
        if let Some(ruleset) = &self.landlock {
            if self.tmp_rule {
                // The tmpfs is private to the session, so writing it is harmless.
                // SAFETY: as above; the tmpfs is mounted by now.
                unsafe { ruleset.allow_private_tmp() }?;
            }
            if self.ns.private_devices() {
                // The session's own devpts and /dev/shm are new mounts as well.
                // SAFETY: as above; both are mounted by now.
                unsafe { ruleset.allow_private_devices(self.ns.private_shm()) }?;
            }
            if self.proc_rule {
                // SAFETY: as above; the namespace's /proc is mounted by now.
                unsafe { ruleset.allow_private_proc() }?;
            }
            // SAFETY: as above.
            unsafe { ruleset.restrict_self() }?;
        }
        if let Some(filter) = &self.seccomp {
            // SAFETY: as above.
            unsafe { filter.install() }?;
        }
        // SAFETY: as above; the last step before exec.
        unsafe { self.ns.become_init() }
    }
}
