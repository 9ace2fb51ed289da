//! `subscriptions/listen` without a gap. The SDK acknowledges a listen stream before it hands
//! the stream to the server, and a client may act as soon as it reads the acknowledgement (run
//! a `session_exec`, then wait for the resource's update). A session first followed after the
//! acknowledgement can miss that output: over stdio the follow is a daemon connection of its
//! own, slower than a short command. So `ai-session mcp` serves through [`Server`], which
//! follows a listen stream's sessions before the request reaches the SDK's handler; `listen`
//! then adopts those subscriptions ([`Prepared::take`]). In the daemon (`/mcp`) a session is
//! followed in-process, in the same task that sent the acknowledgement.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{ClientRequest, ProtocolVersion, ServerConfig, SubscriptionFilter};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, Service, ServiceRole};
use rmcp::{ErrorData as McpError, ServerHandler};

use crate::AiSessionMcp;
use crate::daemon::{Daemon, Subscription};
use crate::resources;

/// The sessions of one listen request, followed before it was acknowledged, by session name.
/// Travels to `listen` in the request's extensions.
#[derive(Clone, Default)]
pub(crate) struct Prepared(Arc<Mutex<HashMap<String, Subscription>>>);

impl Prepared {
    /// Follows every session of the well-formed resource URIs in `filter`. A session that
    /// cannot be followed (it does not exist) is left for `listen`, which reports it.
    async fn follow(daemon: &Daemon, filter: &SubscriptionFilter) -> Self {
        let mut map = HashMap::new();
        let accepted = resources::acceptable(filter);
        for uri in accepted.resource_subscriptions.iter().flatten() {
            let Ok((session, _)) = resources::parse(uri) else {
                continue;
            };
            if map.contains_key(&session) {
                continue;
            }
            if let Ok(sub) = daemon.subscribe(&session).await {
                map.insert(session, sub);
            }
        }
        Prepared(Arc::new(Mutex::new(map)))
    }

    /// The request's prepared subscriptions (none when it came another way).
    pub(crate) fn of(context: &RequestContext<RoleServer>) -> Self {
        context
            .extensions
            .get::<Prepared>()
            .cloned()
            .unwrap_or_default()
    }

    /// The subscription following `session`, if one was made before the acknowledgement.
    pub(crate) fn take(&self, session: &str) -> Option<Subscription> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session)
    }
}

/// The MCP server as `ai-session mcp` serves it on stdio: [`AiSessionMcp`], with the sessions
/// of a `subscriptions/listen` request followed before the SDK acknowledges it.
pub struct Server(pub AiSessionMcp);

impl Service<RoleServer> for Server {
    async fn handle_request(
        &self,
        request: <RoleServer as ServiceRole>::PeerReq,
        mut context: RequestContext<RoleServer>,
    ) -> Result<<RoleServer as ServiceRole>::Resp, McpError> {
        if let ClientRequest::SubscriptionsListenRequest(listen) = &request {
            let prepared = Prepared::follow(&self.0.daemon, &listen.params.notifications).await;
            context.extensions.insert(prepared);
        }
        <AiSessionMcp as Service<RoleServer>>::handle_request(&self.0, request, context).await
    }

    async fn handle_notification(
        &self,
        notification: <RoleServer as ServiceRole>::PeerNot,
        context: NotificationContext<RoleServer>,
    ) -> Result<(), McpError> {
        <AiSessionMcp as Service<RoleServer>>::handle_notification(&self.0, notification, context)
            .await
    }

    fn get_info(&self) -> ServerConfig {
        ServerHandler::get_info(&self.0)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        <AiSessionMcp as Service<RoleServer>>::supported_protocol_versions(&self.0)
    }
}
