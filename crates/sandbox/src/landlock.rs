//! Landlock: the file-system rules (and, for `network = none`, TCP rules and scopes).
//!
//! The ruleset is built in the parent with the `landlock` crate, which opens one
//! `O_PATH` fd per rule and drops access rights the running kernel does not know. The
//! child only calls `landlock_restrict_self(ruleset_fd)`. Rules bind to inodes opened in
//! the parent, and Landlock's path walk skips the rules of a mount point's own dentry
//! (it "ignores hidden mount points"), so a rule on the host's `/tmp` does not cover the
//! tmpfs the child mounts there. The child therefore adds one rule for its fresh `/tmp`
//! itself ([`LandlockRuleset::allow_private_tmp`]: `open(O_PATH)` + `landlock_add_rule`,
//! both async-signal-safe). The ruleset is shared with the parent through fork, so that
//! rule lands in the parent's copy too: prepare one sandbox per spawned session.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
};

use crate::error::{ChildError, ChildStep, Error};
use crate::policy::{NetworkMode, ResolvedFs};

/// A created Landlock ruleset and what it covers.
#[derive(Debug)]
pub struct LandlockRuleset {
    fd: OwnedFd,
    /// Policy paths that do not exist on this host and were left out (e.g. `/lib32`).
    pub skipped: Vec<PathBuf>,
    /// True when TCP bind/connect are denied by Landlock (ABI 4+ and `network = none`).
    pub tcp_denied: bool,
    /// True when signals and abstract UNIX sockets are scoped to the sandbox (ABI 6+).
    pub scoped: bool,
    /// Access bits granted to the private `/tmp` (the write set).
    tmp_rights: u64,
    /// Access bits granted to the pid namespace's own `/proc` (the read set).
    proc_rights: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel UAPI).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

fn read_rights(abi: ABI) -> BitFlags<AccessFs> {
    AccessFs::from_read(abi)
}

/// The access rights that apply to a file (not a directory): execute, write, read,
/// truncate, device ioctls.
const FILE_RIGHTS: u64 = 1 | 2 | 4 | (1 << 14) | (1 << 15);

fn write_rights(abi: ABI) -> BitFlags<AccessFs> {
    // Everything but execute: create/remove/rename/truncate/ioctl on devices.
    (AccessFs::from_all(abi) & !AccessFs::Execute) | AccessFs::from_read(abi)
}

/// Converts a kernel ABI number into the crate's enum (newest known wins).
pub fn abi_from(version: u32) -> ABI {
    ABI::from(i32::try_from(version).unwrap_or(i32::MAX))
}

