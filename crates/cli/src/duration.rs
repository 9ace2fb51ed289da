//! Durations on the command line, in the units the rest of the API uses: a flag takes
//! `500ms`, `30s`, `2m` or `1h` and hands the daemon milliseconds, as HTTP, MCP and the library
//! give them. A bare number is read in the flag's documented unit, as before units were
//! written: seconds for `--timeout`, `--idle-timeout` and `--wait`, milliseconds for
//! `wait --idle`.

/// The longest duration a flag takes: one year.
const MAX_MS: f64 = 86_400_000.0 * 365.0;

/// A duration, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Millis(pub u64);

/// A flag whose bare numbers are seconds (`--timeout 30` is `--timeout 30s`).
pub(crate) fn secs_flag(s: &str) -> Result<Millis, String> {
    parse(s, 1000.0)
}

/// A flag whose bare numbers are milliseconds (`--idle 500` is `--idle 500ms`).
pub(crate) fn ms_flag(s: &str) -> Result<Millis, String> {
    parse(s, 1.0)
}

/// `Some(ms)` of an optional flag.
pub(crate) fn ms(d: Option<Millis>) -> Option<u64> {
    d.map(|Millis(ms)| ms)
}

fn parse(s: &str, bare_unit_ms: f64) -> Result<Millis, String> {
    let s = s.trim();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let scale = match unit.trim() {
        "" => bare_unit_ms,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        other => {
            return Err(format!(
                "unknown unit '{other}': write the duration as 500ms, 30s, 2m or 1h"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a duration: write it as 500ms, 30s, 2m or 1h"))?;
    let ms = (value * scale).round();
    if !(0.0..=MAX_MS).contains(&ms) {
        return Err(format!("'{s}' is more than one year"));
    }
    Ok(Millis(ms as u64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn units_and_bare_numbers() {
        assert_eq!(secs_flag("30"), Ok(Millis(30_000)));
        assert_eq!(secs_flag("0.3"), Ok(Millis(300)));
        assert_eq!(secs_flag("300ms"), Ok(Millis(300)));
        assert_eq!(secs_flag("2m"), Ok(Millis(120_000)));
        assert_eq!(secs_flag("1.5s"), Ok(Millis(1500)));
        assert_eq!(ms_flag("500"), Ok(Millis(500)));
        assert_eq!(ms_flag("1s"), Ok(Millis(1000)));
        assert_eq!(ms_flag("1h"), Ok(Millis(3_600_000)));
        assert!(secs_flag("soon").unwrap_err().contains("500ms, 30s"));
        assert!(secs_flag("3d").unwrap_err().contains("unknown unit 'd'"));
        assert!(secs_flag("-1").is_err());
        assert!(secs_flag("400d").is_err());
        assert!(
            ms_flag("9999999h")
                .unwrap_err()
                .contains("more than one year")
        );
    }
}
