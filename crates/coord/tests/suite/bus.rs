//! Topics, fan-out, direct messages, broadcast, request/reply, backpressure, dead letters.

use std::time::Duration;

use ai_session_coord::{
    Backpressure, CoordError, Coordinator, DeadItem, DeadReason, Event, QueueOptions, Route,
    SYSTEM_TOPIC,
};
use serde_json::json;

use super::common::{agent, config, next_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_message_from_concurrent_publishers() {
    let c = Coordinator::new(config());
    let opts = QueueOptions {
        capacity: 64,
        policy: Backpressure::Wait {
            max: Duration::from_secs(30),
        },
    };
    let subs: Vec<_> = (0..8).map(|_| c.subscribe_with("builds", opts)).collect();
    let publishers = 4u64;
    let per = 500u64;
    let mut readers = Vec::new();
    for mut sub in subs {
        readers.push(tokio::spawn(async move {
            let mut last = vec![None::<u64>; 4];
            for _ in 0..publishers * per {
                let m = sub.recv().await.unwrap();
                let p = m.payload["p"].as_u64().unwrap() as usize;
                let i = m.payload["i"].as_u64().unwrap();
                // Each publisher's messages arrive in the order it sent them.
                assert!(last[p].is_none_or(|prev| prev < i));
                last[p] = Some(i);
            }
            assert!(sub.try_recv().is_none());
            last
        }));
    }
    let mut writers = Vec::new();
    for p in 0..publishers {
        let c = c.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..per {
                let d = c
                    .publish(None, "builds", json!({"p": p, "i": i}))
                    .await
                    .unwrap();
                assert_eq!((d.delivered, d.dead_lettered), (8, 0));
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for r in readers {
        assert_eq!(r.await.unwrap(), vec![Some(per - 1); 4]);
    }
    assert!(c.dead_letters().is_empty());
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let c = Coordinator::new(config());
    let a = c.subscribe("t");
    let _b = c.subscribe("t");
    assert_eq!(c.topics()[0].subscribers, 2);
    drop(a);
    assert_eq!(c.publish(None, "t", json!(1)).await.unwrap().delivered, 1);
    assert_eq!(
        c.publish(None, "nobody", json!(1)).await.unwrap().delivered,
        0
    );
}

#[tokio::test]
async fn direct_messages_reach_only_their_agent_and_broadcast_reaches_all() {
    let c = Coordinator::new(config());
    let a = agent(&c, "a", &[]);
    let b = agent(&c, "b", &[]);
    let (ia, ib) = (c.inbox(&a.auth).unwrap(), c.inbox(&b.auth).unwrap());
    c.send(Some(&b.auth), a.info.id, json!("hi a"))
        .await
        .unwrap();
    let m = ia.recv().await.unwrap();
    assert_eq!(m.payload, json!("hi a"));
    assert_eq!(m.from, Some(b.info.id));
    assert!(ib.try_recv().is_none());

    let d = c.broadcast(None, json!("all")).await.unwrap();
    assert_eq!(d.delivered, 2);
    assert_eq!(ia.recv().await.unwrap().route, Route::Broadcast);
    assert_eq!(ib.recv().await.unwrap().payload, json!("all"));
}

#[tokio::test]
async fn mail_for_a_departed_agent_is_dead_lettered() {
    let c = Coordinator::new(config());
    let a = agent(&c, "a", &[]);
    c.send(None, a.info.id, json!("unread")).await.unwrap();
    c.unregister(&a.auth).unwrap();
    let d = c.send(None, a.info.id, json!("late")).await.unwrap();
    assert_eq!((d.delivered, d.dead_lettered), (0, 1));
    let reasons: Vec<DeadReason> = c.dead_letters().into_iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        vec![
            DeadReason::AgentLeft { agent: a.info.id },
            DeadReason::NoSuchAgent { agent: a.info.id }
        ]
    );
    let never = ai_session_coord::AgentId(999);
    assert_eq!(
        c.send(None, never, json!(1)).await,
        Err(CoordError::UnknownAgent(never))
    );
}

#[tokio::test]
async fn request_reply_pairs_by_correlation_id() {
    let c = Coordinator::new(config());
    let asker = agent(&c, "asker", &[]);
    let answerer = agent(&c, "answerer", &[]);
    let inbox = c.inbox(&answerer.auth).unwrap();
    let server = {
        let c = c.clone();
        let auth = answerer.auth.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                let req = inbox.recv().await.unwrap();
                let corr = req.correlation_id().unwrap();
                let n = req.payload["n"].as_i64().unwrap();
                c.reply(&auth, corr, json!({"double": n * 2})).unwrap();
            }
        })
    };
    for n in 0..3 {
        let reply = c
            .request(
                Some(&asker.auth),
                answerer.info.id,
                json!({"n": n}),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(reply.payload, json!({"double": n * 2}));
        assert_eq!(reply.from, Some(answerer.info.id));
        assert!(matches!(reply.route, Route::Reply { to: Some(to), .. } if to == asker.info.id));
    }
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn request_times_out_and_a_late_reply_is_dead_lettered() {
    let c = Coordinator::new(config());
    let answerer = agent(&c, "slow", &[]);
    let inbox = c.inbox(&answerer.auth).unwrap();
    let started = tokio::time::Instant::now();
    let err = c
        .request(None, answerer.info.id, json!("?"), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CoordError::RequestTimeout { after, .. } if after == Duration::from_secs(2))
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let req = inbox.recv().await.unwrap();
    let corr = req.correlation_id().unwrap();
    assert_eq!(
        c.reply(&answerer.auth, corr, json!("late")),
        Err(CoordError::UnknownRequest(corr))
    );
    let dead = c.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadReason::RequestExpired);
}

