//! Recognising which tool produced an output: first from the command line, then from the content.
//!
//! The command line wins when it names a tool whose output has a fixed shape (`git status`, `ps`).
//! Commands that run something unknown (`npm test`, `make`, `./run.sh`) are recognised from the content.
//! Content sniffing reads only the head and tail of large inputs, so detection costs the same on 1 KB and
//! 1 GB. When nothing matches, the format is [`Format::Text`] and the generic view is used.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The formats this crate parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Format {
    CargoBuild,
    CargoTest,
    Nextest,
    Tsc,
    Ruff,
    Eslint,
    GoBuild,
    Gcc,
    JsBundler,
    Pytest,
    Jest,
    Vitest,
    GoTest,
    Mocha,
    GitStatus,
    GitLog,
    GitDiff,
    GitShow,
    GitRemote,
    GitMerge,
    GitBranch,
    SvnStatus,
    NpmInstall,
    YarnInstall,
    PnpmInstall,
    /// A package.json script run through npm, yarn or pnpm whose output no more specific parser claims.
    ScriptRun,
    CargoPackage,
    PipInstall,
    Ps,
    Ss,
    Netstat,
    Df,
    Du,
    LsLong,
    Free,
    Log,
    JsonLog,
    Text,
}

/// Picks the format from the command (when given) and the cleaned content.
pub fn detect(command: Option<&str>, text: &str) -> Format {
    if let Some(f) = command.and_then(from_command)
        && content_agrees(f, text)
    {
        if f == Format::ScriptRun {
            // A script runs some other tool (jest, tsc, webpack): its output decides when it is known.
            return match from_content(text) {
                Format::Text
                | Format::Log
                | Format::JsonLog
                | Format::NpmInstall
                | Format::YarnInstall
                | Format::PnpmInstall => Format::ScriptRun,
                other => other,
            };
        }
        return f;
    }
    from_content(text)
}

/// The package manager (`npm`, `yarn`, `pnpm`) the command line runs, if any.
pub fn package_manager(command: &str) -> Option<&'static str> {
    match *program_words(command).first()? {
        "npm" => Some("npm"),
        "yarn" => Some("yarn"),
        "pnpm" => Some("pnpm"),
        _ => None,
    }
}

/// Some command formats are only trusted when the content looks right: a `cargo test` that failed to
/// compile is a build output; `ls -l` of one file has no `total` line but still rows.
fn content_agrees(f: Format, text: &str) -> bool {
    match f {
        Format::CargoTest => true,
        Format::LsLong => text.lines().any(|l| LS_ROW.is_match(l)),
        Format::Ps => text.lines().next().is_some_and(|l| l.contains("PID")),
        _ => true,
    }
}

/// The program and its arguments of the command that produced the output: the last `&&`/`;` step, the
/// first stage of its pipeline, without env assignments and wrappers (`sudo`, `time`, `npx`).
fn program_words(command: &str) -> Vec<&str> {
    let step = command
        .rsplit("&&")
        .flat_map(|s| s.rsplit(';'))
        .find(|s| !s.trim().is_empty())
        .unwrap_or(command);
    let stage = step.split('|').next().unwrap_or(step);
    let mut words: Vec<&str> = stage.split_whitespace().collect();
    while let Some(w) = words.first() {
        let wrapper = matches!(
            *w,
            "sudo" | "time" | "env" | "npx" | "nice" | "exec" | "command" | "stdbuf"
        );
        if wrapper || w.contains('=') || (w.starts_with('-') && words.len() > 1) {
            words.remove(0);
        } else {
            break;
        }
    }
    if let Some(first) = words.first_mut() {
        *first = first.rsplit('/').next().unwrap_or(first);
    }
    words
}

/// The format a command line implies, when it implies one.
pub fn from_command(command: &str) -> Option<Format> {
    let words = program_words(command);
    let prog = *words.first()?;
    let sub = words
        .iter()
        .skip(1)
        .find(|w| !w.starts_with('-'))
        .copied()
        .unwrap_or("");
    match prog {
        "cargo" => cargo_format(&words),
        "git" => git_format(sub),
        "svn" if matches!(sub, "status" | "st" | "stat") => Some(Format::SvnStatus),
        "pytest" | "py.test" => Some(Format::Pytest),
        "python" | "python3" if words.contains(&"pytest") => Some(Format::Pytest),
        "python" | "python3" if words.contains(&"pip") && words.contains(&"install") => {
            Some(Format::PipInstall)
        }
        "pip" | "pip3" | "uv" if words.contains(&"install") => Some(Format::PipInstall),
        "npm" if matches!(sub, "install" | "i" | "ci" | "add" | "update" | "uninstall") => {
            Some(Format::NpmInstall)
        }
        "yarn" if matches!(sub, "" | "install" | "add" | "up" | "upgrade" | "remove") => {
            Some(Format::YarnInstall)
        }
        "pnpm" if matches!(sub, "install" | "i" | "add" | "up" | "update" | "remove") => {
            Some(Format::PnpmInstall)
        }
        "npm" if matches!(sub, "run" | "run-script" | "test" | "t" | "start") => {
            Some(Format::ScriptRun)
        }
        "yarn" | "pnpm" if !matches!(sub, "exec" | "dlx" | "why" | "list" | "ls" | "info") => {
            Some(Format::ScriptRun)
        }
        "jest" => Some(Format::Jest),
        "vitest" => Some(Format::Vitest),
        "mocha" => Some(Format::Mocha),
        "tsc" => Some(Format::Tsc),
        "ruff" if matches!(sub, "check" | "") => Some(Format::Ruff),
        "eslint" => Some(Format::Eslint),
        "webpack" | "vite" | "rollup" | "esbuild" => Some(Format::JsBundler),
        "go" => match sub {
            "test" => Some(Format::GoTest),
            "build" | "vet" | "install" | "run" => Some(Format::GoBuild),
            _ => None,
        },
        "gcc" | "g++" | "cc" | "c++" | "clang" | "clang++" => Some(Format::Gcc),
        "ps" => Some(Format::Ps),
        "ss" => Some(Format::Ss),
        "netstat" => Some(Format::Netstat),
        "df" => Some(Format::Df),
        "du" => Some(Format::Du),
        "ls" if words
            .iter()
            .any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('l')) =>
        {
            Some(Format::LsLong)
        }
        "free" => Some(Format::Free),
        _ => None,
    }
}

