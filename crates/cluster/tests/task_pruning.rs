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

/// Nodes that prune a finished task at once and its last traces a one-second lease later.
fn pruning_at_once() -> ClusterConfig {
    ClusterConfig {
        heartbeat_secs: 0.5,
        lease_secs: 1.0,
        task_retention_secs: 0.0,
        ..ClusterConfig::default()
    }
}

/// Submits a task, has an agent claim it and completes it; returns its id.
async fn finish_one(cluster: &Cluster) -> u64 {
    let worker = Worker {
        agent: 1,
        capabilities: vec!["x".into()],
        max_tasks: 1,
    };
    let submitted = cluster
        .submit_task(NewTask {
            description: "t".into(),
            needs: vec!["x".into()],
            max_retries: 0,
            ..NewTask::default()
        })
        .await
        .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let task = loop {
        if let Some(t) = cluster
            .claim_task(&worker, Duration::from_secs(10))
            .await
            .unwrap()
        {
            break t;
        }
        assert!(
            cluster.task_change(until).await,
            "the task never became claimable"
        );
    };
    assert_eq!(task.id, submitted.id);
    cluster
        .complete_task(1, task.id, serde_json::json!(task.id))
        .await
        .unwrap();
    task.id
}

#[tokio::test]
async fn pruned_tasks_leave_nothing_in_the_bucket() {
    let server = NatsServer::start::<&str>(&[]).expect("nats-server (installed by .ci/run)");
    let url = server.url("nats");
    let config = pruning_at_once();
    let a = Cluster::join(&config, &url, "a").await.unwrap();
    let b = Cluster::join(&config, &url, "b").await.unwrap();
    a.watch_tasks().await.unwrap();
    b.watch_tasks().await.unwrap();
    let rounds = 20u64;
    for _ in 0..rounds {
        finish_one(&a).await;
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

/// A watch the server has not caught up yet (its cursor behind the newest changes) gets every
/// change made after and around a prune. The consumer below has read nothing: its cursor is
/// where a slow node's watch stands. Servers before 2.10.11 move such a cursor past every
/// message they have not delivered when a subject is purged or rolled up, so a prune made of
/// purges hid other tasks' changes from the nodes whose watches were behind.
#[tokio::test]
async fn a_watch_behind_a_prune_still_gets_every_later_change() {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures_util::StreamExt;

    let server = NatsServer::start::<&str>(&[]).expect("nats-server (installed by .ci/run)");
    let url = server.url("nats");
    let config = pruning_at_once();
    let a = Cluster::join(&config, &url, "a").await.unwrap();
    a.watch_tasks().await.unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let stream = js.get_stream("KV_ais_tasks").await.unwrap();
    let behind = stream
        .create_consumer(pull::Config {
            filter_subject: "$KV.ais_tasks.>".into(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let submit = |description: &'static str| NewTask {
        description: description.into(),
        needs: vec!["x".into()],
        max_retries: 0,
        ..NewTask::default()
    };
    let done = finish_one(&a).await;
    // Queued before the prune: its change lies behind the slow watch's cursor.
    let before = a.submit_task(submit("before")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.prune_tasks().await.unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the finished task was never pruned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let between = a.submit_task(submit("between")).await.unwrap();
    // A lease later the pruned task's last trace leaves the stream.
    let subject = format!("$KV.ais_tasks.task.{done}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream.direct_get_last_for_subject(&subject).await.is_ok() {
        assert!(Instant::now() < deadline, "the pruned task's marker stayed");
        a.prune_tasks().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = a.submit_task(submit("after")).await.unwrap();
    let mut got = Vec::new();
    let mut batch = behind
        .fetch()
        .max_messages(1000)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    while let Some(message) = batch.next().await {
        got.push(message.unwrap().subject.to_string());
    }
    for id in [before.id, between.id, after.id] {
        let subject = format!("$KV.ais_tasks.task.{id}");
        assert!(
            got.contains(&subject),
            "the watch behind never got task {id}'s change; it got {got:?}"
        );
    }
}

/// A task bucket laid out by an earlier version (single messages could not be deleted) is
/// opened as this one needs, so pruning still leaves nothing behind.
#[tokio::test]
async fn a_bucket_an_earlier_version_made_is_pruned_too() {
    let server = NatsServer::start::<&str>(&[]).expect("nats-server (installed by .ci/run)");
    let url = server.url("nats");
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "KV_ais_tasks".into(),
        subjects: vec!["$KV.ais_tasks.>".into()],
        max_messages_per_subject: 64,
        max_bytes: -1,
        max_message_size: -1,
        storage: async_nats::jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: async_nats::jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .unwrap();
    let config = pruning_at_once();
    let a = Cluster::join(&config, &url, "a").await.unwrap();
    a.watch_tasks().await.unwrap();
    finish_one(&a).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.prune_tasks().await.unwrap();
        let left = bucket_messages(&url).await;
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} messages left after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
