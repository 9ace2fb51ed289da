//! `view` of `POST /v1/sessions/{name}/exec`: which output the answer carries, as the CLI's
//! `exec --view` and MCP's `session_exec` `view` choose it. The daemon's exec always produces
//! both the output and its compact view; this front end leaves out what the caller did not ask
//! for, so an agent on HTTP pays the same tokens as one on MCP.

use ai_session_protocol::methods::ExecParams;
use ai_session_protocol::{ErrorKind, RpcError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The output an exec answers with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum View {
    /// `output` and, for a finished command, `compact` and `parsed` (the default).
    #[default]
    Both,
    /// The plain `output` only.
    Full,
    /// `compact` only: `output` is empty when a compact view was made (a command still running
    /// has none and keeps its `output`); `GET .../read?since=OUTPUT_START` returns the output.
    Compact,
}

/// The body of `POST /v1/sessions/{name}/exec`: the method's params and the view.
#[derive(JsonSchema)]
#[allow(dead_code)] // a schema: the handler reads the JSON itself
pub(crate) struct ExecBody {
    #[serde(flatten)]
    params: ExecParams,
    /// Which output to return: `both` (default), `full` or `compact`.
    #[serde(default)]
    view: Option<View>,
}

/// Takes `view` out of an exec's params.
pub(crate) fn take(params: &mut Value) -> Result<View, RpcError> {
    let Some(v) = params.as_object_mut().and_then(|o| o.remove("view")) else {
        return Ok(View::Both);
    };
    if v.is_null() {
        return Ok(View::Both);
    }
    serde_json::from_value(v.clone()).map_err(|_| {
        RpcError::new(
            ErrorKind::InvalidParams,
            format!("`view` cannot be {v}: give one of both, full, compact"),
        )
    })
}

/// Leaves out of an exec result what `view` does not ask for.
pub(crate) fn apply(view: View, result: &mut Value) {
    let Some(obj) = result.as_object_mut() else {
        return;
    };
    match view {
        View::Both => {}
        View::Full => {
            obj.remove("compact");
            obj.remove("parsed");
        }
        View::Compact => {
            if obj.get("compact").is_some_and(|c| !c.is_null()) {
                obj.insert("output".into(), Value::from(""));
                obj.remove("parsed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn views_leave_out_what_was_not_asked_for() {
        let result = json!({"output": "hi\n", "compact": {"text": "hi"}, "parsed": {}});
        let mut full = result.clone();
        apply(View::Full, &mut full);
        assert_eq!(full, json!({"output": "hi\n"}));
        let mut compact = result.clone();
        apply(View::Compact, &mut compact);
        assert_eq!(compact, json!({"output": "", "compact": {"text": "hi"}}));
        let mut running = json!({"output": "so far", "status": "running"});
        apply(View::Compact, &mut running);
        assert_eq!(running["output"], "so far");
        let mut p = json!({"command": "x", "view": "sideways"});
        let e = take(&mut p).unwrap_err();
        assert_eq!(
            e.message,
            "`view` cannot be \"sideways\": give one of both, full, compact"
        );
    }
}