fn cargo_format(words: &[&str]) -> Option<Format> {
    let sub = words
        .iter()
        .skip(1)
        .find(|w| !w.starts_with('-') && !w.starts_with('+'))
        .copied()?;
    match sub {
        "build" | "b" | "check" | "c" | "clippy" | "doc" | "run" | "r" => Some(Format::CargoBuild),
        "test" | "t" | "bench" => Some(Format::CargoTest),
        "nextest" => Some(Format::Nextest),
        "add" | "install" | "update" | "remove" | "fetch" => Some(Format::CargoPackage),
        _ => None,
    }
}

fn git_format(sub: &str) -> Option<Format> {
    Some(match sub {
        "status" => Format::GitStatus,
        "log" => Format::GitLog,
        "diff" => Format::GitDiff,
        "show" => Format::GitShow,
        "push" | "pull" | "fetch" | "clone" => Format::GitRemote,
        "merge" | "rebase" | "cherry-pick" => Format::GitMerge,
        "branch" => Format::GitBranch,
        _ => return None,
    })
}

static LS_ROW: LazyLock<Regex> = lazy_re!(r"^[-dlcbpsD][rwxsStT-]{9}[.+@]?\s+\d+\s");

/// Compiles a constant pattern. A bad pattern is a programming error caught by the unit tests; it falls
/// back to a regex that never matches rather than panicking.
pub(crate) fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(r) => r,
        Err(_) => never(),
    }
}

fn never() -> Regex {
    // `[^\s\S]` matches no character at all; it always compiles.
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| never())
}

/// At most this many bytes from each end of the input are sniffed.
const SNIFF: usize = 256 * 1024;

/// Head and tail of the text, cut at line boundaries.
fn sample(text: &str) -> (&str, &str) {
    if text.len() <= 2 * SNIFF {
        return (text, "");
    }
    let head = crate::text::prefix_at_boundary(text, SNIFF);
    let head = head.rfind('\n').map_or(head, |i| &head[..i]);
    let mut start = text.len() - SNIFF;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    let tail = tail.find('\n').map_or(tail, |i| &tail[i + 1..]);
    (head, tail)
}

