//! The seccomp filter: compiled to BPF in the parent, installed in the child.
//!
//! Denied calls return EPERM instead of killing the process, so a shell prints
//! "Operation not permitted" and stays usable. The filter checks the architecture and
//! kills on a foreign one (seccompiler does this), so 32-bit syscall numbers cannot be
//! used to slip past it. Note: x32 syscall numbers (bit 30 set) share the x86_64
//! architecture value; kernels are normally built without x32, which this filter assumes.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{ChildError, ChildStep, Error};
use crate::policy::{NetworkMode, SyscallGroup};

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "riscv64")]
const ARCH: TargetArch = TargetArch::riscv64;

/// Syscall numbers denied for one group.
fn group_syscalls(group: SyscallGroup) -> Vec<i64> {
    match group {
        SyscallGroup::Ptrace => vec![
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
        ],
        SyscallGroup::IoUring => vec![
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
        ],
        SyscallGroup::KernelModules => vec![
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
        ],
        SyscallGroup::Mount => vec![
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_fsopen,
            libc::SYS_fsmount,
            libc::SYS_fsconfig,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_mount_setattr,
        ],
        SyscallGroup::Kexec => vec![
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_reboot,
        ],
        SyscallGroup::Bpf => vec![libc::SYS_bpf],
        SyscallGroup::Perf => vec![libc::SYS_perf_event_open],
        SyscallGroup::Keyring => vec![libc::SYS_add_key, libc::SYS_request_key, libc::SYS_keyctl],
        SyscallGroup::Userfaultfd => vec![libc::SYS_userfaultfd],
        SyscallGroup::OpenByHandle => vec![libc::SYS_open_by_handle_at],
    }
}

/// Socket families allowed for a network mode; `None` means all.
fn allowed_families(mode: NetworkMode) -> Option<&'static [i32]> {
    match mode {
        NetworkMode::None => Some(&[libc::AF_UNIX]),
        NetworkMode::Loopback => Some(&[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6]),
        NetworkMode::All => None,
    }
}

/// A compiled filter, ready to install.
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    bpf: BpfProgram,
}

impl SeccompProgram {
    /// Compiles the filter for the denied groups and the network mode.
    pub fn compile(deny: &[SyscallGroup], network: NetworkMode) -> Result<Self, Error> {
        let err = |e: seccompiler::BackendError| Error::Seccomp(e.to_string());
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for group in deny {
            for nr in group_syscalls(*group) {
                // An empty rule list matches every call of this syscall.
                rules.insert(nr, Vec::new());
            }
        }
        if let Some(families) = allowed_families(network) {
            // One rule whose conditions are ANDed: "domain is none of the allowed ones".
            let conditions = families
                .iter()
                .map(|f| {
                    SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *f as u64)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let rule = SeccompRule::new(conditions).map_err(err)?;
            rules.insert(libc::SYS_socket, vec![rule.clone()]);
            rules.insert(libc::SYS_socketpair, vec![rule]);
        }
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            ARCH,
        )
        .map_err(err)?;
        let bpf: BpfProgram = filter.try_into().map_err(err)?;
        Ok(SeccompProgram { bpf })
    }

    /// Number of BPF instructions (for diagnostics and tests).
    pub fn len(&self) -> usize {
        self.bpf.len()
    }

    /// True if the program is empty (never, for a compiled filter).
    pub fn is_empty(&self) -> bool {
        self.bpf.is_empty()
    }

    /// Installs the filter on the calling thread. `no_new_privs` must already be set.
    ///
    /// # Safety
    /// Async-signal-safe: one `seccomp(2)` call on memory owned by `self`; meant for the
    /// child between fork and exec.
    pub unsafe fn install(&self) -> Result<(), ChildError> {
        let prog = libc::sock_fprog {
            len: self.bpf.len() as u16,
            // The kernel copies the program; it never writes through this pointer.
            filter: self.bpf.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at a valid sock_filter array of `len` entries for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            return Err(ChildError::new(ChildStep::Seccomp, errno));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_for_each_network_mode() {
        for mode in [NetworkMode::None, NetworkMode::Loopback, NetworkMode::All] {
            let p = SeccompProgram::compile(&SyscallGroup::ALL, mode).unwrap();
            assert!(p.len() > 10 && p.len() < u16::MAX as usize);
        }
    }
}
