//! Detecting what this host can enforce, by trying it.
//!
//! Namespaces are probed by spawning `true` with the same child code the sandbox uses,
//! so "supported" means "worked here just now", not "the kernel was built with it":
//! containers and sysctls (`user.max_user_namespaces`, AppArmor's userns restriction)
//! often forbid what the kernel has.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::namespace::NsPlan;

/// A writable cgroup v2 directory whose children get these controllers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupV2Base {
    /// The directory under which session groups are created.
    pub dir: PathBuf,
    /// Controllers enabled for its children (`cgroup.subtree_control`).
    pub controllers: Vec<String>,
}

/// Where session cgroups can be created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CgroupSupport {
    /// Writable cgroup v2 base, if any.
    pub v2: Option<CgroupV2Base>,
    /// Writable v1 `memory` hierarchy directory (fallback), if any.
    pub v1_memory: Option<PathBuf>,
    /// Writable v1 `pids` hierarchy directory (fallback), if any.
    pub v1_pids: Option<PathBuf>,
}

impl CgroupSupport {
    /// True if the v2 base delegates `controller` to its children.
    pub fn v2_has(&self, controller: &str) -> bool {
        self.v2
            .as_ref()
            .is_some_and(|b| b.controllers.iter().any(|c| c == controller))
    }
}

/// What the host supports, as detected by [`probe`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Landlock ABI version, `None` if Landlock is unavailable.
    pub landlock_abi: Option<u32>,
    /// seccomp filters can be installed.
    pub seccomp: bool,
    /// An unprivileged-style user namespace with an identity uid map works.
    pub user_ns: bool,
    /// A mount namespace with a tmpfs on `/tmp` works.
    pub mount_ns: bool,
    /// A network namespace with `lo` brought up works.
    pub net_ns: bool,
    /// `unshare(CLONE_NEWPID)` works (the sandbox still does not use it; see `namespace`).
    pub pid_ns: bool,
    /// Session cgroups.
    pub cgroup: CgroupSupport,
    /// getrlimit/setrlimit work (always true on Linux).
    pub rlimits: bool,
    /// The daemon's effective uid.
    pub euid: u32,
    /// Remarks for `policy check` (why something is missing).
    pub notes: Vec<String>,
}

impl Capabilities {
    /// RLIMIT_NPROC is enforced for the session: the kernel exempts uid 0 of the initial
    /// user namespace, which a root daemon maps into the session unchanged.
    pub fn nproc_enforced(&self) -> bool {
        self.euid != 0
    }
}

/// Detects the host's sandboxing support. Takes a few milliseconds (four short spawns).
pub fn probe() -> Capabilities {
    let mut caps = Capabilities {
        euid: rustix::process::geteuid().as_raw(),
        rlimits: true,
        ..Capabilities::default()
    };
    caps.landlock_abi = landlock_abi();
    if caps.landlock_abi.is_none() {
        caps.notes
            .push("Landlock unavailable (kernel < 5.13 or not in the lsm= boot list)".to_string());
    }
    caps.seccomp = seccomp_available();
    caps.user_ns = try_ns(&NsPlan::new(true, false, false, false, false));
    let user = caps.user_ns;
    if !user && caps.euid != 0 {
        caps.notes.push(
            "user namespaces refused (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone or AppArmor): no mount/net namespaces either".to_string(),
        );
    }
    caps.mount_ns = try_ns(&NsPlan::new(user, true, false, true, false));
    caps.net_ns = try_ns(&NsPlan::new(user, false, true, false, true));
    caps.pid_ns = try_pid_ns(user);
    caps.cgroup = cgroups(&mut caps.notes);
    if !caps.nproc_enforced() {
        caps.notes.push(
            "running as root: RLIMIT_NPROC is not enforced by the kernel; only a pids cgroup limits processes".to_string(),
        );
    }
    caps
}

fn landlock_abi() -> Option<u32> {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only
    // returns the ABI version; no memory is passed.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    u32::try_from(v).ok().filter(|v| *v > 0)
}

fn seccomp_available() -> bool {
    // PR_GET_SECCOMP fails with EINVAL on kernels without CONFIG_SECCOMP.
    // SAFETY: prctl(PR_GET_SECCOMP) takes no pointers.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
    if mode < 0 {
        return false;
    }
    // Filter mode also needs CONFIG_SECCOMP_FILTER: ask for the strictest action.
    let action = libc::SECCOMP_RET_KILL_PROCESS;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    rc == 0
}

fn spawn_true(pre: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static) -> bool {
    let mut cmd = Command::new("true");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only issues async-signal-safe syscalls (see NsPlan).
    unsafe { cmd.pre_exec(pre) };
    match cmd.spawn() {
        Ok(mut child) => child.wait().map(|s| s.success()).unwrap_or(false),
        Err(_) => false,
    }
}

fn try_ns(plan: &NsPlan) -> bool {
    let plan = plan.clone();
    spawn_true(move || {
        // SAFETY: called in the forked child before exec.
        unsafe { plan.enter_user() }?;
        // SAFETY: as above.
        unsafe { plan.enter_rest() }?;
        Ok(())
    })
}

fn try_pid_ns(user: bool) -> bool {
    let plan = NsPlan::new(user, false, false, false, false);
    spawn_true(move || {
        // SAFETY: called in the forked child before exec.
        unsafe { plan.enter_user() }?;
        // SAFETY: single-threaded child; affects only its future children.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWPID) }?;
        Ok(())
    })
}

/// Mount points of cgroup file systems: (mount dir, fs type, super options).
fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or("");
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or("");
        let opts = right.nth(1).unwrap_or("");
        if fstype == "cgroup" || fstype == "cgroup2" {
            out.push((
                PathBuf::from(mount_point),
                fstype.to_string(),
                opts.to_string(),
            ));
        }
    }
    out
}

/// Our own cgroup path in the hierarchy that lists `controller` ("" for v2).
fn own_path(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

fn join_cg(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

/// Creates and removes a probe child group to prove the directory is writable.
fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!("ai-session-probe-{}", std::process::id()));
    fs::create_dir(&probe).is_ok() && fs::remove_dir(&probe).is_ok()
}

fn cgroups(notes: &mut Vec<String>) -> CgroupSupport {
    let mut support = CgroupSupport::default();
    for (mount, fstype, opts) in cgroup_mounts() {
        if fstype == "cgroup2" {
            let Some(path) = own_path("") else { continue };
            let dir = join_cg(&mount, &path);
            let controllers: Vec<String> = fs::read_to_string(dir.join("cgroup.subtree_control"))
                .unwrap_or_default()
                .split_whitespace()
                .filter(|c| matches!(*c, "memory" | "pids" | "cpu"))
                .map(str::to_string)
                .collect();
            if controllers.is_empty() {
                notes.push(format!(
                    "cgroup v2 at {} delegates neither memory nor pids to children",
                    dir.display()
                ));
            } else if writable(&dir) {
                support.v2 = Some(CgroupV2Base { dir, controllers });
            } else {
                notes.push(format!("cgroup v2 at {} is not writable", dir.display()));
            }
            continue;
        }
        for controller in ["memory", "pids"] {
            if !opts.split(',').any(|o| o == controller) {
                continue;
            }
            let Some(path) = own_path(controller) else {
                continue;
            };
            let dir = join_cg(&mount, &path);
            if !writable(&dir) {
                notes.push(format!(
                    "cgroup v1 {controller} at {} is not writable",
                    dir.display()
                ));
            } else if controller == "memory" {
                support.v1_memory = Some(dir);
            } else {
                support.v1_pids = Some(dir);
            }
        }
    }
    support
}