/// Content signatures, tried in order; the first whose pattern matches a sampled line wins. Test runners
/// come before builds because a test run contains build lines.
static SIGNATURES: LazyLock<Vec<(Format, Regex)>> = LazyLock::new(|| {
    [
        (Format::CargoTest, r"(?m)^test result: (ok|FAILED)\. \d+ passed|^running \d+ tests?$"),
        (Format::Nextest, r"(?m)^\s+Starting \d+ tests? across|^\s+Summary \[.*\] \d+ tests? run"),
        (Format::Pytest, r"(?m)^=+ (test session starts|FAILURES|ERRORS|short test summary info) =+$|^=+ .*\b(passed|failed|error)\b.* in [\d.]+s.* =+$"),
        (Format::Vitest, r"(?m)^\s+Test Files\s+\d+|^\s*RUN\s+v\d+\.\d+"),
        (Format::Jest, r"(?m)^Tests:\s+\d+|^Test Suites:\s+\d+"),
        (Format::Mocha, r"(?m)^\s+\d+ passing \(\d+m?s\)"),
        (Format::GoTest, r"(?m)^(--- (FAIL|PASS|SKIP): |=== RUN\s|ok\s+\S+\s+[\d.]+s|FAIL\s+\S+\s+[\d.]+s|FAIL\t)"),
        (Format::Ruff, r"(?m)^[A-Z]{1,4}\d{2,4} (\[\*\] )?\S.*\n\s*--> \S+:\d+:\d+$"),
        (Format::Eslint, r"(?m)^\s+\d+:\d+\s+(error|warning)\s+.+\s\s[\w@/-]+$"),
        (Format::Tsc, r"(?m)\.(m|c)?[tj]sx?(\(\d+,\d+\): |:\d+:\d+ - )error TS\d+"),
        (Format::CargoBuild, r"(?m)^(error|warning)(\[[A-Za-z]?\d+\])?: .*\n\s*--> |^\s+(Compiling|Checking) \S+ v\d|^\s+Finished `"),
        (Format::GoBuild, r"(?m)^# \S+\n\S+\.go:\d+:\d+: "),
        (Format::Gcc, r"(?m)^\S+\.(c|cc|cpp|cxx|h|hpp):\d+:\d+: (error|warning|fatal error): |^make(\[\d+\])?: \*\*\*"),
        (Format::GitMerge, r"(?m)^CONFLICT \(|^Automatic merge failed|^Could not apply "),
        (Format::GitStatus, r"(?m)^On branch \S+$|^Changes (not staged|to be committed)|^Untracked files:$|^HEAD detached"),
        (Format::GitDiff, r"(?m)^diff --git a/"),
        (Format::GitLog, r"(?m)^commit [0-9a-f]{40}"),
        (Format::PipInstall, r"(?m)^(Successfully installed |Requirement already satisfied|Collecting \S+|ERROR: (Could not find a version|No matching distribution))"),
        (Format::ScriptRun, r"(?m)^\s*\[?ELIFECYCLE\]? |^error Command failed with exit code \d+|^npm (ERR!|error) Lifecycle script|^npm (ERR!|error) command failed"),
        (Format::YarnInstall, r"(?m)^➤ YN\d{4}: |^yarn (install|add) v\d"),
        (Format::PnpmInstall, r"(?m)^Progress: resolved \d+|^Done in \S+ using pnpm|^ERR_PNPM_|^\s*\[ERR_PNPM_"),
        (Format::NpmInstall, r"(?m)^(added|removed|changed) \d+ packages?|^up to date, audited|^npm (ERR!|error) code"),
        (Format::Ps, r"(?m)\A\s*(USER|UID)\s+PID\s|\A\s*PID\s+TTY\s"),
        (Format::Df, r"(?m)\AFilesystem\s+(1K-blocks|Size|1024-blocks|\d+[KMG]?-blocks|Inodes|Type)"),
        (Format::Free, r"(?m)\A\s+total\s+used\s+free"),
        (Format::Ss, r"(?m)\A(Netid\s+)?State\s+Recv-Q\s+Send-Q"),
        (Format::Netstat, r"(?m)^Proto Recv-Q Send-Q"),
        (Format::JsBundler, r"(?m)^(vite v\d|webpack \d|ERROR in |error during build:|\[vite\]|\s*\[webpack-cli\])"),
    ]
    .into_iter()
    .map(|(f, p)| (f, compile(p)))
    .collect()
});

/// The format the content alone implies.
pub fn from_content(text: &str) -> Format {
    let (head, tail) = sample(text);
    for (format, pattern) in SIGNATURES.iter() {
        if pattern.is_match(head) || (!tail.is_empty() && pattern.is_match(tail)) {
            return *format;
        }
    }
    if crate::log::looks_like_json_lines(head) {
        return Format::JsonLog;
    }
    if crate::log::looks_leveled(head) {
        return Format::Log;
    }
    let rows = head.lines().filter(|l| LS_ROW.is_match(l)).count();
    if rows >= 3 && rows * 2 >= head.lines().count() {
        return Format::LsLong;
    }
    Format::Text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_skip_wrappers() {
        assert_eq!(
            from_command("cd x && RUST_LOG=1 cargo test -q 2>&1 | tail"),
            Some(Format::CargoTest)
        );
        assert_eq!(from_command("npx jest"), Some(Format::Jest));
        assert_eq!(from_command("/usr/bin/git status"), Some(Format::GitStatus));
        assert_eq!(from_command("npm test"), Some(Format::ScriptRun));
        assert_eq!(
            detect(
                Some("npm test"),
                "Tests:       1 failed, 2 passed, 3 total\n"
            ),
            Format::Jest
        );
        assert_eq!(from_command("ls -la"), Some(Format::LsLong));
        assert_eq!(from_command("ls"), None);
        assert_eq!(from_command("yarn"), Some(Format::YarnInstall));
        assert_eq!(from_command("pnpm i"), Some(Format::PnpmInstall));
        assert_eq!(from_command("pnpm run build"), Some(Format::ScriptRun));
        assert_eq!(from_command("yarn build"), Some(Format::ScriptRun));
        assert_eq!(from_command("npm run build"), Some(Format::ScriptRun));
    }

    #[test]
    fn all_signatures_compile() {
        for (f, p) in SIGNATURES.iter() {
            assert!(!p.as_str().contains(r"[^\s\S]"), "{f:?}");
        }
        assert!(LS_ROW.is_match("drwxr-xr-x  2 root root 4096 Jan  1 00:00 x"));
    }

    #[test]
    fn content_detects_cargo_test() {
        assert_eq!(
            from_content("running 1 test\ntest a ... ok\n"),
            Format::CargoTest
        );
        assert_eq!(from_content("hello\nworld\n"), Format::Text);
    }
}
