//! The exec journal against a real `nats-server -js`: records kept per session in order, and a
//! checkpoint's mark dropping exactly the records published before it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ai_session_cluster::Cluster;

mod common;
use common::{Nats, config};

#[tokio::test]
async fn a_checkpoint_mark_drops_only_the_records_before_it() {
    let nats = Nats::start();
    let a = Cluster::join(&config(), &nats.url, "a").await.unwrap();
    assert_eq!(a.journal_mark("s1").await.unwrap(), None, "no records yet");
    for record in ["one", "two"] {
        a.journal_exec("s1", record.as_bytes().to_vec())
            .await
            .unwrap();
    }
    // Another session's records (an id with a dot: one subject token all the same).
    a.journal_exec("s.2", b"other".to_vec()).await.unwrap();
    let mark = a.journal_mark("s1").await.unwrap().expect("a mark");
    a.journal_exec("s1", b"three".to_vec()).await.unwrap();
    let all: Vec<Vec<u8>> = a
        .journaled_execs("s1")
        .await
        .unwrap()
        .iter()
        .map(|b| b.to_vec())
        .collect();
    assert_eq!(
        all,
        vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );

    a.journal_checkpointed("s1", mark).await.unwrap();
    let left = a.journaled_execs("s1").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(&left[0][..], b"three");
    let other = a.journaled_execs("s.2").await.unwrap();
    assert_eq!(other.len(), 1, "another session's records stay");
    assert_eq!(&other[0][..], b"other");
    a.journal_forget("s1").await.unwrap();
    assert!(a.journaled_execs("s1").await.unwrap().is_empty());
    assert_eq!(a.journaled_execs("s.2").await.unwrap().len(), 1);
    a.leave().await;
}
