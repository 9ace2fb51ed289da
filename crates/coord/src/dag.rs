//! Dependency graphs of task batches: resolving keys, ordering, and rejecting cycles.
//!
//! A task submitted alone can only depend on tasks that already exist, so it can never close a
//! cycle. Cycles are only possible inside one batch, whose tasks may name each other by key; this
//! module checks such a batch before anything is created.

use std::collections::HashMap;

use crate::error::{CoordError, Result};
use crate::ids::TaskId;
use crate::task::{Dep, TaskSpec};

/// A resolved dependency of a batch entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Edge {
    /// A task that already exists.
    Existing(TaskId),
    /// Another entry of the same batch, by index.
    Local(usize),
}

/// A checked batch: every entry's dependencies, and an order in which each entry comes after the
/// batch entries it depends on.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) edges: Vec<Vec<Edge>>,
    pub(crate) order: Vec<usize>,
}

fn label(specs: &[TaskSpec], i: usize) -> String {
    specs[i].key.clone().unwrap_or_else(|| format!("#{i}"))
}

/// Resolves keys and orders the batch; fails on duplicate or unknown keys and on cycles.
pub(crate) fn plan(specs: &[TaskSpec]) -> Result<Plan> {
    let mut keys: HashMap<&str, usize> = HashMap::new();
    for (i, spec) in specs.iter().enumerate() {
        if let Some(key) = &spec.key {
            if keys.insert(key.as_str(), i).is_some() {
                return Err(CoordError::DuplicateKey { key: key.clone() });
            }
        }
    }
    let mut edges = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut out = Vec::with_capacity(spec.after.len());
        for dep in &spec.after {
            let edge = match dep {
                Dep::Task(id) => Edge::Existing(*id),
                Dep::Key(key) => match keys.get(key.as_str()) {
                    Some(&j) => Edge::Local(j),
                    None => return Err(CoordError::UnknownDependencyKey { key: key.clone() }),
                },
            };
            if !out.contains(&edge) {
                out.push(edge);
            }
        }
        edges.push(out);
    }
    let order = topological_order(&edges).map_err(|cycle| CoordError::Cycle {
        path: cycle.into_iter().map(|i| label(specs, i)).collect(),
    })?;
    Ok(Plan { edges, order })
}

/// Kahn's algorithm over the local edges. On failure returns one cycle, first node repeated last.
fn topological_order(edges: &[Vec<Edge>]) -> std::result::Result<Vec<usize>, Vec<usize>> {
    let n = edges.len();
    let mut indegree = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, deps) in edges.iter().enumerate() {
        for edge in deps {
            if let Edge::Local(j) = *edge {
                indegree[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(d);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(find_cycle(edges, &indegree))
}

/// Walks dependency edges from a node left over by Kahn's algorithm. Every leftover node has a
/// leftover dependency, so the walk must revisit a node; the revisited stretch is a cycle.
fn find_cycle(edges: &[Vec<Edge>], indegree: &[usize]) -> Vec<usize> {
    let Some(start) = (0..edges.len()).find(|&i| indegree[i] > 0) else {
        return Vec::new();
    };
    let mut seen_at: HashMap<usize, usize> = HashMap::new();
    let mut path = Vec::new();
    let mut node = start;
    loop {
        if let Some(&pos) = seen_at.get(&node) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(node);
            // Show the cycle in "runs after" order: each node waits for the next one.
            return cycle;
        }
        seen_at.insert(node, path.len());
        path.push(node);
        let next = edges[node].iter().find_map(|e| match *e {
            Edge::Local(j) if indegree[j] > 0 => Some(j),
            _ => None,
        });
        match next {
            Some(j) => node = j,
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_dependencies_first() {
        let specs = vec![
            TaskSpec::new("test").key("test").after("build"),
            TaskSpec::new("build").key("build").after("fetch"),
            TaskSpec::new("fetch").key("fetch"),
        ];
        let plan = plan(&specs).unwrap();
        let pos = |i: usize| plan.order.iter().position(|&x| x == i).unwrap();
        assert!(pos(2) < pos(1) && pos(1) < pos(0));
    }

    #[test]
    fn names_the_cycle() {
        let specs = vec![
            TaskSpec::new("a").key("a").after("c"),
            TaskSpec::new("b").key("b").after("a"),
            TaskSpec::new("c").key("c").after("b"),
            TaskSpec::new("d").key("d"),
        ];
        match plan(&specs) {
            Err(CoordError::Cycle { path }) => {
                assert_eq!(path.len(), 4, "{path:?}");
                assert_eq!(path.first(), path.last());
                for k in ["a", "b", "c"] {
                    assert!(path.contains(&k.to_string()));
                }
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let specs = vec![TaskSpec::new("a").key("a").after("a")];
        assert!(matches!(plan(&specs), Err(CoordError::Cycle { .. })));
    }

    #[test]
    fn unknown_and_duplicate_keys() {
        let specs = vec![TaskSpec::new("a").after("nope")];
        assert!(matches!(
            plan(&specs),
            Err(CoordError::UnknownDependencyKey { .. })
        ));
        let specs = vec![TaskSpec::new("a").key("x"), TaskSpec::new("b").key("x")];
        assert!(matches!(plan(&specs), Err(CoordError::DuplicateKey { .. })));
    }
}
