//! Helpers shared by the integration tests.

use std::time::Duration;

use ai_session_coord::{AgentSpec, CoordConfig, Coordinator, Event, Registration, Subscription};

/// A config with a long heartbeat deadline, so only tests about heartbeats see agents expire.
pub fn config() -> CoordConfig {
    CoordConfig {
        heartbeat_deadline: Duration::from_secs(3600),
        retry_base: Duration::from_secs(1),
        retry_max: Duration::from_secs(60),
        ..CoordConfig::default()
    }
}

pub fn agent(c: &Coordinator, name: &str, caps: &[&str]) -> Registration {
    let mut spec = AgentSpec::new(name);
    for cap in caps {
        spec = spec.capability(*cap);
    }
    c.register(spec).unwrap()
}

/// Waits (with a deadline) for the first event matching `pred`, skipping others.
pub async fn next_event(sub: &mut Subscription, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(7200);
    loop {
        let msg = tokio::time::timeout_at(deadline, sub.recv())
            .await
            .expect("event deadline passed")
            .expect("bus closed");
        let event = msg.event().expect("system messages carry events");
        if pred(&event) {
            return event;
        }
    }
}
