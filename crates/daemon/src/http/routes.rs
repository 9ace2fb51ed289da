//! The route table and the REST handler. Each route names a protocol method; the handler builds
//! its params from the path, the query string or the JSON body, calls `dispatch` (the same code
//! the socket serves, so there is one implementation of every method), and maps a protocol
//! error onto an HTTP status with the same kind, message and hint. The OpenAPI document is built
//! from this same table.

use ai_session_protocol::registry::{self as reg, Method as _};
use std::collections::HashMap;
use std::sync::Arc;

use ai_session_protocol::methods::{self as m};
use ai_session_protocol::{ErrorKind, RpcError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::error::{error_response, rpc_error_response, status_of};
use crate::server::Daemon;

/// The largest request body, as on the socket.
const MAX_BODY: usize = ai_session_protocol::MAX_REQUEST_BYTES;

pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// What a route does.
#[derive(Clone, Copy)]
pub(crate) enum Call {
    /// One protocol method.
    Rpc(&'static str),
    /// One session's `SessionInfo`, out of `session.list`.
    SessionInfo,
    /// A WebSocket stream of a session's events.
    SessionStream,
    /// A WebSocket stream of a bus topic.
    BusStream,
}

/// Where the params come from (besides the path).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    None,
    Body,
    Query,
}

#[derive(Clone)]
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    pub call: Call,
    pub input: Input,
    /// `(path variable, params field)`, e.g. `("name", "target")`.
    pub path_fields: &'static [(&'static str, &'static str)],
    /// The params' schema, inline (path fields are removed from it for the body).
    pub params: SchemaFn,
    pub result: SchemaFn,
    pub status: StatusCode,
    pub tag: &'static str,
    pub summary: &'static str,
}

/// An object without properties: methods without params or with an empty result.
#[derive(JsonSchema)]
pub(crate) struct Empty {}

fn inline<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

fn refer<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

impl Route {
    fn new(method: Method, path: &'static str, call: Call, summary: &'static str) -> Self {
        let tag = if path.contains("/context") {
            "context"
        } else if path.contains("/snapshots") {
            "snapshots"
        } else if path.starts_with("/v1/sessions") {
            "sessions"
        } else if path.starts_with("/v1/agents") {
            "agents"
        } else if path.starts_with("/v1/bus") {
            "bus"
        } else if path.starts_with("/v1/tasks") {
            "tasks"
        } else {
            "daemon"
        };
        Self {
            method,
            path,
            call,
            input: Input::None,
            path_fields: &[],
            params: inline::<Empty>,
            result: refer::<Empty>,
            status: StatusCode::OK,
            tag,
            summary,
        }
    }
    fn query<T: JsonSchema>(mut self) -> Self {
        self.input = Input::Query;
        self.params = inline::<T>;
        self
    }
    fn params_only<T: JsonSchema>(mut self) -> Self {
        self.params = inline::<T>;
        self
    }
    fn result<T: JsonSchema>(mut self) -> Self {
        self.result = refer::<T>;
        self
    }
    fn path(mut self, fields: &'static [(&'static str, &'static str)]) -> Self {
        self.path_fields = fields;
        self
    }
}

const NAME: &[(&str, &str)] = &[("name", "target")];

/// Every REST and WebSocket route: one per method the registry exposes over HTTP, plus the
/// session lookup and the two WebSocket streams. `/openapi.json` and `/mcp` are added by
/// [`router`].
pub(crate) fn table() -> Vec<Route> {
    use ai_session_protocol::registry::{Input as I, METHODS, Verb};
    let mut table: Vec<Route> = METHODS
        .iter()
        .filter_map(|spec| {
            let http = spec.http?;
            let method = match http.verb {
                Verb::Get => Method::GET,
                Verb::Post => Method::POST,
                Verb::Delete => Method::DELETE,
            };
            let mut r = Route::new(method, http.path, Call::Rpc(spec.name), spec.summary);
            r.input = match http.input {
                I::None => Input::None,
                I::Body => Input::Body,
                I::Query => Input::Query,
            };
            r.params = spec.params_schema;
            if spec.name == reg::SessionExec::NAME {
                r.params = inline::<super::view::ExecBody>;
            }
            r.result = spec.result_schema;
            r.path_fields = http.path_fields;
            if http.created {
                r.status = StatusCode::CREATED;
            }
            Some(r)
        })
        .collect();
    table.push(
        Route::new(
            Method::GET,
            "/v1/sessions/{name}",
            Call::SessionInfo,
            "One session",
        )
        .params_only::<m::Target>()
        .path(NAME)
        .result::<m::SessionInfo>(),
    );
    table.push(
        Route::new(
            Method::GET,
            "/v1/sessions/{name}/stream",
            Call::SessionStream,
            "WebSocket: output, state changes, commands started and finished",
        )
        .query::<StreamQuery>()
        .path(NAME),
    );
    table.push(
        Route::new(
            Method::GET,
            "/v1/bus/stream",
            Call::BusStream,
            "WebSocket: the messages published on a topic ($system: coordinator events)",
        )
        .query::<BusStreamQuery>(),
    );
    table
}

