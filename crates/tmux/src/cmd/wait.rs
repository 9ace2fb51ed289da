//! `wait-for`: channels signalled across processes through the daemon's message bus, tmux's
//! "signalled before anyone waited" flag and channel locks kept in the layer's state (changed
//! under its lock, so a signal and a wait never miss each other), and `-E`: wait for the
//! pane's command to finish and exit with its status.

use ai_session_protocol::coord::{
    DeliveryResult, NOTIFY_BUS_MESSAGE, PublishParams, SubscribeParams,
};
use ai_session_protocol::methods::{
    Integration, NOTIFY_CLOSED, Target, WaitFor, WaitParams, WaitResult,
};
use ai_session_protocol::registry::{self as reg, Method};

use super::Ctx;
use crate::args::Args;
use crate::error::TmuxError;
use crate::server::Server;
use crate::target::{self, Kind};

fn topic(kind: &str, channel: &str) -> String {
    format!("tmux.{kind}.{channel}")
}

pub(crate) fn wait_for(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    if args.has('E') {
        return wait_command(c, args);
    }
    let Some(channel) = args.rest.first().cloned() else {
        return Err(TmuxError::msg(
            "command wait-for: too few arguments (need 1)",
        ));
    };
    let server = c.server()?;
    if args.has('S') {
        let r: DeliveryResult = publish(server, &topic("wait", &channel))?;
        if r.delivered == 0 {
            server.state.woken.insert(channel);
        }
        return server.save();
    }
    if args.has('U') {
        if !server.state.locked.contains(&channel) {
            return Err(TmuxError::msg(format!("channel {channel} not locked")));
        }
        server.state.locked.remove(&channel);
        server.save()?;
        publish(server, &topic("lock", &channel))?;
        return Ok(());
    }
    if args.has('L') {
        loop {
            if server.state.locked.insert(channel.clone()) {
                return server.save();
            }
            let sub = subscribe(server, &topic("lock", &channel))?;
            server.unlock()?;
            wait_message(server, &sub)?;
            server.relock()?;
        }
    }
    if server.state.woken.remove(&channel) {
        return server.save();
    }
    let sub = subscribe(server, &topic("wait", &channel))?;
    server.unlock()?;
    wait_message(server, &sub)
}

fn publish(server: &Server, topic: &str) -> Result<DeliveryResult, TmuxError> {
    let params = PublishParams {
        topic: topic.to_owned(),
        message: Some(serde_json::json!({"wake": true})),
        messages: None,
        token: None,
    };
    server.call(reg::BusPublish::NAME, params)
}

fn subscribe(server: &Server, topic: &str) -> Result<String, TmuxError> {
    let params = SubscribeParams {
        topic: topic.to_owned(),
    };
    let r: serde_json::Value = server.call(reg::BusSubscribe::NAME, params)?;
    Ok(r.get("subscription")
        .map(|s| s.to_string())
        .unwrap_or_default())
}

/// Blocks until a message of subscription `sub` arrives.
fn wait_message(server: &Server, sub: &str) -> Result<(), TmuxError> {
    loop {
        let Some(n) = server.client().notification() else {
            return Err(TmuxError::msg("lost server"));
        };
        if n.method == NOTIFY_BUS_MESSAGE
            && n.params
                .get("subscription")
                .map(|s| s.to_string())
                .as_deref()
                == Some(sub)
        {
            return Ok(());
        }
    }
}

/// `wait-for -E [-t pane]`: waits until the pane's command finishes; exits with its status.
fn wait_command(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let spec = args.get('t').or(args.rest.first().map(String::as_str));
    let found = target::resolve(&server.state, current, spec, Kind::Pane)?;
    let daemon = super::session::pane_daemon(server, found)?;
    let shell = server
        .live
        .get(&daemon)
        .is_some_and(|i| i.integration == Integration::Osc133);
    if !shell {
        // A pane running a program (not a shell) finishes when the program exits.
        let target = Target {
            target: daemon.clone(),
        };
        let _: serde_json::Value = server.call(reg::SessionSubscribe::NAME, target)?;
        server.unlock()?;
        loop {
            let Some(n) = server.client().notification() else {
                return Err(TmuxError::msg("lost server"));
            };
            if n.method == NOTIFY_CLOSED
                && n.params.get("target").and_then(|t| t.as_str()) == Some(&daemon)
            {
                let code = n
                    .params
                    .get("exit_code")
                    .and_then(|c| c.as_i64())
                    .unwrap_or(1);
                return Err(TmuxError::Status(i32::try_from(code).unwrap_or(1)));
            }
        }
    }
    server.unlock()?;
    loop {
        let params = WaitParams {
            target: daemon.clone(),
            condition: WaitFor::Prompt,
            timeout_ms: Some(3_600_000),
            since: None,
        };
        match server.call::<_, WaitResult>(reg::SessionWait::NAME, params) {
            Ok(r) => {
                let code = r.exit_code.unwrap_or(0);
                return if code == 0 {
                    Ok(())
                } else {
                    Err(TmuxError::Status(code))
                };
            }
            Err(TmuxError::Client(e))
                if e.rpc().and_then(|r| r.kind())
                    == Some(ai_session_protocol::ErrorKind::Timeout) => {}
            Err(e) => return Err(e),
        }
    }
}
