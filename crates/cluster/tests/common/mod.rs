//! What the cluster crate's tests share: a private `nats-server -js` and the settings their
//! nodes join with.

#![allow(dead_code, clippy::expect_used)]

use ai_session_cluster::testing::NatsServer;
use ai_session_protocol::config::ClusterConfig;

/// A private nats-server and its client URL.
pub struct Nats {
    _server: NatsServer,
    pub url: String,
}

impl Nats {
    pub fn start() -> Nats {
        let server = NatsServer::start::<&str>(&[]).expect("nats-server (installed by .ci/run)");
        Nats {
            url: server.url("nats"),
            _server: server,
        }
    }
}

/// Quick heartbeats and a short lease, so the tests see expiry within seconds.
pub fn config() -> ClusterConfig {
    ClusterConfig {
        heartbeat_secs: 0.5,
        lease_secs: 3.0,
        ..ClusterConfig::default()
    }
}
