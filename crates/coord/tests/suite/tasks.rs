//! DAG ordering, cycle rejection, capability matching, priorities and the strategies.

use ai_session_coord::{
    CoordError, Coordinator, PriorityFirst, RESULTS_TOPIC, RoundRobin, TaskId, TaskSpec, TaskState,
};
use serde_json::json;

use super::common::{agent, config, next_event};

#[tokio::test]
async fn a_task_waits_for_every_task_it_comes_after() {
    let c = Coordinator::new(config());
    let w = agent(&c, "w", &["rust"]);
    let ids = c
        .submit_batch(vec![
            TaskSpec::new("deploy")
                .key("deploy")
                .after("test")
                .after("docs"),
            TaskSpec::new("test")
                .key("test")
                .after("build")
                .needs("rust"),
            TaskSpec::new("build").key("build").needs("rust"),
            TaskSpec::new("docs").key("docs"),
        ])
        .unwrap();
    let [deploy, test, build, docs] = [ids[0], ids[1], ids[2], ids[3]];
    assert_eq!(c.task(deploy).unwrap().waiting_on, vec![test, docs]);

    let mut order = Vec::new();
    while let Some(t) = c.claim(&w.auth).unwrap() {
        order.push(t.id);
        c.done(&w.auth, t.id, json!({"ok": t.description})).unwrap();
    }
    // build before test, test and docs before deploy; nothing else is promised.
    let pos = |id: TaskId| order.iter().position(|x| *x == id).unwrap();
    assert_eq!(order.len(), 4);
    assert!(pos(build) < pos(test) && pos(test) < pos(deploy) && pos(docs) < pos(deploy));

    // A later task may depend on an existing id, done or not.
    let after_done = c.submit(TaskSpec::new("again").after(deploy)).unwrap();
    assert_eq!(c.task(after_done).unwrap().waiting_on, Vec::<TaskId>::new());
}

#[tokio::test]
async fn cycles_and_unknown_dependencies_are_rejected_whole() {
    let c = Coordinator::new(config());
    let err = c
        .submit_batch(vec![
            TaskSpec::new("a").key("a").after("b"),
            TaskSpec::new("b").key("b").after("a"),
            TaskSpec::new("c").key("c"),
        ])
        .unwrap_err();
    assert!(matches!(&err, CoordError::Cycle { path } if path.len() == 3));
    assert!(err.to_string().starts_with("dependency cycle: "));
    assert!(
        c.tasks(None).is_empty(),
        "nothing of a rejected batch exists"
    );

    let err = c.submit(TaskSpec::new("x").after(TaskId(42))).unwrap_err();
    assert_eq!(
        err,
        CoordError::UnknownDependency {
            dependency: TaskId(42)
        }
    );
    assert_eq!(err.code(), "unknown_dependency");
    assert!(
        c.submit_batch(vec![TaskSpec::new("y").after("nope")])
            .is_err()
    );
    assert!(c.tasks(None).is_empty());
}

#[tokio::test]
async fn tasks_only_go_to_agents_with_every_needed_capability() {
    let c = Coordinator::new(config());
    let rust_only = agent(&c, "rust-only", &["rust"]);
    let both = agent(&c, "both", &["rust", "tests"]);
    let t = c
        .submit(TaskSpec::new("needs both").needs("tests").needs("rust"))
        .unwrap();
    assert_eq!(c.claim(&rust_only.auth).unwrap(), None);
    let got = c.claim(&both.auth).unwrap().unwrap();
    assert_eq!(got.id, t);
    assert_eq!(got.needs, vec!["rust".to_string(), "tests".to_string()]);
    assert_eq!(got.state, TaskState::Running);

    // A task nobody can do stays queued.
    let gpu = c.submit(TaskSpec::new("train").needs("gpu")).unwrap();
    assert_eq!(c.claim(&rust_only.auth).unwrap(), None);
    assert_eq!(c.task(gpu).unwrap().state, TaskState::Queued);
    // An agent that can do it picks it up as soon as it registers.
    let g = agent(&c, "g", &["gpu"]);
    assert_eq!(c.claim(&g.auth).unwrap().unwrap().id, gpu);
}

#[tokio::test]
async fn higher_priority_first_then_submission_order() {
    let c = Coordinator::new(config());
    let low = c.submit(TaskSpec::new("low").priority(1)).unwrap();
    let high = c.submit(TaskSpec::new("high").priority(9)).unwrap();
    let mid_a = c.submit(TaskSpec::new("mid a").priority(5)).unwrap();
    let mid_b = c.submit(TaskSpec::new("mid b").priority(5)).unwrap();
    let w = agent(&c, "w", &[]);
    let mut order = Vec::new();
    while let Some(t) = c.claim(&w.auth).unwrap() {
        order.push(t.id);
        c.done(&w.auth, t.id, json!(null)).unwrap();
    }
    assert_eq!(order, vec![high, mid_a, mid_b, low]);
}