/// Query of `GET /v1/sessions/{name}/stream`.
#[derive(JsonSchema, serde::Deserialize, Default)]
pub(crate) struct StreamQuery {
    /// `text` (default): output as UTF-8 text in `data` (a character split across chunks is
    /// completed in the next message). `base64`: the exact bytes in `data_b64`.
    #[serde(default)]
    pub encoding: Option<String>,
}

/// Query of `GET /v1/bus/stream`.
#[derive(JsonSchema, serde::Deserialize)]
pub(crate) struct BusStreamQuery {
    /// The topic; `$system` streams the coordinator's events, `$results` finished tasks.
    pub topic: String,
}

/// The shared state of every handler.
pub(crate) struct App {
    pub daemon: Arc<Daemon>,
    pub routes: Vec<RouteRt>,
    pub openapi: Bytes,
}

/// A route with what the handler needs at run time: the JSON type of each params field, to
/// turn path and query strings into numbers and booleans.
pub(crate) struct RouteRt {
    pub route: Route,
    pub fields: HashMap<String, FieldType>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Integer,
    Number,
    Boolean,
    Other,
}

/// The HTTP router: every route of the table, `/openapi.json`, `/metrics`, `/mcp`, behind the `Host` and
/// `Origin` check and the token check.
pub(crate) fn router(
    daemon: Arc<Daemon>,
    token: super::auth::Token,
    bound: std::net::SocketAddr,
    allow_remote: bool,
    tools: ai_session_mcp::ToolSet,
) -> (Router, tokio_util::sync::CancellationToken) {
    let table = table();
    let mut g = super::openapi::generator();
    let routes: Vec<RouteRt> = table
        .iter()
        .map(|r| RouteRt {
            route: r.clone(),
            fields: field_types(&(r.params)(&mut g)),
        })
        .collect();
    let openapi = Bytes::from(super::openapi::document(&table).to_string());
    let app = Arc::new(App {
        daemon: daemon.clone(),
        routes,
        openapi,
    });
    let mut router: Router<Arc<App>> = Router::new();
    for (i, r) in table.iter().enumerate() {
        let Ok(filter) = MethodFilter::try_from(r.method.clone()) else {
            continue;
        };
        router = match r.call {
            Call::SessionStream => router.route(r.path, on(filter, super::stream::session)),
            Call::BusStream => router.route(r.path, on(filter, super::stream::bus)),
            Call::Rpc(_) | Call::SessionInfo => router.route(
                r.path,
                on(filter, move |State(app): State<Arc<App>>, req: Request| {
                    rest(app, i, req)
                }),
            ),
        };
    }
    let (mcp, cancel) = super::mcp::service(&daemon, allow_remote, tools);
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(|State(app): State<Arc<App>>| async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    app.openapi.clone(),
                )
            }),
        )
        .route("/metrics", axum::routing::get(super::metrics::route))
        .route(
            "/mcp",
            axum::routing::any(move |req: Request| {
                let mcp = mcp.clone();
                async move { mcp.handle(req).await }
            }),
        )
        .fallback(super::error::not_found)
        .method_not_allowed_fallback(super::error::method_not_allowed)
        .with_state(app);
    let authed = router.clone().layer(axum::middleware::from_fn_with_state(
        (token, daemon.clone()),
        super::auth::require_token,
    ));
    // The dashboard's pages, and its cookie's way into `router`; the rest goes to `authed`.
    let router = super::dashboard::router(daemon.clone(), router, authed)
        // Outermost, so it runs first: a rebinding page learns nothing, not even whether its
        // token was good.
        .layer(axum::middleware::from_fn_with_state(
            super::origin::Origins::new(bound, allow_remote),
            super::origin::check,
        ));
    (router, cancel)
}

