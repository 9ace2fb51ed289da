//! The daemon's side of placing sessions in a cluster: the sandboxed sessions this node takes
//! (published in its node record from `[cluster] sandbox_policies` and the host's sandbox
//! support), and the sandbox a new session asks for, which `ai_session_cluster::placement`
//! matches against every node's record.

use ai_session_cluster::ClusterError;
use ai_session_cluster::placement::Need;
use ai_session_protocol::cluster::NodeSandbox;
use ai_session_protocol::config::ClusterConfig;
use ai_session_sandbox::policy::PROFILES;
use serde_json::Value;

/// What `custom` stands for in `sandbox_policies`: any policy given in TOML.
const CUSTOM: &str = "custom";

/// The sandboxed sessions this node takes: the policies `[cluster] sandbox_policies` lists
/// (every one when absent), and the sandbox mechanisms this host lacks.
pub(crate) fn node_sandbox(config: &ClusterConfig) -> Result<NodeSandbox, ClusterError> {
    let known = || PROFILES.iter().copied().chain([CUSTOM]);
    let policies: Vec<String> = match &config.sandbox_policies {
        None => known().map(str::to_string).collect(),
        Some(listed) => {
            if let Some(bad) = listed.iter().find(|p| !known().any(|k| k == p.as_str())) {
                return Err(ClusterError::Config(format!(
                    "[cluster] sandbox_policies names '{bad}', which is no sandbox policy: use \
                     built-in profile names ({}) and '{CUSTOM}' for policies given in TOML",
                    PROFILES.join(", ")
                )));
            }
            listed.clone()
        }
    };
    Ok(NodeSandbox {
        policies,
        missing: missing(&ai_session_sandbox::probe()),
    })
}

/// The sandbox mechanisms a host lacks, in words.
fn missing(caps: &ai_session_sandbox::Capabilities) -> Vec<String> {
    let cgroups = caps.cgroup.v2.is_some() || caps.cgroup.v1_memory.is_some();
    [
        (caps.landlock_abi.is_some(), "landlock"),
        (caps.seccomp, "seccomp"),
        (caps.user_ns || caps.euid == 0, "user namespaces"),
        (caps.mount_ns, "mount namespaces"),
        (caps.net_ns, "network namespaces"),
        (caps.pid_ns, "pid namespaces"),
        (cgroups, "cgroups"),
    ]
    .into_iter()
    .filter(|(has, _)| !has)
    .map(|(_, what)| what.to_string())
    .collect()
}

/// The sandbox a `session.new` asks for (`policy`); `None` for an unconfined session, or a
/// policy that does not parse (the node that creates the session says why).
pub(crate) fn need(params: &Value) -> Option<Need> {
    let spec = params.get("policy")?.as_str()?;
    let (policy, name) = ai_session_core::sandbox::parse_policy(spec).ok()?;
    Some(Need {
        policy: name,
        degrade: policy.allow_degrade,
    })
}

/// The refusal of a session no live node runs: each node and what it takes.
pub(crate) fn nowhere(
    need: &Need,
    nodes: &[ai_session_protocol::cluster::NodeInfo],
) -> ai_session_protocol::RpcError {
    let offers: Vec<String> = nodes
        .iter()
        .map(|n| match &n.sandbox {
            Some(s) if s.missing.is_empty() => format!("{}: {}", n.node, s.policies.join(" ")),
            Some(s) => format!(
                "{}: {} (lacks {})",
                n.node,
                s.policies.join(" "),
                s.missing.join(", ")
            ),
            None => format!("{}: any", n.node),
        })
        .collect();
    let forbids = if need.degrade {
        ""
    } else {
        ", which forbids degrading,"
    };
    ai_session_protocol::RpcError::new(
        ai_session_protocol::ErrorKind::Unsupported,
        format!(
            "no live node runs sandbox policy '{}'{forbids} (nodes take: {})",
            need.policy,
            offers.join("; ")
        ),
    )
    .with_hint(
        "name a node with --node, or list the policy in [cluster] sandbox_policies of a node \
         (docs/cluster.md, Placement)",
    )
}
