//! Retries with backoff, dead-lettering, task timeouts and heartbeat loss, on paused Tokio time.

use std::time::Duration;

use ai_session_coord::{
    CoordConfig, Coordinator, DeadItem, DeadReason, Event, LeaveReason, TaskSpec, TaskState,
};
use serde_json::json;
use tokio::time::Instant;

use super::common::{agent, config, next_event};

fn assigned(e: &Event) -> bool {
    matches!(
        e,
        Event::TaskStateChanged {
            state: TaskState::Assigned,
            ..
        }
    )
}

#[tokio::test(start_paused = true)]
async fn failures_retry_with_exponential_backoff_then_dead_letter() {
    let c = Coordinator::new(config()); // retry_base 1 s
    let mut events = c.events();
    let w = agent(&c, "w", &[]);
    let t = c.submit(TaskSpec::new("flaky").max_retries(2)).unwrap();
    let child = c.submit(TaskSpec::new("after flaky").after(t)).unwrap();
    let grandchild = c.submit(TaskSpec::new("after child").after(child)).unwrap();

    next_event(&mut events, assigned).await; // the first assignment, at submission
    let mut failed_at = Vec::new();
    for attempt in 1..=3u32 {
        let got = c.claim(&w.auth).unwrap().unwrap();
        assert_eq!(got.id, t);
        let after = c.fail(&w.auth, t, format!("boom {attempt}")).unwrap();
        assert_eq!(after.attempts, attempt);
        failed_at.push(Instant::now());
        if attempt == 3 {
            assert_eq!(after.state, TaskState::DeadLettered);
            break;
        }
        assert_eq!(after.state, TaskState::Queued);
        // Still backing off: nothing to claim yet.
        assert_eq!(c.claim(&w.auth).unwrap(), None);
        next_event(&mut events, assigned).await;
        let waited = Instant::now() - failed_at[failed_at.len() - 1];
        assert_eq!(
            waited,
            Duration::from_secs(1 << (attempt - 1)),
            "backoff of attempt {attempt}"
        );
    }

    let dead = c.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].reason,
        DeadReason::RetriesExhausted {
            attempts: 3,
            last_error: "boom 3".into()
        }
    );
    assert!(matches!(&dead[0].item, DeadItem::Task(task) if task.id == t));
    // What waited on it can never run.
    assert_eq!(c.task(child).unwrap().state, TaskState::Failed);
    assert_eq!(c.task(grandchild).unwrap().state, TaskState::Failed);
    let err = c.submit(TaskSpec::new("more").after(t)).unwrap_err();
    assert_eq!(err.code(), "dependency_failed");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried_and_the_old_holder_is_refused() {
    let c = Coordinator::new(config());
    let mut events = c.events();
    let slow = agent(&c, "slow", &[]);
    let t = c
        .submit(
            TaskSpec::new("t")
                .timeout(Duration::from_secs(5))
                .max_retries(1),
        )
        .unwrap();
    c.claim(&slow.auth).unwrap().unwrap();
    let start = Instant::now();
    let e = next_event(&mut events, |e| {
        matches!(e, Event::TaskStateChanged { state: TaskState::Queued, reason: Some(r), .. } if r.starts_with("timed out"))
    })
    .await;
    assert_eq!(Instant::now() - start, Duration::from_secs(5));
    assert!(matches!(e, Event::TaskStateChanged { attempts: 1, .. }));
    let err = c.done(&slow.auth, t, json!(null)).unwrap_err();
    assert_eq!(err.code(), "not_task_holder");

    // After the 1 s backoff it is assigned again; a second timeout dead-letters it.
    next_event(&mut events, assigned).await;
    c.claim(&slow.auth).unwrap().unwrap();
    next_event(&mut events, |e| {
        matches!(
            e,
            Event::TaskStateChanged {
                state: TaskState::DeadLettered,
                ..
            }
        )
    })
    .await;
    assert_eq!(c.task(t).unwrap().attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_stops_heartbeating_loses_its_tasks_to_the_queue() {
    let c = Coordinator::new(CoordConfig {
        heartbeat_deadline: Duration::from_secs(10),
        ..config()
    });
    let mut events = c.events();
    let quiet = agent(&c, "quiet", &["rust"]);
    let t = c.submit(TaskSpec::new("t").needs("rust")).unwrap();
    assert_eq!(c.claim(&quiet.auth).unwrap().unwrap().id, t);
    let alive = agent(&c, "alive", &["rust"]);
    let keeper = {
        let c = c.clone();
        let auth = alive.auth.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3));
            loop {
                every.tick().await;
                if c.heartbeat(&auth).is_err() {
                    return;
                }
            }
        })
    };
    let start = Instant::now();
    let left = next_event(&mut events, |e| matches!(e, Event::AgentLeft { .. })).await;
    assert_eq!(
        left,
        Event::AgentLeft {
            agent: quiet.info.id,
            name: "quiet".into(),
            reason: LeaveReason::HeartbeatLost,
            requeued: vec![t],
        }
    );
    assert_eq!(Instant::now() - start, Duration::from_secs(10));
    // The task went back to the queue, then to the agent that is still alive, attempts untouched.
    let task = c.task(t).unwrap();
    assert_eq!(
        (task.state, task.agent, task.attempts),
        (TaskState::Assigned, Some(alive.info.id), 0)
    );
    assert_eq!(c.heartbeat(&quiet.auth).unwrap_err().code(), "agent_gone");
    assert_eq!(c.claim(&quiet.auth).unwrap_err().code(), "agent_gone");
    assert!(!c.agent(quiet.info.id).unwrap().is_active());
    assert!(c.agent(alive.info.id).unwrap().is_active());
    keeper.abort();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_requeues_running_tasks_at_once() {
    let c = Coordinator::new(config());
    let a = agent(&c, "a", &[]);
    let t = c.submit(TaskSpec::new("t")).unwrap();
    c.claim(&a.auth).unwrap().unwrap();
    c.disconnect(a.info.id).unwrap();
    assert_eq!(c.task(t).unwrap().state, TaskState::Queued);
    let b = agent(&c, "b", &[]);
    assert_eq!(c.claim(&b.auth).unwrap().unwrap().id, t);
    // Disconnecting twice is harmless; an id never registered is an error.
    c.disconnect(a.info.id).unwrap();
    assert!(c.disconnect(ai_session_coord::AgentId(77)).is_err());
}

#[tokio::test(start_paused = true)]
async fn claim_wait_returns_when_work_arrives_or_at_the_deadline() {
    let c = Coordinator::new(config());
    let w = agent(&c, "w", &[]);
    let start = Instant::now();
    assert_eq!(
        c.claim_wait(&w.auth, Duration::from_secs(2)).await.unwrap(),
        None
    );
    assert_eq!(Instant::now() - start, Duration::from_secs(2));
    let waiter = {
        let c = c.clone();
        let auth = w.auth.clone();
        tokio::spawn(async move { c.claim_wait(&auth, Duration::from_secs(60)).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = c.submit(TaskSpec::new("t")).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().unwrap().id, t);
}
