//! Hints in the HTTP API's own terms: routes with their JSON bodies or query strings, and JSON
//! field names (see `ai_session_protocol::hint`).

use ai_session_protocol::hint::Phrasing;
use ai_session_protocol::registry::{self, Input, Verb};
use serde_json::{Map, Value};

/// The REST phrasing: `POST /v1/sessions/build/wait {"condition": {"kind": "prompt"}}`.
pub(crate) struct Http;

impl Phrasing for Http {
    fn call(&self, method: &str, params: &Value) -> String {
        let Some(spec) = registry::spec(method) else {
            return format!("the daemon method `{method}`");
        };
        let Some(http) = spec.http else {
            return match params.as_object() {
                Some(p) if !p.is_empty() => {
                    format!("the daemon method `{method}` {params} (not served over HTTP)")
                }
                _ => format!("the daemon method `{method}` (not served over HTTP)"),
            };
        };
        let mut rest: Map<String, Value> = params.as_object().cloned().unwrap_or_default();
        let mut path = http.path.to_owned();
        for (var, field) in http.path_fields {
            let value = rest
                .remove(*field)
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .unwrap_or_else(|| var.to_uppercase());
            path = path.replace(&format!("{{{var}}}"), &percent(&value));
        }
        let verb = match http.verb {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        };
        match http.input {
            Input::Body if !rest.is_empty() => {
                format!("{verb} {path} {}", Value::Object(rest))
            }
            Input::Query if !rest.is_empty() => {
                let query: Vec<String> = rest
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        format!("{k}={}", percent(&v))
                    })
                    .collect();
                format!("{verb} {path}?{}", query.join("&"))
            }
            _ => format!("{verb} {path}"),
        }
    }

    fn field(&self, method: &str, field: &str) -> String {
        let from_path = registry::spec(method)
            .and_then(|s| s.http)
            .and_then(|h| h.path_fields.iter().find(|(_, f)| *f == field))
            .map(|(var, _)| *var);
        match from_path {
            Some(var) => format!("the path's {{{var}}}"),
            None => format!("`{field}`"),
        }
    }
}

/// `s` safe in a path segment or query value: unreserved characters as they are, the rest
/// percent-encoded.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Rephrases every hint in a result for HTTP: an object carrying `advice` (an exec result, also
/// nested in a restore's `rerun`) gets its `hint` phrased here, and loses the `advice`.
pub(crate) fn rephrase_result(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(advice) = obj.remove("advice") {
                if let Ok(advice) =
                    serde_json::from_value::<ai_session_protocol::hint::Advice>(advice)
                {
                    obj.insert("hint".into(), Value::from(advice.render(&Http)));
                }
            }
            if let Some(Value::String(text)) =
                obj.get_mut("compact").and_then(|c| c.get_mut("text"))
            {
                *text = ai_session_protocol::hint::rephrase_commands(text, &Http);
            }
            for v in obj.values_mut() {
                if matches!(v, Value::Object(_)) {
                    rephrase_result(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rephrase_result),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ai_session_protocol::hint::Advice;
    use serde_json::json;

    #[test]
    fn calls_are_routes_with_their_bodies_and_queries() {
        let a = Advice::new("{0}; {1}; {2}; {3}; raise {4}")
            .call(
                "session.wait",
                json!({"target": "my build", "condition": {"kind": "prompt"}}),
            )
            .call("session.read", json!({"target": "b", "since": 42}))
            .call("session.kill", json!({"target": "b"}))
            .call("daemon.stop", json!({}))
            .field("session.exec", "timeout_ms");
        assert_eq!(
            a.render(&Http),
            "POST /v1/sessions/my%20build/wait {\"condition\":{\"kind\":\"prompt\"}}; \
             GET /v1/sessions/b/read?since=42; DELETE /v1/sessions/b; \
             the daemon method `daemon.stop` (not served over HTTP); raise `timeout_ms`"
        );
    }

    #[test]
    fn advice_in_results_becomes_an_http_hint() {
        let advice = Advice::new("{0} waits").call(
            "session.wait",
            json!({"target": "s", "condition": {"kind": "prompt"}}),
        );
        let mut v = json!({"status": "running", "hint": "ai-session wait -t s --prompt waits",
                           "advice": advice});
        rephrase_result(&mut v);
        assert_eq!(
            v,
            json!({"status": "running",
                   "hint": "POST /v1/sessions/s/wait {\"condition\":{\"kind\":\"prompt\"}} waits"})
        );
    }
}
