//! Secrets masked out of a command line before it goes into a span (`[telemetry]
//! record_commands`): values of variables and options whose names say they are secret,
//! `Authorization` headers, and passwords in URLs.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret.
const MASK: &str = "***";

/// Names that mark a value as secret, as a regex alternation.
const SECRET: &str = r"[A-Za-z0-9_\-]*(?:PASSWORD|PASSWD|PASS|SECRET|TOKEN|API_?KEY|APIKEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)[A-Za-z0-9_\-]*";

/// `NAME=value` and `--name=value` / `--name value`, with the secret name captured.
static ASSIGNMENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)(?P<key>--?{SECRET}(?:=|\s+)|{SECRET}=)(?P<value>"[^"]*"|'[^']*'|[^\s;&|]+)"#
    ))
    .ok()
});

/// `Authorization: Bearer xyz` / `-H 'Authorization: ...'`.
static AUTH_HEADER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<key>authorization:\s*)(?P<value>(?:bearer|basic|token)\s+[^'"\s]+|[^'"\s]+)"#,
    )
    .ok()
});

/// `scheme://user:password@host`.
static URL_PASSWORD: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?P<key>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:)[^@\s/]+@").ok());

/// `command` with every secret it shows replaced by `***`.
pub(crate) fn command(command: &str) -> String {
    let mut out = command.to_owned();
    if let Some(re) = AUTH_HEADER.as_ref() {
        out = re.replace_all(&out, format!("${{key}}{MASK}")).into_owned();
    }
    if let Some(re) = URL_PASSWORD.as_ref() {
        out = re
            .replace_all(&out, format!("${{key}}{MASK}@"))
            .into_owned();
    }
    if let Some(re) = ASSIGNMENT.as_ref() {
        out = re
            .replace_all(&out, |c: &regex::Captures<'_>| {
                let value = c.name("value").map_or("", |m| m.as_str());
                // A flag alone followed by another flag (`--token-file --verbose`) has no
                // value to hide; an already masked one stays as it is.
                if value.starts_with('-') || value == MASK {
                    return c[0].to_owned();
                }
                format!("{}{MASK}", &c["key"])
            })
            .into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        assert_eq!(command("make -j4 test"), "make -j4 test");
        assert_eq!(
            command("DB_PASSWORD=hunter2 ./migrate --verbose"),
            "DB_PASSWORD=*** ./migrate --verbose"
        );
        assert_eq!(
            command("gh auth login --with-token abc123 && ls"),
            "gh auth login --with-token *** && ls"
        );
        assert_eq!(
            command("curl -H 'Authorization: Bearer sk-123' https://x"),
            "curl -H 'Authorization: ***' https://x"
        );
        assert_eq!(
            command("git clone https://bob:s3cret@example.com/r.git"),
            "git clone https://bob:***@example.com/r.git"
        );
        assert_eq!(command("export API_KEY='a b c'"), "export API_KEY=***");
    }
}
