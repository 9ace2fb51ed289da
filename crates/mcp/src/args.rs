//! Tool arguments: decoded leniently (a number sent as a string, `"30"`, is the number 30, as
//! some clients send every argument), and refused with a sentence that names the argument
//! instead of the decoder's own words. Named `Parameters` like the SDK's extractor, so the
//! `#[tool]` macro takes each tool's input schema from it.

use ai_session_protocol::decode::decode_lenient;
use rmcp::ErrorData as McpError;
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// What starts the message of an argument error, so that `call_tool` can tell it from other
/// invalid-params errors and answer it as a tool error.
pub(crate) const PREFIX: &str = "invalid arguments: ";

/// A tool's arguments, decoded.
pub struct Parameters<P>(pub P);

impl<P: JsonSchema> JsonSchema for Parameters<P> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        P::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        P::json_schema(generator)
    }
}

impl<S, P: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<P> {
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, McpError> {
        let arguments = context.arguments.take().unwrap_or_default();
        decode_lenient(Value::Object(arguments))
            .map(Parameters)
            .map_err(|e| {
                McpError::invalid_params(
                    format!("{PREFIX}{}", e.message),
                    Some(json!({ "field": e.field })),
                )
            })
    }
}