#[tokio::test]
async fn least_loaded_spreads_work_and_prefers_specialists() {
    let c = Coordinator::new(config());
    assert_eq!(c.strategy(), "least_loaded");
    let generalist = c
        .register(
            ai_session_coord::AgentSpec::new("gen")
                .capability("rust")
                .capability("go")
                .max_tasks(4),
        )
        .unwrap();
    let specialist = c
        .register(
            ai_session_coord::AgentSpec::new("spec")
                .capability("rust")
                .max_tasks(4),
        )
        .unwrap();
    // Equal load: the specialist gets the first rust task, keeping the generalist free.
    c.submit(TaskSpec::new("r1").needs("rust")).unwrap();
    assert_eq!(c.agent(specialist.info.id).unwrap().load, 1);
    assert_eq!(c.agent(generalist.info.id).unwrap().load, 0);
    // Then the less loaded one, alternating.
    for i in 0..5 {
        c.submit(TaskSpec::new(format!("r{i}")).needs("rust"))
            .unwrap();
    }
    assert_eq!(c.agent(specialist.info.id).unwrap().load, 3);
    assert_eq!(c.agent(generalist.info.id).unwrap().load, 3);
}

#[tokio::test]
async fn round_robin_takes_turns_whatever_the_load() {
    let c = Coordinator::with_strategy(config(), Box::new(RoundRobin::default()));
    let spec = |n: &str| ai_session_coord::AgentSpec::new(n).max_tasks(10);
    let agents: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| c.register(spec(n)).unwrap())
        .collect();
    // Round-robin ignores priority: submission order.
    let ids: Vec<TaskId> = (0..6)
        .map(|i| {
            c.submit(TaskSpec::new(format!("t{i}")).priority(i))
                .unwrap()
        })
        .collect();
    let holders: Vec<u64> = ids
        .iter()
        .map(|id| c.task(*id).unwrap().agent.unwrap().0)
        .collect();
    let first = agents[0].info.id.0;
    assert_eq!(
        holders,
        vec![first, first + 1, first + 2, first, first + 1, first + 2]
    );
    assert_eq!(c.claim(&agents[0].auth).unwrap().unwrap().id, ids[0]);
}

#[tokio::test]
async fn priority_first_gives_the_most_urgent_task_to_the_longest_waiting_agent() {
    let c = Coordinator::with_strategy(config(), Box::new(PriorityFirst));
    let a = agent(&c, "a", &[]);
    let low = c.submit(TaskSpec::new("low").priority(0)).unwrap();
    assert_eq!(c.task(low).unwrap().agent, Some(a.info.id));
    let b = agent(&c, "b", &[]);
    let urgent = c.submit(TaskSpec::new("urgent").priority(100)).unwrap();
    let normal = c.submit(TaskSpec::new("normal").priority(50)).unwrap();
    // b never had a task: it gets the urgent one; normal waits for a free agent.
    assert_eq!(c.task(urgent).unwrap().agent, Some(b.info.id));
    assert_eq!(c.task(normal).unwrap().state, TaskState::Queued);
    c.claim(&a.auth).unwrap();
    c.done(&a.auth, low, json!(1)).unwrap();
    assert_eq!(c.task(normal).unwrap().agent, Some(a.info.id));
}

#[tokio::test]
async fn results_are_published_to_subscribers() {
    let c = Coordinator::new(config());
    let mut results = c.subscribe(RESULTS_TOPIC);
    let w = agent(&c, "w", &[]);
    let t = c.submit(TaskSpec::new("compute")).unwrap();
    c.claim(&w.auth).unwrap();
    let done = c.done(&w.auth, t, json!({"answer": 42})).unwrap();
    assert_eq!(done.state, TaskState::Done);
    let e = next_event(&mut results, |_| true).await;
    assert_eq!(
        e,
        ai_session_coord::Event::TaskStateChanged {
            task: t,
            state: TaskState::Done,
            agent: Some(w.info.id),
            attempts: 0,
            reason: None,
            result: Some(json!({"answer": 42})),
        }
    );
    // Reporting twice is refused with the task's state.
    let err = c.done(&w.auth, t, json!(0)).unwrap_err();
    assert!(matches!(
        err,
        CoordError::InvalidTaskState {
            state: TaskState::Done,
            ..
        }
    ));
}

