//! The OpenAPI 3.1 document served at `/openapi.json`, built from the route table and the JSON
//! Schemas derived on the protocol types (`ai-session-protocol`'s `schema` feature): a changed
//! field changes the document with it.

use schemars::generate::SchemaSettings;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::error::ErrorBody;
use super::routes::{Call, Input, Route};

/// A generator whose references point into `components/schemas`.
pub(crate) fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator()
}

/// The whole document.
pub(crate) fn document(routes: &[Route]) -> Value {
    let mut g = generator();
    let error = g.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for r in routes {
        let op = operation(&mut g, r, &error);
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(r.method.as_str().to_ascii_lowercase(), op);
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ai-session",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Terminal sessions for AI agents over HTTP: the same methods as the \
    daemon's socket (docs/protocol.md). Every route needs `Authorization: Bearer TOKEN`, the token \
    being the content of the server's token file (`token_file` when it starts; `http.token` in \
    the daemon's state directory). Errors are `{\"error\": {kind, code, \
    message, hint?}}`. WebSocket streams also take the token as `?access_token=`. MCP over \
    streamable HTTP is served at /mcp.",
        },
        "security": [{ "bearer": [] }],
        "tags": [
            { "name": "sessions", "description": "Terminal sessions" },
            { "name": "context", "description": "Each session's token-aware context" },
            { "name": "snapshots", "description": "Saved sessions, to start again later" },
            { "name": "agents", "description": "Agents of the coordinator" },
            { "name": "bus", "description": "The message bus" },
            { "name": "tasks", "description": "The task distributor" },
            { "name": "daemon", "description": "The daemon" },
        ],
        "paths": paths,
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The content of the token file (`http.token` in the daemon's state directory)",
                },
            },
        },
    });
    no_boolean_schemas(&mut doc);
    enums_of_consts(&mut doc);
    doc
}

/// Rewrites `oneOf` lists of string constants (what `schemars` makes of an enum whose variants
/// have doc comments) as one `enum`, the variants' docs joined into its description: the same
/// set of values, in the form client generators read as an enumeration (openapi-python-client
/// takes each `const` for a type of its own and fails on every value but the first).
fn enums_of_consts(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            let consts: Option<Vec<(Value, Option<String>)>> = obj
                .get("oneOf")
                .and_then(Value::as_array)
                .and_then(|items| {
                    items
                        .iter()
                        .map(|i| {
                            let c = i.get("const").filter(|c| c.is_string())?;
                            let d = i.get("description").and_then(Value::as_str);
                            Some((c.clone(), d.map(str::to_owned)))
                        })
                        .collect()
                });
            if let Some(consts) = consts.filter(|c| !c.is_empty()) {
                obj.remove("oneOf");
                obj.insert("type".into(), json!("string"));
                let docs: Vec<String> = consts
                    .iter()
                    .filter_map(|(c, d)| Some(format!("`{}`: {}", c.as_str()?, d.as_ref()?)))
                    .collect();
                obj.insert(
                    "enum".into(),
                    Value::Array(consts.into_iter().map(|(c, _)| c).collect()),
                );
                if !docs.is_empty() {
                    let head = obj
                        .get("description")
                        .and_then(Value::as_str)
                        .map(|d| format!("{d}\n\n"))
                        .unwrap_or_default();
                    obj.insert(
                        "description".into(),
                        Value::from(format!("{head}{}", docs.join("\n"))),
                    );
                }
            }
            obj.values_mut().for_each(enums_of_consts);
        }
        Value::Array(items) => items.iter_mut().for_each(enums_of_consts),
        _ => {}
    }
}

