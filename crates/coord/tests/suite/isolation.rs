//! A token lets its holder act as its own agent only.

use std::time::Duration;

use ai_session_coord::{AgentAuth, CoordError, Coordinator, TaskSpec, TaskState, Token};
use serde_json::json;

use super::common::{agent, config};

#[tokio::test]
async fn another_agent_cannot_claim_complete_or_fail_a_task() {
    let c = Coordinator::new(config());
    let a = agent(&c, "a", &["rust"]);
    let b = agent(&c, "b", &["go"]);
    let t = c.submit(TaskSpec::new("rust work").needs("rust")).unwrap();
    assert_eq!(
        c.claim(&b.auth).unwrap(),
        None,
        "b only ever gets its own assignments"
    );
    let err = c.done(&b.auth, t, json!("stolen")).unwrap_err();
    assert_eq!(
        err,
        CoordError::NotTaskHolder {
            agent: b.info.id,
            task: t,
            action: "complete",
            owner: Some(a.info.id)
        }
    );
    assert!(err.to_string().contains("held by agent-"));
    assert_eq!(
        c.fail(&b.auth, t, "sabotage").unwrap_err().code(),
        "not_task_holder"
    );
    assert_eq!(c.task(t).unwrap().state, TaskState::Assigned);
    c.claim(&a.auth).unwrap().unwrap();
    c.done(&a.auth, t, json!("mine")).unwrap();
}

#[tokio::test]
async fn a_token_only_works_for_its_own_agent() {
    let c = Coordinator::new(config());
    let a = agent(&c, "a", &[]);
    let b = agent(&c, "b", &[]);
    c.send(None, a.info.id, json!("for a only")).await.unwrap();
    // b's valid token presented with a's id.
    let as_a = AgentAuth {
        agent: a.info.id,
        token: b.auth.token.clone(),
    };
    for err in [
        c.inbox(&as_a).err().unwrap(),
        c.claim(&as_a).unwrap_err(),
        c.heartbeat(&as_a).unwrap_err(),
        c.unregister(&as_a).unwrap_err(),
    ] {
        assert!(
            matches!(err, CoordError::Unauthorized { agent, .. } if agent == a.info.id),
            "{err:?}"
        );
    }
    assert_eq!(
        c.inbox(&as_a).err().unwrap().to_string(),
        format!(
            "token rejected: not allowed to read the inbox as {}",
            a.info.id
        )
    );
    // A made-up token fails the same way, and signing messages needs a real token too.
    let forged = AgentAuth {
        agent: a.info.id,
        token: Token::from_hex(&"0".repeat(64)).unwrap(),
    };
    assert_eq!(
        c.publish(Some(&forged), "t", json!(1))
            .await
            .unwrap_err()
            .code(),
        "unauthorized"
    );
    // a's mail is still there for a.
    assert_eq!(
        c.inbox(&a.auth).unwrap().try_recv().unwrap().payload,
        json!("for a only")
    );
}

#[tokio::test]
async fn only_the_addressee_may_answer_a_request() {
    let c = Coordinator::new(config());
    let a = agent(&c, "a", &[]);
    let b = agent(&c, "b", &[]);
    let pending = {
        let c = c.clone();
        let to = a.info.id;
        tokio::spawn(async move {
            c.request(None, to, json!("?"), Duration::from_secs(60))
                .await
        })
    };
    let req = c.inbox(&a.auth).unwrap().recv().await.unwrap();
    let corr = req.correlation_id().unwrap();
    let err = c.reply(&b.auth, corr, json!("impostor")).unwrap_err();
    assert_eq!(
        err,
        CoordError::NotAddressee {
            agent: b.info.id,
            correlation: corr,
            addressee: a.info.id
        }
    );
    c.reply(&a.auth, corr, json!("real")).unwrap();
    assert_eq!(pending.await.unwrap().unwrap().payload, json!("real"));
}
