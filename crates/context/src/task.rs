//! Task contexts: entries scoped to a task id; a task may have a parent whose context it inherits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ContextError;

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskContext {
    /// The id entries are scoped with.
    pub id: String,
    /// The parent task, whose context this one inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// A title, shown in views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Entries scoped to it so far.
    pub entries: u64,
}

/// The tasks of one context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tasks {
    tasks: BTreeMap<String, TaskContext>,
}

impl Tasks {
    /// Creates or updates a task. The parent must exist and must not have `id` among its
    /// ancestors.
    pub fn upsert(
        &mut self,
        id: &str,
        parent: Option<&str>,
        title: Option<&str>,
    ) -> Result<(), ContextError> {
        if let Some(p) = parent {
            if !self.tasks.contains_key(p) {
                return Err(ContextError::UnknownTask(p.to_string()));
            }
            if p == id || self.lineage(p).iter().any(|(t, _)| t == id) {
                return Err(ContextError::TaskCycle(id.to_string()));
            }
        }
        let t = self
            .tasks
            .entry(id.to_string())
            .or_insert_with(|| TaskContext {
                id: id.to_string(),
                parent: None,
                title: None,
                entries: 0,
            });
        if parent.is_some() {
            t.parent = parent.map(str::to_string);
        }
        if title.is_some() {
            t.title = title.map(str::to_string);
        }
        Ok(())
    }

    /// Counts an entry for `id`, creating a parentless task the first time it is seen.
    pub fn count_entry(&mut self, id: &str) {
        let t = self
            .tasks
            .entry(id.to_string())
            .or_insert_with(|| TaskContext {
                id: id.to_string(),
                parent: None,
                title: None,
                entries: 0,
            });
        t.entries += 1;
    }

    /// The task.
    pub fn get(&self, id: &str) -> Option<&TaskContext> {
        self.tasks.get(id)
    }

    /// All tasks.
    pub fn iter(&self) -> impl Iterator<Item = &TaskContext> {
        self.tasks.values()
    }

    /// `id` and its ancestors with their depth (0 for `id`), nearest first.
    pub fn lineage(&self, id: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        let mut cur = Some(id.to_string());
        let mut depth = 0;
        while let Some(c) = cur {
            if out.iter().any(|(t, _)| t == &c) {
                break;
            }
            cur = self.tasks.get(&c).and_then(|t| t.parent.clone());
            out.push((c, depth));
            depth += 1;
        }
        out
    }
}
