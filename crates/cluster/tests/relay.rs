//! Relayed subscriptions against a real `nats-server -js`: the owner's lines arrive in order,
//! and the owner learns when nobody watches any more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ai_session_cluster::{Cluster, relay_subject};

mod common;
use common::{Nats, config};

#[tokio::test]
async fn lines_arrive_in_order_and_the_owner_sees_the_watcher_go() {
    let nats = Nats::start();
    let url = nats.url.clone();
    let entry = Cluster::join(&config(), &url, "entry").await.unwrap();
    let owner = Cluster::join(&config(), &url, "owner").await.unwrap();
    let subject = relay_subject("00ff");
    assert_eq!(
        owner.watched(&subject).await,
        Some(false),
        "nobody watches yet"
    );

    let mut watch = entry.watch(&subject).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let reader = tokio::spawn(async move {
        while let Some(line) = watch.next().await {
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    for i in 0..100 {
        owner
            .relay_line(&subject, format!("line {i}\n"))
            .await
            .unwrap();
    }
    for i in 0..100 {
        let line = rx.recv().await.expect("a line");
        assert_eq!(&line[..], format!("line {i}\n").as_bytes());
    }
    assert_eq!(owner.watched(&subject).await, Some(true));

    // The entry node's client goes: its watch with it.
    reader.abort();
    let _ = reader.await;
    // Its unsubscribe reaches the server a moment later: a question asked meanwhile goes
    // unanswered (`None`, "cannot tell"), as the owner's heartbeat would see it once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = owner.watched(&subject).await;
    while seen != Some(false) && std::time::Instant::now() < deadline {
        seen = owner.watched(&subject).await;
    }
    assert_eq!(seen, Some(false));
    owner.leave().await;
    entry.leave().await;
}

/// `watch` returns once the server has the subscription, not merely once the bytes left this
/// process: a line the owner sends right after is never lost, even when the server reads the
/// watcher's connection later than the owner's (a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_sent_right_after_watch_returns_arrives() {
    let nats = Nats::start();
    let url = nats.url.clone();
    let entry = Cluster::join(&config(), &url, "entry").await.unwrap();
    let owner = Cluster::join(&config(), &url, "owner").await.unwrap();
    let mut lost = 0;
    for round in 0..300 {
        let subject = relay_subject(&format!("r{round}"));
        let mut watch = entry.watch(&subject).await.unwrap();
        owner.relay_line(&subject, "hello\n".into()).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), watch.next()).await;
        if !matches!(got, Ok(Some(ref line)) if &line[..] == b"hello\n") {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "lines sent right after watch() returned were lost");
    owner.leave().await;
    entry.leave().await;
}
