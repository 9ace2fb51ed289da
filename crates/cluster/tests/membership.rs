//! The cluster crate against a real `nats-server -js` on a loopback port: joining, node
//! records, session leases and forwarded calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use ai_session_cluster::testing::NatsServer;
use ai_session_cluster::{Cluster, ClusterError, Forward, Origin};
use ai_session_protocol::config::ClusterConfig;

mod common;
use common::{Nats, config};

#[tokio::test]
async fn nodes_join_lease_sessions_and_expire() {
    let nats = Nats::start();
    let a = Cluster::join(&config(), &nats.url, "a").await.unwrap();
    let b = Cluster::join(&config(), &nats.url, "b").await.unwrap();
    match Cluster::join(&config(), &nats.url, "a").await {
        Err(ClusterError::NodeTaken { node, .. }) => assert_eq!(node, "a"),
        other => panic!("a second 'a' joined: {:?}", other.err()),
    }
    a.claim("s.1").await.unwrap();
    a.hold("s.1", "abc").await.unwrap();
    assert!(matches!(
        b.claim("s.1").await,
        Err(ClusterError::NameTaken { ref node, .. }) if node == "a"
    ));
    assert_eq!(b.owner("s.1").await.unwrap().unwrap().node, "a");
    assert_eq!(b.owner("abc").await.unwrap().unwrap().name, "s.1");
    assert_eq!(b.claim_free_name(&[]).await.unwrap(), "0");
    assert_eq!(a.claim_free_name(&[]).await.unwrap(), "1");

    a.heartbeat(&[("s.1".into(), "abc".into())]).await.unwrap();
    let nodes = b.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].sessions, vec!["s.1".to_string()]);

    // Forwarded calls go to the named node's inbox and come back.
    let mut inbox = a.inbox().await.unwrap();
    let served = a.clone();
    tokio::spawn(async move {
        while let Some(incoming) = inbox.next().await {
            let params = incoming.forward.as_ref().unwrap().params.clone();
            served.answer(incoming, Ok(params)).await;
        }
    });
    let forward = Forward {
        origin: Origin::new("b"),
        principal: "owner".into(),
        method: "session.read".into(),
        params: serde_json::json!({"target": "s.1"}),
        order: None,
    };
    a.heartbeat(&[("s.1".into(), "abc".into())]).await.unwrap();
    let answer = b.call("a", &forward, Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.unwrap()["target"], "s.1");
    assert!(matches!(
        b.call("nowhere", &forward, Duration::from_secs(5)).await,
        Err(ClusterError::Unreachable { .. })
    ));

    // Without heartbeats, a's record and leases expire after the lease.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        b.heartbeat(&[]).await.unwrap();
        let gone = b.nodes().await.unwrap().iter().all(|n| n.node != "a")
            && b.owner("s.1").await.unwrap().is_none();
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "a never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.leave().await;
    assert!(a.nodes().await.unwrap().is_empty());
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed by .ci/run");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority, a server certificate for 127.0.0.1 and a client certificate.
fn certificates(dir: &std::path::Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=ais-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    ca.extend_from_slice(&ec);
    openssl(dir, &ca);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    for (name, cn) in [("server", "/CN=127.0.0.1"), ("client", "/CN=node")] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut req = vec!["req", "-subj", cn, "-keyout", &key, "-out", &csr];
        req.extend_from_slice(&ec);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "1",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "san.ext",
                "-out",
                &pem,
            ],
        );
    }
}

#[tokio::test]
async fn tls_settings_reach_a_server_that_verifies_clients() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    certificates(dir);
    let tls_args = [
        "--tlsverify".into(),
        "--tlscert".into(),
        dir.join("server.pem").into_os_string(),
        "--tlskey".into(),
        dir.join("server.key").into_os_string(),
        "--tlscacert".into(),
        dir.join("ca.pem").into_os_string(),
    ];
    let server = NatsServer::start(&tls_args).expect("nats-server");
    let url = server.url("tls");
    let mut tls = ClusterConfig {
        tls_ca: Some(dir.join("ca.pem")),
        ..config()
    };
    // The server verifies clients: the CA alone is not enough.
    let refused = Cluster::join(&tls, &url, "n").await;
    assert!(
        matches!(refused, Err(ClusterError::Connect { .. })),
        "{:?}",
        refused.err()
    );
    tls.tls_cert = Some(dir.join("client.pem"));
    tls.tls_key = Some(dir.join("client.key"));
    let node = Cluster::join(&tls, &url, "n").await.unwrap();
    assert_eq!(node.nodes().await.unwrap()[0].node, "n");
    // Without the CA the server's certificate is not trusted.
    let untrusted = ClusterConfig {
        tls_ca: None,
        ..tls.clone()
    };
    assert!(matches!(
        Cluster::join(&untrusted, &url, "m").await,
        Err(ClusterError::Connect { .. })
    ));
    drop(server);
}

/// The node list is read from the stream's subjects, not through a consumer: a record that
/// expired between a consumer's creation and its delivery left the client's key listing
/// waiting forever (`nodes` hung while a killed node's record expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_nodes_while_records_expire_never_waits() {
    let nats = Nats::start();
    let config = ClusterConfig {
        heartbeat_secs: 0.5,
        lease_secs: 1.0,
        ..ClusterConfig::default()
    };
    let watcher = Cluster::join(&config, &nats.url, "watcher").await.unwrap();
    for round in 0..6 {
        let mut dying = Vec::new();
        for i in 0..20 {
            let name = format!("r{round}n{i}");
            dying.push(Cluster::join(&config, &nats.url, &name).await.unwrap());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Never renewed: each record expires one lease after its join, while we list.
        drop(dying);
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            tokio::time::timeout(Duration::from_secs(5), watcher.nodes())
                .await
                .unwrap_or_else(|_| panic!("round {round}: listing the nodes hung"))
                .unwrap();
        }
    }
}
