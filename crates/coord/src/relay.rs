//! The bus beyond this process: a [`Relay`] the daemon installs when it is in a cluster, told of
//! every topic message, broadcast and dead letter made here so that it can carry them to the
//! other nodes. A coordinator without one (a daemon on its own) pays one pointer check.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::deadletter::DeadLetter;
use crate::ids::AgentId;

/// The work of relaying one message: awaited by the publisher, so a slow network slows
/// publishers down instead of piling messages up in memory.
pub type Relaying<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Carries what happens on this coordinator's bus to other nodes.
pub trait Relay: Send + Sync {
    /// A message was published on `topic` here (by `from`, when an agent signed it).
    fn topic<'a>(
        &'a self,
        topic: &'a str,
        from: Option<AgentId>,
        payload: &'a Value,
    ) -> Relaying<'a>;
    /// A message was broadcast to every agent from here.
    fn broadcast<'a>(&'a self, from: Option<AgentId>, payload: &'a Value) -> Relaying<'a>;
    /// Something could not be delivered here and was dead-lettered. Called with the
    /// dead-letter queue locked: queue the work and return at once.
    fn dead_letter(&self, letter: &DeadLetter);
}

/// The relay slot, set at most once.
pub(crate) type Slot = Arc<OnceLock<Arc<dyn Relay>>>;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};

    use super::{Relay, Relaying};
    use crate::{AgentId, AgentSpec, CoordConfig, Coordinator, DeadLetter};

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Relay for Log {
        fn topic<'a>(
            &'a self,
            topic: &'a str,
            from: Option<AgentId>,
            payload: &'a Value,
        ) -> Relaying<'a> {
            let line = format!("topic {topic} {from:?} {payload}");
            Box::pin(async move { self.0.lock().unwrap().push(line) })
        }

        fn broadcast<'a>(&'a self, from: Option<AgentId>, payload: &'a Value) -> Relaying<'a> {
            let line = format!("broadcast {from:?} {payload}");
            Box::pin(async move { self.0.lock().unwrap().push(line) })
        }

        fn dead_letter(&self, letter: &DeadLetter) {
            self.0
                .lock()
                .unwrap()
                .push(format!("dead {:?}", letter.recipient));
        }
    }

    #[tokio::test]
    async fn a_relay_gets_what_is_made_here_and_not_what_came_from_elsewhere() {
        let coord = Coordinator::new(CoordConfig::default());
        let log = Arc::new(Log::default());
        assert!(coord.set_relay(log.clone()));
        assert!(!coord.set_relay(log.clone()), "installed once");
        let mut sub = coord.subscribe("news");
        coord.publish(None, "news", json!(1)).await.unwrap();
        coord
            .deliver_topic("news", Some(AgentId(7)), json!(2))
            .await;
        assert_eq!(sub.recv().await.unwrap().payload, json!(1));
        assert_eq!(sub.recv().await.unwrap().payload, json!(2));
        coord.broadcast(None, json!(3)).await.unwrap();
        coord.deliver_broadcast(None, json!(4)).await;
        let reg = coord
            .register_as(AgentSpec::new("far"), AgentId(40), crate::Token::generate())
            .unwrap();
        assert_eq!(reg.info.id, AgentId(40));
        let next = coord.register(AgentSpec::new("next")).unwrap();
        assert_eq!(
            next.info.id,
            AgentId(41),
            "local ids continue after the cluster's"
        );
        coord.unregister(&reg.auth).unwrap();
        coord.send(None, AgentId(40), json!(5)).await.unwrap();
        assert_eq!(
            *log.0.lock().unwrap(),
            vec![
                "topic news None 1",
                "broadcast None 3",
                "dead Some(\"agent-40\")"
            ]
        );
    }
}