/// The JSON type of each property of an inline object schema.
fn field_types(schema: &Schema) -> HashMap<String, FieldType> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return HashMap::new();
    };
    props
        .iter()
        .map(|(k, v)| {
            let types: Vec<&str> = match v.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let t = if types.contains(&"integer") {
                FieldType::Integer
            } else if types.contains(&"number") {
                FieldType::Number
            } else if types.contains(&"boolean") {
                FieldType::Boolean
            } else {
                FieldType::Other
            };
            (k.clone(), t)
        })
        .collect()
}

/// A path or query string as the JSON value its field expects.
fn typed(field: &str, raw: &str, t: FieldType, place: &str) -> Result<Value, RpcError> {
    let bad = |what: &str| {
        RpcError::new(
            ErrorKind::InvalidParams,
            format!("{place} parameter `{field}` must be {what}, got '{raw}'"),
        )
    };
    Ok(match t {
        FieldType::Integer => {
            if let Ok(n) = raw.parse::<u64>() {
                Value::from(n)
            } else {
                Value::from(raw.parse::<i64>().map_err(|_| bad("an integer"))?)
            }
        }
        FieldType::Number => {
            let n = raw.parse::<f64>().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite number"))?
        }
        FieldType::Boolean => match raw {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        FieldType::Other => Value::String(raw.to_owned()),
    })
}

/// One REST request: params from path, query and body; the call; the response.
async fn rest(app: Arc<App>, index: usize, req: Request) -> Response {
    let Some(rt) = app.routes.get(index) else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "route table mismatch",
            None,
        );
    };
    // The caller's `traceparent` header: the request's span joins its trace.
    let trace = crate::telemetry::http_trace(req.headers());
    let mut params = match params(rt, req).await {
        Ok(p) => p,
        Err((status, err)) => return rpc_error_response(status, &err),
    };
    let view = match rt.route.call {
        Call::Rpc(reg::SessionExec::NAME) => match super::view::take(&mut params) {
            Ok(v) => Some(v),
            Err(err) => return rpc_error_response(status_of(&err), &err),
        },
        _ => None,
    };
    let called = call(&app.daemon, rt.route.call, params);
    match crate::telemetry::with_caller_trace(trace, called).await {
        Ok(mut value) => {
            if let Some(view) = view {
                super::view::apply(view, &mut value);
            }
            super::hint::rephrase_result(&mut value);
            (rt.route.status, axum::Json(value)).into_response()
        }
        Err(err) => rpc_error_response(status_of(&err), &err),
    }
}