#[tokio::test]
async fn request_to_an_agent_that_leaves_fails_at_once() {
    let c = Coordinator::new(config());
    let a = agent(&c, "a", &[]);
    let pending = {
        let c = c.clone();
        let to = a.info.id;
        tokio::spawn(async move {
            c.request(None, to, json!(1), Duration::from_secs(3600))
                .await
        })
    };
    // The request is in the inbox once it can be read.
    let inbox = c.inbox(&a.auth).unwrap();
    inbox.recv().await.unwrap();
    c.disconnect(a.info.id).unwrap();
    assert_eq!(
        pending.await.unwrap(),
        Err(CoordError::AgentGone { agent: a.info.id })
    );
}

#[tokio::test]
async fn full_queue_with_drop_policy_dead_letters_the_overflow() {
    let c = Coordinator::new(config());
    let mut sub = c.subscribe_with(
        "t",
        QueueOptions {
            capacity: 2,
            policy: Backpressure::DeadLetter,
        },
    );
    let mut dead = 0;
    for i in 0..5 {
        dead += c.publish(None, "t", json!(i)).await.unwrap().dead_lettered;
    }
    assert_eq!(dead, 3);
    assert_eq!(sub.recv().await.unwrap().payload, json!(0));
    assert_eq!(sub.recv().await.unwrap().payload, json!(1));
    let letters = c.drain_dead_letters();
    assert_eq!(letters.len(), 3);
    for (l, want) in letters.iter().zip(2..) {
        assert_eq!(l.reason, DeadReason::QueueFull);
        assert!(matches!(&l.item, DeadItem::Message(m) if m.payload == json!(want)));
        assert!(
            l.recipient
                .as_deref()
                .is_some_and(|r| r.starts_with("t#sub-"))
        );
    }
    assert!(c.dead_letters().is_empty());
    assert_eq!(c.dead_letter_stats().total, 3);
}

#[tokio::test(start_paused = true)]
async fn wait_policy_blocks_the_publisher_until_room_or_deadline() {
    let c = Coordinator::new(config());
    let policy = Backpressure::Wait {
        max: Duration::from_secs(1),
    };
    let mut sub = c.subscribe_with(
        "t",
        QueueOptions {
            capacity: 1,
            policy,
        },
    );
    c.publish(None, "t", json!(0)).await.unwrap();

    // Room appears within the deadline: the second publish waits, then delivers.
    let publisher = {
        let c = c.clone();
        tokio::spawn(async move { c.publish(None, "t", json!(1)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!publisher.is_finished(), "the publisher waits for room");
    assert_eq!(sub.recv().await.unwrap().payload, json!(0));
    assert_eq!(publisher.await.unwrap().delivered, 1);

    // No room within the deadline: dead-lettered after exactly the wait.
    let started = tokio::time::Instant::now();
    let d = c.publish(None, "t", json!(2)).await.unwrap();
    assert_eq!((d.delivered, d.dead_lettered), (0, 1));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(c.dead_letters()[0].reason, DeadReason::WaitTimedOut);
    assert_eq!(sub.recv().await.unwrap().payload, json!(1));
}

#[tokio::test]
async fn system_topic_carries_agent_and_session_events_and_is_reserved() {
    let c = Coordinator::new(config());
    let mut events = c.events();
    let a = agent(&c, "a", &["rust"]);
    c.publish_session_state("s1", "idle", json!({"exit": 0}));
    c.unregister(&a.auth).unwrap();
    let e = next_event(&mut events, |_| true).await;
    assert!(matches!(e, Event::AgentJoined { agent } if agent.name == "a"));
    let e = next_event(&mut events, |_| true).await;
    assert_eq!(
        e,
        Event::SessionStateChanged {
            session: "s1".into(),
            state: "idle".into(),
            detail: json!({"exit": 0})
        }
    );
    let e = next_event(&mut events, |_| true).await;
    assert!(matches!(
        e,
        Event::AgentLeft {
            reason: ai_session_coord::LeaveReason::Unregistered,
            ..
        }
    ));
    let err = c
        .publish(None, SYSTEM_TOPIC, json!({"event": "agent_left"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "reserved_topic");
}
