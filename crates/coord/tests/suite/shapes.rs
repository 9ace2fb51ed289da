//! The JSON shapes the daemon sends over JSON-RPC stay as documented.

use ai_session_coord::{
    AgentId, Coordinator, DeadLetter, Event, Message, Task, TaskId, TaskSpec, TaskState,
};
use serde_json::{Value, json};

use super::common::{agent, config};

#[tokio::test]
async fn public_types_round_trip_with_stable_field_names() {
    let c = Coordinator::new(config());
    let mut sub = c.subscribe("t");
    let a = agent(&c, "a", &["rust", "rust", "go"]);

    let info = serde_json::to_value(&a.info).unwrap();
    assert_eq!(info["id"], json!(a.info.id.0));
    assert_eq!(info["capabilities"], json!(["go", "rust"]));
    assert_eq!(info["status"], json!("active"));
    assert_eq!(info["max_tasks"], json!(1));
    let auth = serde_json::to_value(&a.auth).unwrap();
    assert_eq!(auth["token"].as_str().unwrap().len(), 64);
    assert_eq!(
        serde_json::from_value::<ai_session_coord::AgentAuth>(auth).unwrap(),
        a.auth
    );

    c.publish(Some(&a.auth), "t", json!({"k": 1}))
        .await
        .unwrap();
    let msg = sub.recv().await.unwrap();
    let v = serde_json::to_value(&*msg).unwrap();
    assert_eq!(v["kind"], json!("topic"));
    assert_eq!(v["topic"], json!("t"));
    assert_eq!(v["from"], json!(a.info.id.0));
    assert_eq!(v["payload"], json!({"k": 1}));
    assert_eq!(serde_json::from_value::<Message>(v).unwrap(), *msg);

    let spec: TaskSpec = serde_json::from_value(
        json!({"description": "d", "needs": ["rust"], "after": [], "priority": 3}),
    )
    .unwrap();
    let id = c.submit(spec).unwrap();
    let task = c.task(id).unwrap();
    let v = serde_json::to_value(&task).unwrap();
    assert_eq!(v["state"], json!("assigned"));
    assert_eq!(v["agent"], json!(a.info.id.0));
    assert_eq!(v["priority"], json!(3));
    assert_eq!(serde_json::from_value::<Task>(v).unwrap(), task);

    let batch: Vec<TaskSpec> = serde_json::from_value(json!([
        {"description": "b", "key": "b"},
        {"description": "c", "after": ["b", id.0]}
    ]))
    .unwrap();
    let ids = c.submit_batch(batch).unwrap();
    assert_eq!(c.task(ids[1]).unwrap().after, vec![ids[0], id]);

    let e = Event::TaskStateChanged {
        task: TaskId(4),
        state: TaskState::DeadLettered,
        agent: Some(AgentId(2)),
        attempts: 3,
        reason: Some("x".into()),
        result: None,
    };
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"event": "task_state_changed", "task": 4, "state": "dead_lettered", "agent": 2, "attempts": 3, "reason": "x"})
    );

    let mut tiny = c.subscribe_with(
        "full",
        ai_session_coord::QueueOptions {
            capacity: 1,
            policy: ai_session_coord::Backpressure::DeadLetter,
        },
    );
    c.publish(None, "full", json!(1)).await.unwrap();
    c.publish(None, "full", json!(2)).await.unwrap();
    let dead = c.dead_letters();
    let v = serde_json::to_value(&dead[0]).unwrap();
    assert_eq!(v["reason"], json!("queue_full"));
    assert_eq!(v["kind"], json!("message"));
    assert_eq!(v["item"]["payload"], json!(2));
    assert_eq!(serde_json::from_value::<DeadLetter>(v).unwrap(), dead[0]);
    assert!(tiny.try_recv().is_some());
    let _: Value = serde_json::to_value(c.agents()).unwrap();
}