#[tokio::test]
async fn task_events_follow_the_lifecycle_in_order() {
    let c = Coordinator::new(config());
    let mut events = c.events();
    let t = c.submit(TaskSpec::new("x")).unwrap();
    let w = agent(&c, "w", &[]);
    c.claim(&w.auth).unwrap();
    c.done(&w.auth, t, json!(null)).unwrap();
    let mut states = Vec::new();
    while states.last() != Some(&TaskState::Done) {
        if let ai_session_coord::Event::TaskStateChanged { state, .. } =
            next_event(&mut events, |e| {
                matches!(e, ai_session_coord::Event::TaskStateChanged { .. })
            })
            .await
        {
            states.push(state);
        }
    }
    assert_eq!(
        states,
        vec![
            TaskState::Queued,
            TaskState::Assigned,
            TaskState::Running,
            TaskState::Done
        ]
    );
}

/// A user-defined strategy: newest task first, to the agent with the highest id, never to "lazy".
struct NewestToHighest {
    lazy: ai_session_coord::AgentId,
}

impl ai_session_coord::Strategy for NewestToHighest {
    fn name(&self) -> &'static str {
        "newest_to_highest"
    }

    fn rank(&self, task: &ai_session_coord::Task) -> i64 {
        -(task.id.0 as i64)
    }

    fn choose(
        &mut self,
        _task: &ai_session_coord::Task,
        candidates: &[ai_session_coord::Candidate],
    ) -> Option<ai_session_coord::AgentId> {
        candidates
            .iter()
            .rev()
            .map(|c| c.agent)
            .find(|a| *a != self.lazy)
    }
}

#[tokio::test]
async fn a_custom_strategy_decides_order_and_agent() {
    // Ids are handed out from 1 in registration order, so the second agent is agent-2.
    let lazy = ai_session_coord::AgentId(2);
    let c = Coordinator::with_strategy(config(), Box::new(NewestToHighest { lazy }));
    assert_eq!(c.strategy(), "newest_to_highest");
    let spec = |n: &str| ai_session_coord::AgentSpec::new(n).max_tasks(3);
    let first = c.register(spec("first")).unwrap();
    let lazy_reg = c.register(spec("lazy")).unwrap();
    assert_eq!(lazy_reg.info.id, lazy);
    // Submitted together so the strategy's order decides, not submission timing.
    let ids = c
        .submit_batch((0..3).map(|i| TaskSpec::new(format!("t{i}"))).collect())
        .unwrap();
    assert_eq!(
        c.claim(&lazy_reg.auth).unwrap(),
        None,
        "the strategy never picks lazy"
    );
    let order: Vec<TaskId> = (0..3)
        .map(|_| c.claim(&first.auth).unwrap().unwrap().id)
        .collect();
    assert_eq!(order, vec![ids[2], ids[1], ids[0]]);
}

#[tokio::test]
async fn an_agent_with_room_for_several_claims_the_most_urgent_first() {
    let c = Coordinator::new(config());
    let w = c
        .register(
            ai_session_coord::AgentSpec::new("w")
                .max_tasks(3)
                .session("s1"),
        )
        .unwrap();
    assert_eq!(w.info.session.as_deref(), Some("s1"));
    let ids = c
        .submit_batch(vec![
            TaskSpec::new("low").priority(1),
            TaskSpec::new("high").priority(7),
            TaskSpec::new("mid").priority(4),
            TaskSpec::new("waits for a slot"),
        ])
        .unwrap();
    assert_eq!(c.agent(w.info.id).unwrap().load, 3);
    let got: Vec<TaskId> = (0..3)
        .map(|_| c.claim(&w.auth).unwrap().unwrap().id)
        .collect();
    assert_eq!(got, vec![ids[1], ids[2], ids[0]]);
    assert_eq!(c.claim(&w.auth).unwrap(), None, "at max_tasks");
    c.done(&w.auth, ids[1], json!(null)).unwrap();
    assert_eq!(c.claim(&w.auth).unwrap().unwrap().id, ids[3]);
    assert_eq!(
        c.submit(TaskSpec::new("bad").needs(" "))
            .unwrap_err()
            .code(),
        "invalid_task"
    );
}

#[tokio::test]
async fn pruning_forgets_only_finished_tasks() {
    let c = Coordinator::new(config());
    let w = agent(&c, "w", &[]);
    let a = c.submit(TaskSpec::new("a")).unwrap();
    let b = c.submit(TaskSpec::new("b").after(a)).unwrap();
    c.claim(&w.auth).unwrap().unwrap();
    c.done(&w.auth, a, json!(1)).unwrap();
    assert_eq!(c.prune_finished(), 1);
    assert_eq!(c.task(a).unwrap_err(), CoordError::UnknownTask(a));
    // The dependent still runs and completes normally.
    assert_eq!(c.claim(&w.auth).unwrap().unwrap().id, b);
    c.done(&w.auth, b, json!(2)).unwrap();
    assert_eq!(
        c.submit(TaskSpec::new("c").after(a)).unwrap_err().code(),
        "unknown_dependency"
    );
}
