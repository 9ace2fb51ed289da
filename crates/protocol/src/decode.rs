//! Decoding params into their typed form, with errors in plain language that name the field
//! (`` `timeout_ms` must be a whole number, not the string "soon" ``) instead of the decoder's
//! own words (`invalid type: string "soon", expected u64`).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why params did not decode: the field (a dotted path, `keys[0]`, empty for the whole object)
/// and a sentence naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

/// How many numbers sent as strings [`decode_lenient`] converts before giving up.
const MAX_COERCIONS: usize = 64;

/// Decodes `value` as a `T`.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| plain(&e))
}

/// As [`decode`], but a number sent as a string (`"30"` where a number is expected, as some
/// clients send every argument) is taken as the number.
pub fn decode_lenient<T: DeserializeOwned>(mut value: Value) -> Result<T, Invalid> {
    for _ in 0..MAX_COERCIONS {
        let e = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        let wants_number = e.inner().to_string().starts_with("invalid type: string");
        let converted = wants_number
            && number_at(&mut value, e.path())
                .is_some_and(|slot| coerce(slot, &e.inner().to_string()));
        if !converted {
            return Err(plain(&e));
        }
    }
    decode(value)
}

/// The value at `path`, if the path leads somewhere.
fn number_at<'a>(value: &'a mut Value, path: &serde_path_to_error::Path) -> Option<&'a mut Value> {
    use serde_path_to_error::Segment;
    let mut at = value;
    for seg in path.iter() {
        at = match seg {
            Segment::Map { key } => at.get_mut(key.as_str())?,
            Segment::Seq { index } => at.get_mut(*index)?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(at)
}

/// Replaces a numeric string by its number when the decoder wanted a number.
fn coerce(slot: &mut Value, error: &str) -> bool {
    let Value::String(s) = slot else { return false };
    let expected = error.rsplit("expected ").next().unwrap_or_default();
    let integer = [
        "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize",
    ]
    .iter()
    .any(|t| expected.starts_with(t));
    let float = expected.starts_with("f32") || expected.starts_with("f64");
    let text = s.trim();
    let number = if integer {
        text.parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .ok()
    } else if float {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
    } else {
        None
    };
    match number {
        Some(n) => {
            *slot = n;
            true
        }
        None => false,
    }
}

/// The decoder's error as a sentence naming the field.
fn plain(e: &serde_path_to_error::Error<serde_json::Error>) -> Invalid {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let raw = e.inner().to_string();
    let joined = |child: &str| {
        if path.is_empty() {
            child.to_owned()
        } else {
            format!("{path}.{child}")
        }
    };
    let name = |p: &str| {
        if p.is_empty() {
            "the params".to_owned()
        } else {
            format!("`{p}`")
        }
    };
    if let Some(field) = between(&raw, "missing field `", "`") {
        let field = joined(field);
        return Invalid {
            message: format!("{} is required", name(&field)),
            field,
        };
    }
    if let Some(field) = between(&raw, "unknown field `", "`") {
        let field = joined(field);
        let known = raw
            .split_once("expected one of ")
            .map(|(_, k)| format!("; the known fields here are {}", k.replace('`', "")))
            .or_else(|| {
                raw.contains("there are no fields")
                    .then(|| "; this takes no fields".to_owned())
            })
            .unwrap_or_default();
        return Invalid {
            message: format!("{} is not a field of this request{known}", name(&field)),
            field,
        };
    }
    if let Some(variant) = between(&raw, "unknown variant `", "`") {
        let choices = raw
            .split_once("expected one of ")
            .or_else(|| raw.split_once("expected "))
            .map(|(_, k)| k.replace('`', ""))
            .unwrap_or_default();
        return Invalid {
            message: format!(
                "{} cannot be \"{variant}\": give one of {choices}",
                name(&path)
            ),
            field: path,
        };
    }
    if let Some(rest) = raw
        .strip_prefix("invalid type: ")
        .or_else(|| raw.strip_prefix("invalid value: "))
    {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return Invalid {
            message: format!(
                "{} must be {}, not {}",
                name(&path),
                expected_words(expected),
                got_words(got)
            ),
            field: path,
        };
    }
    if raw.starts_with("invalid length") {
        let expected = raw.split_once("expected ").map(|(_, e)| e).unwrap_or("");
        return Invalid {
            message: format!("{} must have {expected}", name(&path)),
            field: path,
        };
    }
    if raw.starts_with("data did not match any variant") {
        return Invalid {
            message: format!("{} has none of the accepted shapes", name(&path)),
            field: path,
        };
    }
    Invalid {
        message: format!("{} is not valid: {raw}", name(&path)),
        field: path,
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// What the decoder expected, in words.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    let unsigned = |max: &str| format!("a whole number from 0 to {max}");
    match e {
        "u8" => unsigned("255"),
        "u16" => unsigned("65535"),
        "u32" => unsigned("4294967295"),
        "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" | "a borrowed string" | "a character" => "a string".into(),
        "a sequence" => "an array".into(),
        "a map" => "an object".into(),
        _ if e.starts_with("struct ") || e.starts_with("internally tagged enum") => {
            "an object".into()
        }
        _ if e.starts_with("unit variant") || e.starts_with("enum ") => {
            "one of the named values".into()
        }
        _ if e.starts_with("a non-zero") => "a number other than 0".into(),
        other => other.to_owned(),
    }
}

/// What was sent, in words: `string "soon"` is the string "soon".
fn got_words(got: &str) -> String {
    let got = got.trim();
    if let Some(s) = got.strip_prefix("string ") {
        return format!("the string {s}");
    }
    for (prefix, what) in [
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("boolean ", ""),
    ] {
        if let Some(v) = got.strip_prefix(prefix) {
            return format!("{what}{}", v.trim_matches('`'));
        }
    }
    match got {
        "null" => "null".into(),
        "sequence" => "an array".into(),
        "map" => "an object".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::methods::{ExecParams, WaitParams};
    use serde_json::json;

    fn message<T: DeserializeOwned + std::fmt::Debug>(v: Value) -> Invalid {
        decode::<T>(v).unwrap_err()
    }

    #[test]
    fn errors_name_the_field_in_plain_words() {
        let e = message::<ExecParams>(json!({"target": "s"}));
        assert_eq!(e.field, "command");
        assert_eq!(e.message, "`command` is required");

        let e = message::<ExecParams>(json!({"target": "s", "command": "x", "timeout_ms": "soon"}));
        assert_eq!(e.field, "timeout_ms");
        assert_eq!(
            e.message,
            "`timeout_ms` must be a whole number, 0 or more, not the string \"soon\""
        );

        let e = message::<ExecParams>(json!({"target": "s", "command": "x", "timeout_ms": -4}));
        assert_eq!(
            e.message,
            "`timeout_ms` must be a whole number, 0 or more, not the number -4"
        );

        let e = message::<WaitParams>(json!({"target": "s", "condition": {"kind": "soon"}}));
        assert_eq!(e.field, "condition");
        assert!(
            e.message
                .starts_with("`condition` cannot be \"soon\": give one of"),
            "{}",
            e.message
        );
        for jargon in ["invalid type", "expected", "u64", "variant"] {
            assert!(!e.message.contains(jargon), "{}", e.message);
        }
    }

    #[test]
    fn a_wait_condition_takes_the_tagged_and_the_short_shape() {
        use crate::methods::WaitFor;
        for (condition, want) in [
            (json!({"kind": "prompt"}), "Prompt"),
            (json!({"prompt": true}), "Prompt"),
            (json!({"regex": "x$"}), "Regex"),
            (json!({"kind": "regex", "pattern": "x$"}), "Regex"),
            (json!({"idle_ms": 300}), "Idle"),
            (json!({"kind": "idle", "ms": 300}), "Idle"),
        ] {
            let p: WaitParams = decode(json!({"target": "s", "condition": condition})).unwrap();
            let got = match p.condition {
                WaitFor::Prompt => "Prompt",
                WaitFor::Regex { .. } => "Regex",
                WaitFor::Idle { .. } => "Idle",
            };
            assert_eq!(got, want, "{condition}");
        }
        let e = message::<WaitParams>(
            json!({"target": "s", "condition": {"prompt": true, "idle_ms": 3}}),
        );
        assert_eq!(e.field, "condition");
        assert!(e.message.contains("exactly one of"), "{}", e.message);
    }

    #[test]
    fn numbers_sent_as_strings_are_taken_when_lenient_only() {
        let v =
            json!({"target": "s", "command": "x", "timeout_ms": "1500", "view_budget": " 300 "});
        let p: ExecParams = decode_lenient(v.clone()).unwrap();
        assert_eq!(p.timeout_ms, Some(1500));
        assert_eq!(p.view_budget, Some(300));
        assert!(decode::<ExecParams>(v).is_err());
        let bad = json!({"target": "s", "command": "x", "timeout_ms": "1.5e"});
        assert_eq!(
            decode_lenient::<ExecParams>(bad).unwrap_err().field,
            "timeout_ms"
        );
    }
}
