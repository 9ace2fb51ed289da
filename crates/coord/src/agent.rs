//! The agent registry: who is registered, with which capabilities, and whether it is still alive.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::auth::{AgentAuth, Token};
use crate::error::{CoordError, Result};
use crate::event::LeaveReason;
use crate::ids::AgentId;
use crate::message::now_ms;

/// How many departed agents stay listed (with status `gone`) before the oldest are forgotten.
const GONE_KEPT: usize = 1024;

/// What an agent declares when it registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub name: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The terminal session this agent works in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Tasks it may hold at once (assigned or running); at least 1.
    #[serde(default = "one")]
    pub max_tasks: usize,
}

fn one() -> usize {
    1
}

impl AgentSpec {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            capabilities: Vec::new(),
            session: None,
            max_tasks: 1,
        }
    }

    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capabilities.push(capability.into());
        self
    }

    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    pub fn max_tasks(mut self, n: usize) -> Self {
        self.max_tasks = n;
        self
    }
}

/// Whether an agent is still there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Gone { reason: LeaveReason, at_ms: u64 },
}

/// A registered agent as shown to callers.
///
/// JSON shape: `{"id":1,"name":"builder","capabilities":["rust"],"session":"s1","max_tasks":1,
/// "status":"active","registered_at_ms":..,"last_heartbeat_ms":..,"load":0}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: AgentId,
    pub name: String,
    /// Sorted, without duplicates.
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub max_tasks: usize,
    #[serde(flatten)]
    pub status: AgentStatus,
    pub registered_at_ms: u64,
    pub last_heartbeat_ms: u64,
    /// Tasks currently assigned to or running on it.
    #[serde(default)]
    pub load: usize,
}

impl AgentInfo {
    pub fn is_active(&self) -> bool {
        self.status == AgentStatus::Active
    }
}

struct Entry {
    info: AgentInfo,
    token: Token,
    last_seen: Instant,
}

/// Registered agents. Owned by the coordinator behind one lock.
pub(crate) struct Registry {
    agents: HashMap<AgentId, Entry>,
    by_name: HashMap<String, AgentId>,
    /// At most one entry per active agent; an entry may be earlier than the agent's real deadline
    /// (it heartbeated since), in which case it is pushed back when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, AgentId)>>,
    gone: VecDeque<AgentId>,
    next_id: u64,
    heartbeat_deadline: Duration,
}

impl Registry {
    pub(crate) fn new(heartbeat_deadline: Duration) -> Self {
        Self {
            agents: HashMap::new(),
            by_name: HashMap::new(),
            deadlines: BinaryHeap::new(),
            gone: VecDeque::new(),
            next_id: 1,
            heartbeat_deadline,
        }
    }

    /// Hands out ids from `first` on (at least 1).
    pub(crate) fn starting_at(mut self, first: u64) -> Self {
        self.next_id = first.max(1);
        self
    }

    pub(crate) fn register(
        &mut self,
        spec: AgentSpec,
        now: Instant,
    ) -> Result<(AgentInfo, AgentAuth)> {
        let id = AgentId(self.next_id);
        self.register_as(spec, now, id, Token::generate())
    }

    /// Registers under an id and a token chosen by the caller (a cluster hands out ids unique
    /// across its nodes); later local ids come after it.
    pub(crate) fn register_as(
        &mut self,
        spec: AgentSpec,
        now: Instant,
        id: AgentId,
        token: Token,
    ) -> Result<(AgentInfo, AgentAuth)> {
        if self.agents.contains_key(&id) || id.0 == 0 {
            return Err(CoordError::InvalidAgent(format!("the id {id} is taken")));
        }
        let name = spec.name.trim().to_string();
        if name.is_empty() {
            return Err(CoordError::InvalidAgent("the name is empty".into()));
        }
        if spec.capabilities.iter().any(|c| c.trim().is_empty()) {
            return Err(CoordError::InvalidAgent("a capability is empty".into()));
        }
        if self.by_name.contains_key(&name) {
            return Err(CoordError::NameTaken { name });
        }
        let capabilities: BTreeSet<String> = spec
            .capabilities
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        self.next_id = self.next_id.max(id.0 + 1);
        let at = now_ms();
        let info = AgentInfo {
            id,
            name: name.clone(),
            capabilities: capabilities.into_iter().collect(),
            session: spec.session,
            max_tasks: spec.max_tasks.max(1),
            status: AgentStatus::Active,
            registered_at_ms: at,
            last_heartbeat_ms: at,
            load: 0,
        };
        self.agents.insert(
            id,
            Entry {
                info: info.clone(),
                token: token.clone(),
                last_seen: now,
            },
        );
        self.by_name.insert(name, id);
        self.deadlines
            .push(Reverse((now + self.heartbeat_deadline, id)));
        Ok((info, AgentAuth { agent: id, token }))
    }

