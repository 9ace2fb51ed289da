use ai_session_core::protocol::methods::{ExecParams, NewParams};
use ai_session_core::{ManagerConfig, SessionManager};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let m = SessionManager::new(ManagerConfig::new(dir.path())).unwrap();
    for shell in ["/bin/bash", "/bin/sh"] {
        let info = m
            .create(NewParams {
                shell: Some(shell.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let h = m.get(&info.name).unwrap();
        let exec = |c: &str| ExecParams {
            target: info.name.clone(),
            command: c.into(),
            timeout_ms: Some(5000),
            idle_timeout_ms: None,
            max_output_bytes: None,
        };
        let t = std::time::Instant::now();
        let r = h.exec(exec("echo hi")).await.unwrap();
        println!("{shell}: {:?} {:?}", t.elapsed(), r);
        let r = h.exec(exec("cd /tmp; false")).await.unwrap();
        println!("{shell}: {:?}", r);
        let r = h.exec(exec("pwd")).await.unwrap();
        println!("{shell}: {:?}", r);
        for _ in 0..5 {
            let t = std::time::Instant::now();
            h.exec(exec("echo hi")).await.unwrap();
            println!("rt {:?}", t.elapsed());
        }
        let r = h.exec(exec("for i in 1 2 3; do\n echo line $i\ndone\nexit_code_test() { return 3; }; exit_code_test")).await.unwrap();
        println!("{shell}: {:?}", r);
    }
}
