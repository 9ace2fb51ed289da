//! Identifiers handed out by the coordinator: agents, tasks, messages and request correlations.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }
    };
}

id_type!(
    /// A registered agent. Never reused within one coordinator.
    AgentId,
    "agent-"
);
id_type!(
    /// A submitted task. Never reused within one coordinator.
    TaskId,
    "task-"
);
id_type!(
    /// A message on the bus. Increases with every message sent.
    MessageId,
    "msg-"
);
id_type!(
    /// Ties a reply to the request it answers.
    CorrelationId,
    "req-"
);