    /// Checks that `auth` is the live agent it claims to be. A wrong token is `Unauthorized` even for
    /// a departed agent, so a guesser learns nothing about which agents exist beyond their ids.
    pub(crate) fn verify(&self, auth: &AgentAuth, action: &'static str) -> Result<()> {
        let Some(entry) = self.agents.get(&auth.agent) else {
            return Err(CoordError::Unauthorized {
                agent: auth.agent,
                action,
            });
        };
        if !entry.token.matches(&auth.token) {
            return Err(CoordError::Unauthorized {
                agent: auth.agent,
                action,
            });
        }
        if !entry.info.is_active() {
            return Err(CoordError::AgentGone { agent: auth.agent });
        }
        Ok(())
    }

    pub(crate) fn heartbeat(&mut self, auth: &AgentAuth, now: Instant) -> Result<()> {
        self.verify(auth, "heartbeat")?;
        if let Some(entry) = self.agents.get_mut(&auth.agent) {
            entry.last_seen = now;
            entry.info.last_heartbeat_ms = now_ms();
        }
        Ok(())
    }

    /// Marks an agent gone. Returns its info if it was active.
    pub(crate) fn leave(&mut self, agent: AgentId, reason: LeaveReason) -> Option<AgentInfo> {
        let entry = self.agents.get_mut(&agent)?;
        if !entry.info.is_active() {
            return None;
        }
        entry.info.status = AgentStatus::Gone {
            reason,
            at_ms: now_ms(),
        };
        let info = entry.info.clone();
        self.by_name.remove(&info.name);
        self.gone.push_back(agent);
        while self.gone.len() > GONE_KEPT {
            if let Some(old) = self.gone.pop_front() {
                self.agents.remove(&old);
            }
        }
        Some(info)
    }

    /// Active agents whose last heartbeat is older than the deadline.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<AgentId> {
        let mut out = Vec::new();
        while let Some(Reverse((at, agent))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.agents.get(&agent) else {
                continue;
            };
            if !entry.info.is_active() {
                continue;
            }
            let real = entry.last_seen + self.heartbeat_deadline;
            if real > now {
                self.deadlines.push(Reverse((real, agent)));
            } else {
                out.push(agent);
            }
        }
        out
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    pub(crate) fn get(&self, agent: AgentId) -> Result<AgentInfo> {
        self.agents
            .get(&agent)
            .map(|e| e.info.clone())
            .ok_or(CoordError::UnknownAgent(agent))
    }

    pub(crate) fn find(&self, name: &str) -> Result<AgentInfo> {
        self.by_name
            .get(name)
            .and_then(|id| self.agents.get(id))
            .map(|e| e.info.clone())
            .ok_or_else(|| CoordError::UnknownAgentName(name.to_string()))
    }

    /// All agents, active and recently gone, by id.
    pub(crate) fn list(&self) -> Vec<AgentInfo> {
        let mut out: Vec<AgentInfo> = self.agents.values().map(|e| e.info.clone()).collect();
        out.sort_by_key(|a| a.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn heartbeat_pushes_the_deadline_back() {
        let mut reg = Registry::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let (info, auth) = reg
            .register(AgentSpec::new("a").capability("rust"), t0)
            .unwrap();
        reg.heartbeat(&auth, t0 + Duration::from_secs(8)).unwrap();
        assert!(reg.expired(t0 + Duration::from_secs(12)).is_empty());
        assert_eq!(reg.expired(t0 + Duration::from_secs(18)), vec![info.id]);
    }

    #[tokio::test(start_paused = true)]
    async fn names_are_unique_among_active_agents_only() {
        let mut reg = Registry::new(Duration::from_secs(10));
        let now = Instant::now();
        let (info, _) = reg.register(AgentSpec::new("a"), now).unwrap();
        assert!(matches!(
            reg.register(AgentSpec::new("a"), now),
            Err(CoordError::NameTaken { .. })
        ));
        reg.leave(info.id, LeaveReason::Unregistered);
        assert!(reg.register(AgentSpec::new("a"), now).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_token_is_unauthorized() {
        let mut reg = Registry::new(Duration::from_secs(10));
        let now = Instant::now();
        let (_, a) = reg.register(AgentSpec::new("a"), now).unwrap();
        let (_, b) = reg.register(AgentSpec::new("b"), now).unwrap();
        let forged = AgentAuth {
            agent: a.agent,
            token: b.token.clone(),
        };
        assert!(matches!(
            reg.verify(&forged, "claim"),
            Err(CoordError::Unauthorized { .. })
        ));
        assert!(reg.verify(&a, "claim").is_ok());
    }
}
