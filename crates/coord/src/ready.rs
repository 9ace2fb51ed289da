//! The ready queue: tasks that could run now, grouped by the exact set of capabilities they need.
//!
//! Grouping makes a scheduling pass cost O(groups x agents) instead of O(tasks): real workloads
//! have a handful of distinct capability sets, and within a group the best task is the first
//! element of an ordered set.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::ids::TaskId;

/// A sorted, duplicate-free set of capability names, shared by every task that needs exactly it.
pub(crate) type CapSet = Arc<[String]>;

/// Position of a ready task: by strategy rank, then submission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReadyKey {
    pub(crate) rank: i64,
    pub(crate) seq: u64,
    pub(crate) id: TaskId,
}

#[derive(Default)]
pub(crate) struct ReadyIndex {
    groups: HashMap<CapSet, BTreeSet<ReadyKey>>,
    len: usize,
}

impl ReadyIndex {
    /// The shared `CapSet` equal to `caps`, reusing an existing group's allocation.
    pub(crate) fn intern(&self, caps: &[String]) -> CapSet {
        match self.groups.get_key_value(caps) {
            Some((k, _)) => k.clone(),
            None => Arc::from(caps),
        }
    }

    pub(crate) fn insert(&mut self, caps: &CapSet, key: ReadyKey) {
        if self.groups.entry(caps.clone()).or_default().insert(key) {
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, caps: &CapSet, key: &ReadyKey) -> bool {
        let Some(group) = self.groups.get_mut(caps) else {
            return false;
        };
        let removed = group.remove(key);
        if group.is_empty() {
            self.groups.remove(caps);
        }
        if removed {
            self.len -= 1;
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The best task of every group, best first.
    pub(crate) fn heads(&self) -> Vec<(ReadyKey, CapSet)> {
        let mut heads: Vec<(ReadyKey, CapSet)> = self
            .groups
            .iter()
            .filter_map(|(caps, set)| set.first().map(|k| (*k, caps.clone())))
            .collect();
        heads.sort_by_key(|(k, _)| *k);
        heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_best_first_across_groups() {
        let mut idx = ReadyIndex::default();
        let rust = idx.intern(&["rust".to_string()]);
        let none = idx.intern(&[]);
        idx.insert(
            &rust,
            ReadyKey {
                rank: -1,
                seq: 5,
                id: TaskId(5),
            },
        );
        idx.insert(
            &rust,
            ReadyKey {
                rank: -9,
                seq: 6,
                id: TaskId(6),
            },
        );
        idx.insert(
            &none,
            ReadyKey {
                rank: -3,
                seq: 1,
                id: TaskId(1),
            },
        );
        let heads: Vec<TaskId> = idx.heads().into_iter().map(|(k, _)| k.id).collect();
        assert_eq!(heads, vec![TaskId(6), TaskId(1)]);
        assert!(idx.remove(
            &rust,
            &ReadyKey {
                rank: -9,
                seq: 6,
                id: TaskId(6)
            }
        ));
        assert_eq!(idx.len(), 2);
        assert!(Arc::ptr_eq(&idx.intern(&["rust".to_string()]), &rust));
    }
}
