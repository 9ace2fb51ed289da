//! Where a session without `--node` starts: the least-loaded live node that runs its sandbox.
//!
//! First the nodes that cannot run the session's sandbox policy are set aside ([`runs`]): a
//! node runs a policy it lists in its record (`[cluster] sandbox_policies`: profile names,
//! `custom` for a policy in TOML), and a policy that forbids degrading only if its host lacks
//! no sandbox mechanism. A session without a policy runs anywhere. Then, in order: the lowest one-minute load average per processor, loads closer than
//! [`LOAD_TIE`] counting as equal (a load average moves by that much on its own); then the
//! fewest sessions; then the entry node (the one the client talks to), so a cluster of equal
//! nodes behaves as one daemon does; then the node name, so every node decides alike.

use ai_session_protocol::cluster::NodeInfo;

/// The sandbox a new session asks for, as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// A built-in profile's name, or `custom` for a policy given in TOML.
    pub policy: String,
    /// Whether the policy lets the session start with protections the host lacks.
    pub degrade: bool,
}

/// Whether `node` runs sessions with the sandbox `need` asks for.
pub fn runs(node: &NodeInfo, need: Option<&Need>) -> bool {
    let (Some(need), Some(sandbox)) = (need, &node.sandbox) else {
        return true;
    };
    sandbox.policies.contains(&need.policy) && (need.degrade || sandbox.missing.is_empty())
}

/// Loads per processor closer than this are equal.
pub const LOAD_TIE: f64 = 0.25;

/// A node's one-minute load average per processor. Nodes on one kernel read the same load
/// average at different heartbeats: each is taken at the newest of their samples, so that a
/// load that moved between two samples does not send sessions from one to the other.
fn load_per_cpu(node: &NodeInfo, nodes: &[NodeInfo]) -> f64 {
    let load = if node.boot.is_empty() {
        node.load
    } else {
        nodes
            .iter()
            .filter(|n| n.boot == node.boot)
            .max_by_key(|n| n.heartbeat_ms)
            .map_or(node.load, |n| n.load)
    };
    load / f64::from(node.cpus.max(1))
}

/// The node a new session goes to, among `nodes` (the live ones), seen from `entry`; `None`
/// when there is none.
pub fn least_loaded<'a>(nodes: &'a [NodeInfo], entry: &str) -> Option<&'a NodeInfo> {
    least_loaded_for(nodes, entry, None)
}

/// [`least_loaded`] among the nodes that run the sandbox `need` asks for; `None` when none does.
pub fn least_loaded_for<'a>(
    nodes: &'a [NodeInfo],
    entry: &str,
    need: Option<&Need>,
) -> Option<&'a NodeInfo> {
    let able = || nodes.iter().filter(move |n| runs(n, need));
    let load = |n: &NodeInfo| load_per_cpu(n, nodes);
    let lightest = able().map(load).reduce(f64::min)?;
    let light = able().filter(|n| load(n) < lightest + LOAD_TIE);
    light.min_by(|a, b| {
        a.sessions
            .len()
            .cmp(&b.sessions.len())
            .then_with(|| (a.node != entry).cmp(&(b.node != entry)))
            .then_with(|| a.node.cmp(&b.node))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, load: f64, cpus: u32, sessions: usize) -> NodeInfo {
        NodeInfo {
            node: name.into(),
            host: "h".into(),
            pid: 1,
            version: "0".into(),
            sessions: (0..sessions).map(|i| i.to_string()).collect(),
            load,
            boot: String::new(),
            cpus,
            heartbeat_ms: 0,
            joined_ms: 0,
            sandbox: None,
        }
    }

    fn pick(nodes: &[NodeInfo], entry: &str) -> String {
        least_loaded(nodes, entry)
            .map(|n| n.node.clone())
            .unwrap_or_default()
    }

    #[test]
    fn the_lightest_load_per_processor_wins() {
        let nodes = [node("a", 3.0, 2, 0), node("b", 3.0, 8, 5)];
        assert_eq!(pick(&nodes, "a"), "b");
    }

    #[test]
    fn close_loads_are_equal_and_fewer_sessions_win() {
        let nodes = [
            node("a", 1.0, 4, 3),
            node("b", 1.5, 4, 1),
            node("c", 4.0, 1, 0),
        ];
        assert_eq!(pick(&nodes, "a"), "b");
    }

    #[test]
    fn a_tie_keeps_the_entry_node_then_goes_by_name() {
        let nodes = [
            node("a", 1.0, 2, 1),
            node("b", 1.0, 2, 1),
            node("c", 1.0, 2, 1),
        ];
        assert_eq!(pick(&nodes, "b"), "b");
        assert_eq!(pick(&nodes, "z"), "a");
        assert_eq!(pick(&[], "a"), "");
    }

    #[test]
    fn nodes_on_one_kernel_compare_on_the_newest_sample() {
        let on = |mut n: NodeInfo, boot: &str, heartbeat_ms: u64| {
            n.boot = boot.into();
            n.heartbeat_ms = heartbeat_ms;
            n
        };
        // The load rose from 1 to 3 between a's sample and b's, on one kernel: a tie, so the
        // entry node keeps the session (b's 3 stands for both).
        let shared = [
            on(node("a", 1.0, 2, 0), "k1", 100),
            on(node("b", 3.0, 2, 0), "k1", 600),
        ];
        assert_eq!(pick(&shared, "b"), "b");
        assert_eq!(pick(&shared, "a"), "a");
        // On two kernels the same samples are two hosts' loads: the lighter one wins.
        let apart = [
            on(node("a", 1.0, 2, 0), "k1", 100),
            on(node("b", 3.0, 2, 0), "k2", 600),
        ];
        assert_eq!(pick(&apart, "b"), "a");
        // Processors still count per node.
        let sizes = [
            on(node("a", 4.0, 8, 0), "k1", 100),
            on(node("b", 4.0, 2, 0), "k1", 600),
        ];
        assert_eq!(pick(&sizes, "b"), "a");
    }

    fn offering(mut n: NodeInfo, policies: &[&str], missing: &[&str]) -> NodeInfo {
        n.sandbox = Some(ai_session_protocol::cluster::NodeSandbox {
            policies: policies.iter().map(|p| p.to_string()).collect(),
            missing: missing.iter().map(|m| m.to_string()).collect(),
        });
        n
    }

    #[test]
    fn nodes_that_cannot_run_the_sandbox_are_set_aside() {
        let need = |policy: &str, degrade| Need {
            policy: policy.into(),
            degrade,
        };
        let nodes = [
            offering(node("a", 0.0, 4, 0), &[], &[]),
            offering(
                node("b", 3.0, 4, 2),
                &["read-only", "custom"],
                &["landlock"],
            ),
            offering(node("c", 3.0, 4, 3), &["read-only", "custom"], &[]),
        ];
        let pick =
            |need: Option<&Need>| least_loaded_for(&nodes, "a", need).map(|n| n.node.as_str());
        assert_eq!(pick(None), Some("a"), "no sandbox: the lightest");
        assert_eq!(pick(Some(&need("read-only", true))), Some("b"));
        assert_eq!(
            pick(Some(&need("custom", false))),
            Some("c"),
            "b lacks landlock"
        );
        assert_eq!(
            pick(Some(&need("no-network", true))),
            None,
            "no node takes it"
        );
        // A node that does not say takes any.
        let old = [node("z", 0.0, 1, 0)];
        assert!(least_loaded_for(&old, "z", Some(&need("custom", false))).is_some());
    }
}