/// Keywords whose value is one schema.
const ONE_SCHEMA: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "contains",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "schema",
];
/// Keywords whose value maps names to schemas.
const NAMED_SCHEMAS: &[&str] = &["properties", "patternProperties", "$defs", "schemas"];
/// Keywords whose value is a list of schemas.
const LISTED_SCHEMAS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Replaces the boolean schemas JSON Schema allows (`true`: anything, `false`: nothing) by their
/// object forms, `{}` and `{"not": {}}`: client generators (openapi-python-client among them)
/// fail on a schema that is not an object.
fn no_boolean_schemas(value: &mut Value) {
    fn object_form(v: &mut Value) {
        match v {
            Value::Bool(true) => *v = json!({}),
            Value::Bool(false) => *v = json!({ "not": {} }),
            _ => {}
        }
    }
    match value {
        Value::Object(obj) => {
            for (key, v) in obj.iter_mut() {
                let key = key.as_str();
                if ONE_SCHEMA.contains(&key) && !(key == "additionalProperties" && *v == false) {
                    object_form(v);
                } else if NAMED_SCHEMAS.contains(&key)
                    && let Value::Object(named) = v
                {
                    named.values_mut().for_each(object_form);
                } else if LISTED_SCHEMAS.contains(&key)
                    && let Value::Array(list) = v
                {
                    list.iter_mut().for_each(object_form);
                }
                no_boolean_schemas(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(no_boolean_schemas),
        _ => {}
    }
}

fn operation(g: &mut SchemaGenerator, r: &Route, error: &Schema) -> Value {
    let params = (r.params)(g);
    let props = params
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<String> = params
        .get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let is_path_field = |name: &str| r.path_fields.iter().any(|(_, f)| *f == name);
    let mut parameters = Vec::new();
    for (var, field) in r.path_fields {
        let schema = props
            .get(*field)
            .cloned()
            .unwrap_or(json!({ "type": "string" }));
        parameters.push(json!({ "name": var, "in": "path", "required": true, "schema": schema }));
    }
    if r.input == Input::Query {
        for (name, schema) in props.iter().filter(|(n, _)| !is_path_field(n)) {
            let mut p = json!({
                "name": name,
                "in": "query",
                "required": required.contains(name),
                "schema": schema,
            });
            if let Some(d) = schema.get("description") {
                p["description"] = d.clone();
            }
            parameters.push(p);
        }
    }
    let mut op = json!({
        "operationId": operation_id(r),
        "summary": r.summary,
        "tags": [r.tag],
        "parameters": parameters,
        "responses": responses(g, r, error),
    });
    if r.input == Input::Body {
        let mut body = params.clone();
        if let Some(obj) = body.as_object_mut() {
            if let Some(Value::Object(p)) = obj.get_mut("properties") {
                p.retain(|k, _| !is_path_field(k));
            }
            if let Some(Value::Array(req)) = obj.get_mut("required") {
                req.retain(|k| !k.as_str().is_some_and(is_path_field));
            }
        }
        let body_required = body
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        op["requestBody"] = json!({
            "required": body_required,
            "content": { "application/json": { "schema": body } },
        });
    }
    op
}

fn responses(g: &mut SchemaGenerator, r: &Route, error: &Schema) -> Value {
    let error = json!({
        "description": "An error: `kind` says what, `hint` what to do (401: no or wrong token)",
        "content": { "application/json": { "schema": error } },
    });
    match r.call {
        Call::SessionStream | Call::BusStream => json!({
            "101": { "description": "Switching protocols: a WebSocket of JSON text messages, each with a `type` (docs/http.md)" },
            "default": error,
        }),
        Call::Rpc(_) | Call::SessionInfo => {
            let result = (r.result)(g);
            json!({
                r.status.as_u16().to_string(): {
                    "description": r.summary,
                    "content": { "application/json": { "schema": result } },
                },
                "default": error,
            })
        }
    }
}

fn operation_id(r: &Route) -> String {
    match r.call {
        Call::Rpc(method) => method.replace('.', "_"),
        Call::SessionInfo => "session_get".into(),
        Call::SessionStream => "session_stream".into(),
        Call::BusStream => "bus_stream".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn document_covers_every_route_and_resolves_its_references() {
        let table = super::super::routes::table();
        let doc = document(&table);
        for r in &table {
            let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing", r.method, r.path);
        }
        // The exec body has the command but not the target (it is in the path).
        let exec = &doc["paths"]["/v1/sessions/{name}/exec"]["post"];
        let body = &exec["requestBody"]["content"]["application/json"]["schema"];
        assert!(body["properties"]["command"].is_object());
        assert!(body["properties"].get("target").is_none());
        assert_eq!(exec["parameters"][0]["name"], "name");
        // No schema is a boolean (client generators cannot read them).
        fn booleans(v: &Value, at: &str, found: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    for (k, x) in o {
                        let is_schema = ONE_SCHEMA.contains(&k.as_str())
                            && !(k == "additionalProperties" && *x == false);
                        if x.is_boolean() && is_schema {
                            found.push(format!("{at}/{k}"));
                        }
                        if NAMED_SCHEMAS.contains(&k.as_str())
                            && let Some(named) = x.as_object()
                        {
                            for (n, s) in named {
                                if s.is_boolean() {
                                    found.push(format!("{at}/{k}/{n}"));
                                }
                            }
                        }
                        booleans(x, &format!("{at}/{k}"), found);
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| booleans(x, at, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        booleans(&doc, "", &mut found);
        assert!(found.is_empty(), "boolean schemas at {found:?}");
        // Enumerations are `enum`s, not `oneOf` lists of constants.
        let status = &doc["components"]["schemas"]["ExecStatus"];
        assert_eq!(status["type"], "string", "{status}");
        assert!(
            status["enum"]
                .as_array()
                .unwrap()
                .contains(&json!("exited")),
            "{status}"
        );
        assert!(
            !doc.to_string().contains("\"oneOf\":[{\"const\""),
            "a oneOf of constants is left"
        );
        // Every $ref points at a component.
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "dangling $ref to {name}");
        }
    }
}
