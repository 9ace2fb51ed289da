//! The session a request was checked against. A request names its session; the name is
//! resolved to the session's id once, when the request arrives, and the capability check and
//! the operation both use that id. A session killed and created again under the same name
//! between the check and the operation is not the one acted on: the operation answers
//! `session_not_found` ([`ai_session_core::Error::Replaced`]) instead of reaching a session the
//! caller's grant never covered.

use ai_session_core::{Error as CoreError, SessionHandle, SessionManager};

use crate::access::Sessions;

/// A request's target: its name and the id that name had when the request arrived.
#[derive(Clone, Debug)]
pub(crate) struct Pin {
    name: String,
    id: String,
}

tokio::task_local! {
    static PINNED: Option<Pin>;
}

impl Pin {
    /// The target of a request naming `name` now, if a session has that name.
    pub(crate) fn take(manager: &SessionManager, name: Option<&str>) -> Option<Pin> {
        let name = name?;
        Some(Pin {
            id: manager.id_of(name)?,
            name: name.to_owned(),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

/// Runs `op` with `pin` as its request's target (not an `async fn`, which would hold `op`
/// twice: see `telemetry::with_caller_trace`).
pub(crate) fn scope<F: std::future::Future>(
    pin: Option<Pin>,
    op: F,
) -> impl std::future::Future<Output = F::Output> {
    PINNED.scope(pin, op)
}

/// The id the running request's target `name` was resolved to, if it is the target.
fn pinned_id(name: &str) -> Option<String> {
    PINNED
        .try_with(|p| p.as_ref().filter(|p| p.name == name).map(|p| p.id.clone()))
        .ok()
        .flatten()
}

/// The session called `name`: the very one the request was checked against when `name` is its
/// target.
pub(crate) fn get(manager: &SessionManager, name: &str) -> Result<SessionHandle, CoreError> {
    match pinned_id(name) {
        Some(id) => manager.get_exact(name, &id),
        None => manager.get(name),
    }
}

/// The id of the session called `name`: the pinned one when `name` is the request's target.
pub(crate) fn id_of(manager: &SessionManager, name: &str) -> Option<String> {
    pinned_id(name).or_else(|| manager.id_of(name))
}

/// Kills the session called `name`, the one the request was checked against.
pub(crate) async fn kill(manager: &SessionManager, name: &str) -> Result<(), CoreError> {
    manager.kill_exact(name, pinned_id(name).as_deref()).await
}

/// The sessions as the capability check sees them: the request's target by its pinned id.
pub(crate) struct Checked<'a> {
    pub manager: &'a SessionManager,
    pub pin: Option<&'a Pin>,
}

impl Sessions for Checked<'_> {
    fn find(&self, target: &str) -> Option<(String, String)> {
        self.manager.find(target)
    }

    fn id_of(&self, name: &str) -> Option<String> {
        match self.pin {
            Some(p) if p.name == name => Some(p.id.clone()),
            _ => self.manager.id_of(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai_session_core::ManagerConfig;
    use ai_session_protocol::methods::NewParams;

    fn params(name: &str) -> NewParams {
        NewParams {
            name: Some(name.into()),
            shell: Some("/bin/sh".into()),
            ..Default::default()
        }
    }

    /// The window between a request's check and its operation: the checked session is killed
    /// and another created under its name. The operation must not reach the newcomer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_replaced_after_the_check_is_not_the_one_acted_on() {
        let dir = tempfile::tempdir().unwrap();
        let manager = SessionManager::new(ManagerConfig::new(dir.path())).unwrap();
        let old = manager.create(params("deploy")).await.unwrap();
        let pin = Pin::take(&manager, Some("deploy")).unwrap();
        assert_eq!(pin.id(), old.id);

        manager.kill("deploy").await.unwrap();
        let new = manager.create(params("deploy")).await.unwrap();
        assert_ne!(new.id, old.id);

        let checked = Checked {
            manager: &manager,
            pin: Some(&pin),
        };
        assert_eq!(checked.id_of("deploy").as_deref(), Some(old.id.as_str()));
        scope(Some(pin), async {
            let got = get(&manager, "deploy").map(|h| h.id().to_owned());
            assert!(matches!(got, Err(CoreError::Replaced(_))), "{got:?}");
            let killed = kill(&manager, "deploy").await;
            assert!(matches!(killed, Err(CoreError::Replaced(_))), "{killed:?}");
            assert_eq!(id_of(&manager, "deploy").as_deref(), Some(old.id.as_str()));
            // Another session the request does not target is looked up as usual.
            assert!(matches!(
                get(&manager, "other"),
                Err(CoreError::NotFound { .. })
            ));
        })
        .await;
        // The newcomer was left alone, and outside the request it is found by its name.
        assert_eq!(get(&manager, "deploy").unwrap().id(), new.id);
        manager.shutdown().await;
    }
}