/// The params object of a request: the JSON body (or the query string), then the path fields.
async fn params(rt: &RouteRt, req: Request) -> Result<Value, (StatusCode, RpcError)> {
    let (mut parts, body) = req.into_parts();
    let mut obj = Map::new();
    match rt.route.input {
        Input::Body => {
            let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    RpcError::new(
                        ErrorKind::TooLarge,
                        format!("cannot read the body (at most {MAX_BODY} bytes): {e}"),
                    )
                    .with_hint("send large input in pieces, or write it to a file and exec a command that reads it"),
                )
            })?;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    (
                        StatusCode::BAD_REQUEST,
                        RpcError::new(
                            ErrorKind::ParseError,
                            format!("the body is not valid JSON: {e}"),
                        )
                        .with_hint("send a JSON object, with Content-Type: application/json"),
                    )
                })?;
                match value {
                    Value::Object(o) => obj = o,
                    Value::Null => {}
                    other => {
                        return Err((
                            StatusCode::BAD_REQUEST,
                            RpcError::new(
                                ErrorKind::InvalidParams,
                                format!("the body must be a JSON object, not {}", kind_of(&other)),
                            )
                            .with_hint("GET /openapi.json has the schema of every body"),
                        ));
                    }
                }
            }
        }
        Input::Query => {
            let Query(pairs) =
                Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|e| {
                    (
                        StatusCode::BAD_REQUEST,
                        RpcError::new(
                            ErrorKind::InvalidParams,
                            format!("invalid query string: {e}"),
                        ),
                    )
                })?;
            for (k, v) in pairs {
                let t = rt.fields.get(&k).copied().unwrap_or(FieldType::Other);
                let value = typed(&k, &v, t, "query").map_err(|e| (StatusCode::BAD_REQUEST, e))?;
                obj.insert(k, value);
            }
        }
        Input::None => {}
    }
    if !rt.route.path_fields.is_empty() {
        let Path(vars) = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &())
            .await
            .map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    RpcError::new(ErrorKind::InvalidParams, format!("invalid path: {e}")),
                )
            })?;
        for (var, field) in rt.route.path_fields {
            let raw = vars.get(*var).map(String::as_str).unwrap_or_default();
            let t = rt.fields.get(*field).copied().unwrap_or(FieldType::Other);
            let value = typed(var, raw, t, "path").map_err(|e| (StatusCode::BAD_REQUEST, e))?;
            obj.insert((*field).to_owned(), value);
        }
    }
    if let Call::Rpc(reg::AgentRegister::NAME) = rt.route.call {
        // An HTTP request is not a connection that stays open: an agent registered over HTTP
        // lives until it unregisters or misses its heartbeat deadline.
        obj.insert("keep".into(), Value::Bool(true));
    }
    Ok(Value::Object(obj))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Calls a protocol method through the service, as the request's principal, on a caller of
/// its own.
pub(crate) async fn rpc(
    daemon: &Arc<Daemon>,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    // Nothing this module calls through here streams: notifications would have nowhere to go.
    let caller = crate::service::Caller::detached(crate::access::http_principal());
    let result = crate::service::handle(daemon, &caller, method, params).await;
    caller.close(daemon);
    result
}

async fn call(daemon: &Arc<Daemon>, call: Call, params: Value) -> Result<Value, RpcError> {
    match call {
        Call::Rpc(method) => rpc(daemon, method, params).await,
        Call::SessionInfo => {
            let name = params
                .get("target")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let list = rpc(daemon, reg::SessionList::NAME, json!({})).await?;
            let sessions = list
                .get("sessions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names: Vec<String> = sessions
                .iter()
                .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect();
            sessions
                .into_iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| {
                    RpcError::new(
                        ErrorKind::SessionNotFound,
                        format!("no session named '{name}'"),
                    )
                    .with_hint(if names.is_empty() {
                        "no sessions exist: create one with POST /v1/sessions".to_owned()
                    } else {
                        format!("existing sessions: {}", names.join(", "))
                    })
                    .with_sessions(names)
                })
        }
        Call::SessionStream | Call::BusStream => Err(RpcError::new(
            ErrorKind::InvalidRequest,
            "this route is a WebSocket stream",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Every method the registry exposes over HTTP is in the OpenAPI document under its path
    /// and verb, and every method is described in `docs/protocol.md`.
    #[test]
    fn every_method_is_routed_documented_and_in_openapi() {
        let doc = super::super::openapi::document(&table());
        let protocol = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md"),
        )
        .unwrap();
        for spec in ai_session_protocol::registry::METHODS {
            assert!(
                protocol.contains(&format!("`{}`", spec.name)),
                "{} is not in docs/protocol.md",
                spec.name
            );
            let Some(http) = spec.http else { continue };
            let verb = format!("{:?}", http.verb).to_lowercase();
            let op = &doc["paths"][http.path][&verb];
            assert!(
                op.is_object(),
                "{} {} missing from OpenAPI",
                verb,
                http.path
            );
            assert_eq!(op["summary"], spec.summary, "{}", spec.name);
        }
    }

    #[test]
    fn query_strings_take_their_field_types() {
        assert_eq!(
            typed("since", "12", FieldType::Integer, "query").unwrap(),
            json!(12)
        );
        assert_eq!(
            typed("raw", "true", FieldType::Boolean, "query").unwrap(),
            json!(true)
        );
        assert_eq!(
            typed("state", "done", FieldType::Other, "query").unwrap(),
            json!("done")
        );
        let e = typed("since", "x", FieldType::Integer, "query").unwrap_err();
        assert!(
            e.message.contains("`since` must be an integer"),
            "{}",
            e.message
        );
    }
}
