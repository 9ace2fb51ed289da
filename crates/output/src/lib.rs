//! Output intelligence for ai-session: recognise what a command printed, parse it into a structure, and
//! render a compact view an agent can read instead of the raw output.
//!
//! The crate is pure: bytes in, structures out. It never claims success when the output shows a failure,
//! never drops an error, a failing test, a conflict or a file:line, and every compact view ends by saying
//! how much it left out and how to get the full output back.
//!
//! ```
//! use ai_session_output::{compact, parse, Handle};
//!
//! let raw = "running 1 test\ntest t ... FAILED\n\nfailures:\n\n---- t stdout ----\n\
//!            thread 't' panicked at src/lib.rs:3:5:\nboom\n\n\
//!            test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
//! let parsed = parse(Some("cargo test"), raw);
//! let view = compact(&parsed, raw, &Handle::log("build", 0, 200));
//! assert_eq!(view.status, ai_session_output::Status::Failed);
//! assert!(view.text.contains("src/lib.rs:3:5"));
//! ```

#![forbid(unsafe_code)]

#[macro_use]
mod macros {
    /// Appends a formatted line to a `String` (writing to a `String` cannot fail).
    macro_rules! outln {
        ($out:expr, $($arg:tt)*) => {{
            $out.push_str(&format!($($arg)*));
            $out.push('\n');
        }};
    }
    /// A `static` regex compiled on first use.
    macro_rules! lazy_re {
        ($pattern:expr $(,)?) => {
            std::sync::LazyLock::new(|| crate::detect::compile($pattern))
        };
    }
}

pub mod budget;
pub mod build;
pub mod compact;
pub mod content;
pub mod detect;
pub mod diagnostics;
pub mod generic;
pub mod git;
pub mod log;
mod net;
pub mod parsed;
pub mod pkg;
pub mod problems;
mod render;
mod render_git;
pub mod system;
pub mod test_run;
pub mod text;
pub mod tokens;

pub use budget::DEFAULT_BUDGET;
pub use compact::{Compact, Handle, ViewOptions, analyze, analyze_view, compact, compact_with};
pub use detect::Format;
pub use parsed::*;
pub use tokens::{Encoding, TokenCount, count_tokens, estimate_tokens, warm_up};

/// Parses command output. `command` is the command line that produced it, when known; it picks the
/// parser when it names a known tool, and the content decides otherwise. [`analyze`] parses and
/// builds the view in one pass.
pub fn parse(command: Option<&str>, output: &str) -> Parsed {
    let cleaned = text::clean(output);
    let lines = crate::text::lines(&cleaned);
    let format = detect::detect(command, &cleaned);
    let notable = if format == Format::Text {
        generic::notable_lines(&cleaned, &lines)
    } else {
        Vec::new()
    };
    parse_detected(format, command, output.len(), &cleaned, &lines, &notable)
}

/// Parses cleaned text already split into lines as `format`, with its notable-line flags (read
/// for unrecognised text only).
pub(crate) fn parse_detected(
    format: Format,
    command: Option<&str>,
    bytes: usize,
    cleaned: &str,
    lines: &[&str],
    notable: &[bool],
) -> Parsed {
    Parsed {
        format,
        lines: lines.len(),
        bytes,
        output: parse_as(format, command, cleaned, lines, notable),
    }
}

/// Like [`parse`], for raw bytes: invalid UTF-8 is replaced with U+FFFD.
pub fn parse_bytes(command: Option<&str>, output: &[u8]) -> Parsed {
    parse(command, &text::decode(output))
}

/// Runs the parser of `format` on cleaned text.
/// `command` names the package manager of install and script outputs.
fn parse_as(
    format: Format,
    command: Option<&str>,
    cleaned: &str,
    lines: &[&str],
    notable: &[bool],
) -> ParsedOutput {
    use ParsedOutput as P;
    let pm = |default: &'static str| command.and_then(detect::package_manager).unwrap_or(default);
    match format {
        Format::CargoBuild => P::BuildOutput(build::parse_cargo(lines)),
        Format::Tsc => P::BuildOutput(build::parse_tsc(lines)),
        Format::Ruff => P::BuildOutput(build::parse_ruff(lines)),
        Format::Eslint => P::BuildOutput(build::parse_eslint(lines)),
        Format::GoBuild => P::BuildOutput(build::parse_go(lines)),
        Format::Gcc => P::BuildOutput(build::parse_gcc(lines)),
        Format::JsBundler => P::BuildOutput(build::parse_bundler(lines)),
        Format::CargoTest => P::TestResults(test_run::parse_cargo_test(lines)),
        Format::Nextest => P::TestResults(test_run::parse_nextest(lines)),
        Format::Pytest => P::TestResults(test_run::parse_pytest(lines)),
        Format::Jest => P::TestResults(test_run::parse_jest(lines)),
        Format::Vitest => P::TestResults(test_run::parse_vitest(lines)),
        Format::GoTest => P::TestResults(test_run::parse_go_test(lines)),
        Format::Mocha => P::TestResults(test_run::parse_mocha(lines)),
        Format::GitStatus
        | Format::GitLog
        | Format::GitDiff
        | Format::GitShow
        | Format::GitRemote
        | Format::GitMerge
        | Format::GitBranch => P::GitOutput(git::parse_git(format, lines)),
        Format::SvnStatus => P::GitOutput(git::parse_svn_status(lines)),
        Format::NpmInstall => P::Custom(pkg::parse(pm("npm"), lines)),
        Format::YarnInstall => P::Custom(pkg::parse("yarn", lines)),
        Format::PnpmInstall => P::Custom(pkg::parse("pnpm", lines)),
        Format::ScriptRun => {
            P::BuildOutput(build::parse_script(pm(build::script_tool(lines)), lines))
        }
        Format::PipInstall => P::Custom(pkg::parse("pip", lines)),
        Format::CargoPackage => P::Custom(pkg::parse("cargo", lines)),
        Format::Ps => P::ProcessList(system::parse_ps(lines)),
        Format::Ss => P::NetworkOutput(system::parse_net("ss", lines)),
        Format::Netstat => P::NetworkOutput(system::parse_net("netstat", lines)),
        Format::Df => P::FileSystemOutput(system::parse_fs("df", lines)),
        Format::Du => P::FileSystemOutput(system::parse_fs("du", lines)),
        Format::LsLong => P::FileSystemOutput(system::parse_fs("ls", lines)),
        Format::Free => P::Custom(system::parse_free(lines)),
        Format::Log => P::StructuredLog(log::parse_text_log(cleaned)),
        Format::JsonLog => P::StructuredLog(log::parse_json_log(cleaned)),
        Format::Text => P::Custom(generic::parse_text(lines, notable)),
    }
}
