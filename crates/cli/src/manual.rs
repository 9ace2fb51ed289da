//! Shell completions and man pages, generated from the CLI's own definition (so they never
//! drift from it): `ai-session completions bash|zsh|fish|elvish|powershell` and `ai-session man`.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::error::CliError;

/// Prints the completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<ExitCode, CliError> {
    let mut cmd = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ai-session", &mut script);
    crate::out::write_bytes(&script);
    Ok(ExitCode::SUCCESS)
}

/// Prints the man page of `ai-session` (roff), or writes one page per command into `dir`
/// (`ai-session.1`, `ai-session-exec.1`, ...) and lists them.
pub(crate) fn man(dir: Option<&Path>) -> Result<ExitCode, CliError> {
    let cmd = crate::Cli::command();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        crate::out::write_bytes(&page);
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir)?;
    let mut written = vec![write_page(dir, "ai-session", cmd.clone())?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("ai-session-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("ai-session {}", sub.get_name()));
        written.push(write_page(dir, &name, sub)?);
    }
    for path in written {
        outln!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<std::path::PathBuf, CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page)?;
    Ok(path)
}
