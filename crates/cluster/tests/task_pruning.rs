//! Pruning the cluster's finished tasks against a real `nats-server -js`: the tasks go from
//! every node's view, and their purge markers from the bucket's stream a lease later, so the
//! bucket does not grow with every task ever submitted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ai_session_cluster::testing::NatsServer;
use ai_session_cluster::{Cluster, NewTask, Worker};
use ai_session_protocol::config::ClusterConfig;

async fn bucket_messages(url: &str) -> u64 {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("KV_ais_tasks").await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn pruned_tasks_leave_nothing_in_the_bucket() {
    let server = NatsServer::start::<&str>(&[]).expect("nats-server (installed by .ci/run)");
    let url = server.url("nats");
    let config = ClusterConfig {
        heartbeat_secs: 0.5,
        lease_secs: 1.0,
        task_retention_secs: 0.0,
        ..ClusterConfig::default()
    };
    let a = Cluster::join(&config, &url, "a").await.unwrap();
    let b = Cluster::join(&config, &url, "b").await.unwrap();
    a.watch_tasks().await.unwrap();
    b.watch_tasks().await.unwrap();
    let worker = Worker {
        agent: 1,
        capabilities: vec!["x".into()],
        max_tasks: 1,
    };
    let rounds = 20u64;
    for _ in 0..rounds {
        a.submit_task(NewTask {
            description: "t".into(),
            needs: vec!["x".into()],
            max_retries: 0,
            ..NewTask::default()
        })
        .await
        .unwrap();
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        let task = loop {
            if let Some(t) = a
                .claim_task(&worker, Duration::from_secs(10))
                .await
                .unwrap()
            {
                break t;
            }
            assert!(
                a.task_change(until).await,
                "the task never became claimable"
            );
        };
        a.complete_task(1, task.id, serde_json::json!(task.id))
            .await
            .unwrap();
    }
    assert!(bucket_messages(&url).await >= rounds);
    // Both prune, as every node's heartbeat does (node b never touched a task); then both
    // views lose them, and once the markers are a lease old the bucket's stream is empty.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        b.prune_tasks().await.unwrap();
        a.prune_tasks().await.unwrap();
        let left = bucket_messages(&url).await;
        let listed = a.tasks(None).await.unwrap().len() + b.tasks(None).await.unwrap().len();
        if left == 0 && listed == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} messages and {listed} tasks left after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ids go on from the counter, never reused.
    let next = a
        .submit_task(NewTask {
            description: "after".into(),
            ..NewTask::default()
        })
        .await
        .unwrap();
    assert_eq!(next.id, rounds + 1);
}
