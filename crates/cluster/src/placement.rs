//! Where a session without `--node` starts: the least-loaded live node.
//!
//! The rule, in order: the lowest one-minute load average per processor, loads closer than
//! [`LOAD_TIE`] counting as equal (a load average moves by that much on its own); then the
//! fewest sessions; then the entry node (the one the client talks to), so a cluster of equal
//! nodes behaves as one daemon does; then the node name, so every node decides alike.

use ai_session_protocol::cluster::NodeInfo;

/// Loads per processor closer than this are equal.
pub const LOAD_TIE: f64 = 0.25;

/// A node's one-minute load average per processor.
fn load_per_cpu(node: &NodeInfo) -> f64 {
    node.load / f64::from(node.cpus.max(1))
}

/// The node a new session goes to, among `nodes` (the live ones), seen from `entry`; `None`
/// when there is none.
pub fn least_loaded<'a>(nodes: &'a [NodeInfo], entry: &str) -> Option<&'a NodeInfo> {
    let lightest = nodes.iter().map(load_per_cpu).reduce(f64::min)?;
    let light = nodes
        .iter()
        .filter(|n| load_per_cpu(n) < lightest + LOAD_TIE);
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
            cpus,
            heartbeat_ms: 0,
            joined_ms: 0,
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
}
