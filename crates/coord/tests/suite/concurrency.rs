//! Many agents as concurrent Tokio tasks: every task runs exactly once, in dependency order.

use std::collections::HashMap;
use std::time::Duration;

use ai_session_coord::{AgentSpec, Coordinator, TaskSpec, TaskState};
use serde_json::json;

use super::common::config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_drain_a_thousand_tasks_exactly_once() {
    let c = Coordinator::new(config());
    let caps = ["rust", "go", "docs"];
    // Chains of three: each task after the previous one of its chain.
    let mut specs = Vec::new();
    for chain in 0..333 {
        for step in 0..3 {
            let mut s = TaskSpec::new(format!("{chain}/{step}"))
                .key(format!("{chain}/{step}"))
                .needs(caps[(chain + step) % 3])
                .priority((chain % 7) as i32);
            if step > 0 {
                s = s.after(format!("{chain}/{}", step - 1).as_str());
            }
            specs.push(s);
        }
    }
    let ids = c.submit_batch(specs).unwrap();
    let mut workers = Vec::new();
    for i in 0..20 {
        let spec = AgentSpec::new(format!("w{i}"))
            .capability(caps[i % 3])
            .capability(caps[(i + 1) % 3])
            .max_tasks(2);
        let reg = c.register(spec).unwrap();
        let c = c.clone();
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(t) = c
                .claim_wait(&reg.auth, Duration::from_millis(200))
                .await
                .unwrap()
            {
                for dep in &t.after {
                    assert_eq!(
                        c.task(*dep).unwrap().state,
                        TaskState::Done,
                        "ran before its dependency"
                    );
                }
                c.done(&reg.auth, t.id, json!(t.description)).unwrap();
                done.push(t.id);
                tokio::task::yield_now().await;
            }
            done
        }));
    }
    let mut runs: HashMap<_, usize> = HashMap::new();
    for w in workers {
        for id in w.await.unwrap() {
            *runs.entry(id).or_default() += 1;
        }
    }
    assert_eq!(runs.len(), ids.len());
    assert!(runs.values().all(|n| *n == 1));
    assert!(c.tasks(None).iter().all(|t| t.state == TaskState::Done));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_replies() {
    let c = Coordinator::new(config());
    let server = c.register(AgentSpec::new("server")).unwrap();
    let inbox = c.inbox(&server.auth).unwrap();
    let serve = {
        let c = c.clone();
        let auth = server.auth.clone();
        tokio::spawn(async move {
            while let Some(req) = inbox.recv().await {
                let Some(corr) = req.correlation_id() else {
                    break;
                };
                c.reply(&auth, corr, req.payload.clone()).unwrap();
            }
        })
    };
    let mut clients = Vec::new();
    for i in 0..50 {
        let c = c.clone();
        let to = server.info.id;
        clients.push(tokio::spawn(async move {
            for j in 0..20 {
                let payload = json!([i, j]);
                let reply = c
                    .request(None, to, payload.clone(), Duration::from_secs(30))
                    .await
                    .unwrap();
                assert_eq!(reply.payload, payload);
            }
        }));
    }
    for cl in clients {
        cl.await.unwrap();
    }
    c.send(None, server.info.id, json!("stop")).await.unwrap();
    serve.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_drop_policy_every_message_is_either_delivered_or_dead_lettered() {
    use ai_session_coord::{Backpressure, QueueOptions};
    let c = Coordinator::new(config());
    let mut sub = c.subscribe_with(
        "hot",
        QueueOptions {
            capacity: 16,
            policy: Backpressure::DeadLetter,
        },
    );
    let mut publishers = Vec::new();
    for p in 0..8 {
        let c = c.clone();
        publishers.push(tokio::spawn(async move {
            let (mut delivered, mut dead) = (0, 0);
            for i in 0..1000 {
                let d = c.publish(None, "hot", json!([p, i])).await.unwrap();
                delivered += d.delivered;
                dead += d.dead_lettered;
            }
            (delivered, dead)
        }));
    }
    let (mut delivered, mut dead) = (0, 0);
    for p in publishers {
        let (d, x) = p.await.unwrap();
        delivered += d;
        dead += x;
    }
    assert_eq!(delivered + dead, 8000);
    let mut received = 0;
    while sub.try_recv().is_some() {
        received += 1;
    }
    // The reader never ran during publishing, so at most the queue's capacity got through.
    assert_eq!(received, delivered);
    assert!(received <= 16);
    assert_eq!(c.dead_letter_stats().total, dead as u64);
}

#[tokio::test(start_paused = true)]
async fn only_silent_agents_among_many_are_declared_gone() {
    let c = Coordinator::new(ai_session_coord::CoordConfig {
        heartbeat_deadline: Duration::from_secs(10),
        ..config()
    });
    let mut keepers = Vec::new();
    let mut silent = Vec::new();
    for i in 0..40 {
        let reg = c.register(AgentSpec::new(format!("a{i}"))).unwrap();
        if i % 2 == 0 {
            silent.push(reg.info.id);
            continue;
        }
        let c = c.clone();
        keepers.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(4));
            loop {
                every.tick().await;
                if c.heartbeat(&reg.auth).is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let agents = c.agents();
    for a in &agents {
        assert_eq!(a.is_active(), !silent.contains(&a.id), "{}", a.name);
    }
    for k in keepers {
        k.abort();
    }
}
