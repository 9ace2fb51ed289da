//! The library's `ExternalIntegration` trait: an integration of the test's own, registered on
//! an in-process `SessionManager`, told of real sessions and commands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ai_session_core::integration::{CommandFinished, SessionEnd};
use ai_session_core::protocol::methods::{ExecParams, NewParams, SessionInfo};
use ai_session_core::{
    ExternalIntegration, IntegrationError, IntegrationEvent, ManagerConfig, SessionManager,
};
use serde_json::{Value, json};

/// Records what it is told; refuses to start when asked to.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    refuse: bool,
}

#[async_trait::async_trait]
impl ExternalIntegration for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn initialize(&self) -> Result<(), IntegrationError> {
        if self.refuse {
            return Err(IntegrationError::Failed("not today".into()));
        }
        Ok(())
    }

    async fn on_session_created(&self, s: &SessionInfo) -> Result<(), IntegrationError> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("created {}", s.name));
        Ok(())
    }

    async fn on_session_terminated(&self, end: &SessionEnd) -> Result<(), IntegrationError> {
        self.seen.lock().unwrap().push(format!(
            "terminated {} killed={} code={:?}",
            end.session, end.killed, end.exit_code
        ));
        Ok(())
    }

    async fn on_command_finished(&self, c: &CommandFinished) -> Result<(), IntegrationError> {
        self.seen.lock().unwrap().push(format!(
            "finished {} `{}` -> {:?} {:?}",
            c.session,
            c.command,
            c.result.exit_code,
            c.result.output.trim()
        ));
        if c.command.contains("fail-me") {
            return Err(IntegrationError::Failed("asked to fail".into()));
        }
        Ok(())
    }

    async fn on_other(&self, kind: &str, data: &Value) -> Result<(), IntegrationError> {
        self.seen.lock().unwrap().push(format!("{kind} {data}"));
        Ok(())
    }

    async fn export_session_data(&self, session: &str) -> Result<Value, IntegrationError> {
        let seen = self.seen.lock().unwrap();
        let mine: Vec<&String> = seen.iter().filter(|l| l.contains(session)).collect();
        Ok(json!({ "events": mine }))
    }
}

fn exec(target: &str, command: &str) -> ExecParams {
    ExecParams {
        target: target.into(),
        command: command.into(),
        timeout_ms: Some(20_000),
        idle_timeout_ms: None,
        max_output_bytes: None,
        view_budget: None,
        stdin_b64: None,
        view_only: false,
    }
}

fn params(name: &str, shell: &str) -> NewParams {
    NewParams {
        name: Some(name.into()),
        shell: Some(shell.into()),
        env: Some(
            [
                (
                    "HOME".to_owned(),
                    std::env::temp_dir().display().to_string(),
                ),
                ("PATH".to_owned(), std::env::var("PATH").unwrap()),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_integration_hears_of_sessions_and_commands_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let manager = SessionManager::new(ManagerConfig::new(dir.path())).unwrap();
    let refused = manager
        .register_integration(Arc::new(Recorder {
            refuse: true,
            ..Recorder::default()
        }))
        .await;
    assert!(
        refused.is_err(),
        "initialize's error refuses the registration"
    );
    assert!(manager.integrations().is_empty());

    let rec = Arc::new(Recorder::default());
    manager.register_integration(rec.clone()).await.unwrap();
    let again = manager
        .register_integration(Arc::new(Recorder::default()))
        .await;
    assert!(
        matches!(again, Err(IntegrationError::Duplicate(_))),
        "{again:?}"
    );

    let info = manager.create(params("lib", "/bin/bash")).await.unwrap();
    let h = manager.get(&info.name).unwrap();
    h.exec(exec("lib", "echo hello")).await.unwrap();
    h.exec(exec("lib", "echo fail-me; (exit 3)")).await.unwrap();
    manager.integrations().fire(IntegrationEvent::Other {
        kind: "task-done".into(),
        data: json!({ "id": 7 }),
    });
    manager.kill("lib").await.unwrap();
    // A program that exits by itself ends its session too.
    manager.create(params("short", "/bin/sh")).await.unwrap();
    manager
        .get("short")
        .unwrap()
        .write(b"exit 4\n".to_vec())
        .await
        .unwrap();
    until("both ends", || rec.seen.lock().unwrap().len() >= 7).await;
    manager.integrations().flush("recorder").await;
    let seen = rec.seen.lock().unwrap().clone();
    assert!(
        seen[4].starts_with("terminated lib killed=true"),
        "{seen:#?}"
    );
    assert_eq!(
        seen[..4],
        [
            "created lib",
            "finished lib `echo hello` -> Some(0) \"hello\"",
            "finished lib `echo fail-me; (exit 3)` -> Some(3) \"fail-me\"",
            "task-done {\"id\":7}",
        ],
        "{seen:#?}"
    );
    assert_eq!(seen[5], "created short");
    assert_eq!(seen[6], "terminated short killed=false code=Some(4)");
    assert_eq!(seen.len(), 7, "one end per session: {seen:#?}");

    let stats = manager.integrations().stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].delivered, stats[0].failed, stats[0].dropped),
        (6, 1, 0)
    );
    assert!(
        stats[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("asked to fail")
    );

    let exported = manager.export_session_data("lib").await;
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0].0, "recorder");
    assert_eq!(exported[0].1["events"].as_array().unwrap().len(), 4);
    manager.shutdown().await;
}

/// An integration that never returns: the operations that fire events go on, and its queue
/// fills to its bound, then drops and counts.
struct Stuck;

#[async_trait::async_trait]
impl ExternalIntegration for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }

    async fn on_other(&self, _: &str, _: &Value) -> Result<(), IntegrationError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_integration_blocks_nothing_and_its_queue_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let manager = SessionManager::new(ManagerConfig::new(dir.path())).unwrap();
    manager.register_integration(Arc::new(Stuck)).await.unwrap();
    let n = ai_session_core::integration::QUEUE + 50;
    for i in 0..n {
        manager.integrations().fire(IntegrationEvent::Other {
            kind: "x".into(),
            data: json!(i),
        });
    }
    // One event is being handled (forever), QUEUE wait, the rest were dropped.
    until("the integration to take its first event", || {
        let s = &manager.integrations().stats()[0];
        s.queued + s.dropped + 1 == n as u64
    })
    .await;
    let s = &manager.integrations().stats()[0];
    assert_eq!(s.delivered, 0);
    assert!(
        s.queued as usize >= ai_session_core::integration::QUEUE - 1,
        "{s:?}"
    );
    assert!(s.dropped >= 49, "{s:?}");
    // Sessions still work.
    manager.create(params("free", "/bin/bash")).await.unwrap();
    let r = manager
        .get("free")
        .unwrap()
        .exec(exec("free", "echo ok"))
        .await
        .unwrap();
    assert_eq!(r.output, "ok\n");
    manager.shutdown().await;
}
