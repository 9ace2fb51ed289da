//! The probe reports what this host really does.

use ai_session_sandbox::{NetworkMode, Protection};

use super::common::*;

#[test]
fn probe_matches_the_kernel_and_prepare_reports_consistently() {
    let c = caps();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(c.seccomp, status.contains("Seccomp:"), "{c:?}");
    if c.mount_ns || c.net_ns {
        assert!(c.user_ns || c.euid == 0);
    }
    let tmp = TempDir::new("probe");
    let p = prepare(&policy(NetworkMode::None), tmp.path());
    let active = p.active();
    assert_eq!(
        c.landlock_abi.is_some(),
        active
            .iter()
            .any(|a| matches!(a, Protection::LandlockFs { .. }))
    );
    assert_eq!(c.user_ns, active.contains(&Protection::UserNamespace));
    assert_eq!(
        c.net_ns,
        active.contains(&Protection::NetworkNamespace { loopback: false })
    );
    // Every requested protection is either active or listed as missing.
    assert_eq!(
        p.missing().is_empty(),
        c.landlock_abi.is_some()
            && c.seccomp
            && c.mount_ns
            && c.net_ns
            && (p.cgroup().pids.is_some() || (c.nproc_enforced() && c.user_ns))
    );
    eprintln!(
        "capabilities: {c:#?}\nactive: {active:#?}\nmissing: {:#?}",
        p.missing()
    );
}