impl LandlockRuleset {
    /// Builds the ruleset for `fs` at the host's ABI. Fails if a rule cannot be added.
    pub fn build(abi_version: u32, fs: &ResolvedFs, network: NetworkMode) -> Result<Self, Error> {
        let abi = abi_from(abi_version);
        let err = |e: landlock::RulesetError| Error::Landlock(e.to_string());
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(abi))
            .map_err(err)?;
        let tcp_denied = network == NetworkMode::None && abi >= ABI::V4;
        if tcp_denied {
            // Handled but never granted: every TCP bind and connect is refused.
            ruleset = ruleset
                .handle_access(AccessNet::from_all(ABI::V4))
                .map_err(err)?;
        }
        let scoped = abi >= ABI::V6;
        if scoped {
            ruleset = ruleset.scope(Scope::from_all(ABI::V6)).map_err(err)?;
        }
        let mut created = ruleset.create().map_err(err)?;
        let mut skipped = Vec::new();
        let groups: [(&[PathBuf], BitFlags<AccessFs>); 4] = [
            (&fs.read, read_rights(abi)),
            (&fs.write, write_rights(abi)),
            (&fs.execute, AccessFs::Execute.into()),
            (&fs.list, AccessFs::ReadDir.into()),
        ];
        for (paths, rights) in groups {
            for path in paths {
                match PathFd::new(path) {
                    Ok(fd) => {
                        let rights = if path.is_dir() {
                            rights
                        } else {
                            rights & AccessFs::from_file(abi)
                        };
                        created = created
                            .add_rule(PathBeneath::new(fd, rights))
                            .map_err(err)?;
                    }
                    Err(_) if !path_exists(path) => skipped.push(path.clone()),
                    Err(e) => return Err(Error::Landlock(format!("{}: {e}", path.display()))),
                }
            }
        }
        let fd: Option<OwnedFd> = created.into();
        let fd = fd.ok_or_else(|| Error::Landlock("kernel does not support Landlock".into()))?;
        Ok(LandlockRuleset {
            fd,
            skipped,
            tcp_denied,
            scoped,
            tmp_rights: write_rights(abi).bits(),
            proc_rights: read_rights(abi).bits(),
        })
    }

    /// Grants write access to the tmpfs just mounted on `/tmp` in the child.
    ///
    /// # Safety
    /// Async-signal-safe: open, one syscall, close; meant for the child between fork and
    /// exec, after the mount and before [`LandlockRuleset::restrict_self`].
    pub unsafe fn allow_private_tmp(&self) -> Result<(), ChildError> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.allow_mount(c"/tmp", self.tmp_rights) }
    }

    /// Grants access to the session's own `devpts` instance and `/dev/shm` (private to it,
    /// so writing them is harmless).
    ///
    /// # Safety
    /// As [`LandlockRuleset::allow_private_tmp`], after both mounts.
    pub unsafe fn allow_private_devices(&self, shm: bool) -> Result<(), ChildError> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.allow_mount(c"/dev/pts", self.tmp_rights) }?;
        // `/dev/ptmx` is now a bind of the new instance's `ptmx`: a file rule of its own.
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.allow_file(c"/dev/ptmx", self.tmp_rights & FILE_RIGHTS) }?;
        if shm {
            // SAFETY: forwarded from the caller's contract.
            unsafe { self.allow_mount(c"/dev/shm", self.tmp_rights) }?;
        }
        Ok(())
    }

    /// Grants read access to the `/proc` the child mounted for its pid namespace.
    ///
    /// # Safety
    /// As [`LandlockRuleset::allow_private_tmp`], after the `/proc` mount.
    pub unsafe fn allow_private_proc(&self) -> Result<(), ChildError> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.allow_mount(c"/proc", self.proc_rights) }
    }

    /// Adds a rule for the file `path` with `rights` (file rights only).
    ///
    /// # Safety
    /// Async-signal-safe: open, one syscall, close.
    unsafe fn allow_file(&self, path: &std::ffi::CStr, rights: u64) -> Result<(), ChildError> {
        let fail = |e: rustix::io::Errno| ChildError::from_rustix(ChildStep::Landlock, e);
        let file = rustix::fs::open(
            path,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(fail)?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.add_path_rule(file.as_raw_fd(), rights) }
    }

    /// Adds a rule for the directory `path` with `rights`.
    ///
    /// # Safety
    /// Async-signal-safe: open, one syscall, close.
    unsafe fn allow_mount(&self, path: &std::ffi::CStr, rights: u64) -> Result<(), ChildError> {
        let fail = |e: rustix::io::Errno| ChildError::from_rustix(ChildStep::Landlock, e);
        let dir = rustix::fs::open(
            path,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .map_err(fail)?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.add_path_rule(dir.as_raw_fd(), rights) }
    }

    /// `landlock_add_rule(LANDLOCK_RULE_PATH_BENEATH)` for the opened `parent_fd`.
    ///
    /// # Safety
    /// Async-signal-safe: one syscall.
    unsafe fn add_path_rule(&self, parent_fd: i32, rights: u64) -> Result<(), ChildError> {
        let attr = PathBeneathAttr {
            allowed_access: rights,
            parent_fd,
        };
        // SAFETY: LANDLOCK_RULE_PATH_BENEATH (1) with a pointer to a live attr struct.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                1 as libc::c_int,
                &attr as *const PathBeneathAttr,
                0 as libc::c_uint,
            )
        };
        if rc != 0 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            return Err(ChildError::new(ChildStep::Landlock, errno));
        }
        Ok(())
    }

    /// Restricts the calling thread (and its future children) to the ruleset.
    /// `no_new_privs` must already be set.
    ///
    /// # Safety
    /// Async-signal-safe: one syscall on an fd owned by `self`; meant for the child
    /// between fork and exec.
    pub unsafe fn restrict_self(&self) -> Result<(), ChildError> {
        // SAFETY: landlock_restrict_self(fd, flags=0) only reads the fd number.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_restrict_self,
                self.fd.as_raw_fd(),
                0 as libc::c_uint,
            )
        };
        if rc != 0 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            return Err(ChildError::new(ChildStep::Landlock, errno));
        }
        Ok(())
    }
}

fn path_exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
