//! Shell integration: hooks injected into bash, zsh and sh so that every prompt and every command
//! reports itself with OSC 133 marks (`A` prompt start, `B` prompt end, `C` output start,
//! `D;<exit code>` command finished). The user's own rc files still run first.
//!
//! Each mark carries the session's secret (`aid=`), so output that merely contains such a
//! sequence (a `cat` of an old log) is not mistaken for the shell's own mark. The secret is
//! never in the environment (where `/proc/PID/environ` would show it to every child for the
//! shell's whole life): the hooks read it from a 0600 file as their first step, and the daemon
//! deletes the file when the shell's first mark arrives, before any command is typed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod exported;

/// What kind of program a session runs, which decides how commands are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ShellKind {
    Bash,
    Zsh,
    /// dash, ash, busybox sh and other shells that read `$ENV` and expand `$?` in `PS1`.
    Sh,
    /// Another POSIX shell: commands are wrapped in nonce marks instead.
    OtherPosix,
    /// Not a shell (python, a TUI ...): driven with send + wait only.
    NotShell,
}

impl ShellKind {
    pub fn detect(program: &str) -> Self {
        let name = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(program);
        let name = name.trim_start_matches('-');
        match name {
            "bash" => Self::Bash,
            "zsh" => Self::Zsh,
            "sh" | "dash" | "ash" | "busybox" => Self::Sh,
            "ksh" | "ksh93" | "mksh" | "yash" | "posh" | "oksh" | "loksh" => Self::OtherPosix,
            _ => Self::NotShell,
        }
    }

    pub fn has_hooks(self) -> bool {
        matches!(self, Self::Bash | Self::Zsh | Self::Sh)
    }

    pub fn is_posix(self) -> bool {
        !matches!(self, Self::NotShell)
    }
}

/// The environment variable naming the file that hands the session's secret to the hooks.
pub const MARK_FILE_ENV: &str = "AI_SESSION_MARK_FILE";

/// The environment variable naming the file a resurrected shell sources after the user's rc
/// file: the variables its predecessor exported (see [`ENV_FILE`]). The hooks unset it.
pub const ENV_RESTORE_ENV: &str = "AI_SESSION_ENV_RESTORE";

/// The line that ends a complete file of exported variables (see [`exported`]): a file read
/// while the shell writes it lacks it.
pub const ENV_END: &str = "#ais-end\n";

const BASH_RC: &str = r#"# ai-session shell integration for bash: OSC 133 marks around prompts and commands.
__ais_mark=
if [ -r "${AI_SESSION_MARK_FILE-}" ]; then read -r __ais_mark < "$AI_SESSION_MARK_FILE"; fi
__ais_envf=${AI_SESSION_ENV_FILE-}
unset AI_SESSION_MARK_FILE AI_SESSION_ENV_FILE
if [ -n "${AI_SESSION_BASHRC-}" ]; then
  [ -r "$AI_SESSION_BASHRC" ] && . "$AI_SESSION_BASHRC"
elif [ -r "$HOME/.bashrc" ]; then
  . "$HOME/.bashrc"
fi
unset AI_SESSION_BASHRC
# A session brought back by a daemon restart: what its shell had exported, over the rc file's.
if [ -r "${AI_SESSION_ENV_RESTORE-}" ]; then
  __ais_pwd=$PWD
  . "$AI_SESSION_ENV_RESTORE" 2>/dev/null
  PWD=$__ais_pwd
  : 2>/dev/null >| "$AI_SESSION_ENV_RESTORE"
  unset __ais_pwd
fi
unset AI_SESSION_ENV_RESTORE
__ais_pre() {
  local s=$?
  # Before the D mark: the daemon reads the file once it sees the mark (builtins only).
  [ -z "$__ais_envf" ] || { export -p; printf '#ais-end\n'; } 2>/dev/null >| "$__ais_envf"
  printf '\033]133;D;%s;aid=%s\007\033]133;A;aid=%s\007' "$s" "$__ais_mark" "$__ais_mark"
  return $s
}
__ais_post() {
  local s=$?
  case "$PS1" in *"133;B;aid=$__ais_mark"*) ;; *) PS1="$PS1\[\e]133;B;aid=$__ais_mark\a\]" ;; esac
  return $s
}
if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
  PROMPT_COMMAND=(__ais_pre "${PROMPT_COMMAND[@]}" __ais_post)
else
  # Newlines, not semicolons: the user's value may itself end with ';'.
  PROMPT_COMMAND="__ais_pre
${PROMPT_COMMAND-}
__ais_post"
fi
PS0="${PS0-}\e]133;C;aid=$__ais_mark\a"
"#;

const SH_RC: &str = r#"# ai-session shell integration for POSIX sh: OSC 133 marks in the prompt.
__ais_mark=
if [ -r "${AI_SESSION_MARK_FILE-}" ]; then read -r __ais_mark < "$AI_SESSION_MARK_FILE"; fi
__ais_envf=${AI_SESSION_ENV_FILE-}
unset AI_SESSION_MARK_FILE AI_SESSION_ENV_FILE
if [ -n "${AI_SESSION_ENV-}" ]; then
  ENV=$AI_SESSION_ENV
  [ -r "$ENV" ] && . "$ENV"
else
  unset ENV
fi
unset AI_SESSION_ENV
if [ -r "${AI_SESSION_ENV_RESTORE-}" ]; then
  __ais_pwd=$PWD
  . "$AI_SESSION_ENV_RESTORE" 2>/dev/null
  PWD=$__ais_pwd
  : 2>/dev/null >| "$AI_SESSION_ENV_RESTORE"
  unset __ais_pwd
fi
unset AI_SESSION_ENV_RESTORE
# sh has no prompt hook: the prompt's own expansion writes the file (a subshell per prompt),
# after `$?` is expanded and before the prompt, and so its D mark, is printed.
__ais_env() { [ -z "$__ais_envf" ] || { export -p; echo '#ais-end'; } 2>/dev/null >| "$__ais_envf"; }
PS1="$(printf '\033]133;D;')"'$?'"$(printf ';aid=%s\007\033]133;A;aid=%s\007' "$__ais_mark" "$__ais_mark")${PS1-\$ }"'$(__ais_env)'"$(printf '\033]133;B;aid=%s\007' "$__ais_mark")"
PS2=''
"#;

const ZSH_ENV: &str = r#"# ai-session shell integration for zsh: load the user's .zshenv, keep ours for .zshrc.
__ais_mark=
if [ -r "${AI_SESSION_MARK_FILE-}" ]; then read -r __ais_mark < "$AI_SESSION_MARK_FILE"; fi
__ais_envf=${AI_SESSION_ENV_FILE-}
unset AI_SESSION_MARK_FILE AI_SESSION_ENV_FILE
__ais_user_zdotdir=${AI_SESSION_ZDOTDIR:-$HOME}
__ais_our_zdotdir=$ZDOTDIR
if [[ -r "$__ais_user_zdotdir/.zshenv" ]]; then
  ZDOTDIR=$__ais_user_zdotdir
  . "$__ais_user_zdotdir/.zshenv"
  ZDOTDIR=$__ais_our_zdotdir
fi
"#;

const ZSH_RC: &str = r#"# ai-session shell integration for zsh: OSC 133 marks from precmd/preexec hooks.
if [[ -n "${AI_SESSION_ZDOTDIR-}" ]]; then ZDOTDIR=$AI_SESSION_ZDOTDIR; else unset ZDOTDIR; fi
unset AI_SESSION_ZDOTDIR
[[ -r "${ZDOTDIR:-$HOME}/.zshrc" ]] && . "${ZDOTDIR:-$HOME}/.zshrc"
if [[ -r "${AI_SESSION_ENV_RESTORE-}" ]]; then
  __ais_pwd=$PWD
  . "$AI_SESSION_ENV_RESTORE" 2>/dev/null
  PWD=$__ais_pwd
  : 2>/dev/null >| "$AI_SESSION_ENV_RESTORE"
  unset __ais_pwd
fi
unset AI_SESSION_ENV_RESTORE
__ais_precmd() {
  local s=$?
  [[ -z $__ais_envf ]] || { export -p; print -r -- '#ais-end'; } 2>/dev/null >| "$__ais_envf"
  printf '\033]133;D;%s;aid=%s\007\033]133;A;aid=%s\007' "$s" "$__ais_mark" "$__ais_mark"
  return $s
}
__ais_post() {
  [[ "$PS1" == *"133;B;aid=$__ais_mark"* ]] || PS1="$PS1%{"$'\e]133;B;aid='"$__ais_mark"$'\a'"%}"
}
__ais_preexec() { printf '\033]133;C;aid=%s\007' "$__ais_mark"; }
# zsh pads a missing final newline (PROMPT_SP) before precmd runs, which would land inside the
# command's output; the marks make the padding unnecessary.
unsetopt PROMPT_SP
precmd_functions=(__ais_precmd $precmd_functions __ais_post)
preexec_functions+=(__ais_preexec)
"#;

/// The files the hooks live in, written once per daemon.
pub struct Hooks {
    dir: PathBuf,
    /// Where the shells write what they export (see [`exported`]).
    exported: exported::Place,
}

impl Hooks {
    pub fn install(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("zsh"))?;
        std::fs::write(dir.join("bash.rc"), BASH_RC)?;
        std::fs::write(dir.join("sh.rc"), SH_RC)?;
        std::fs::write(dir.join("zsh/.zshenv"), ZSH_ENV)?;
        std::fs::write(dir.join("zsh/.zshrc"), ZSH_RC)?;
        // `dir` is `<data>/shell`.
        let exported = exported::Place::for_data(dir.parent().unwrap_or(dir));
        Ok(Self {
            dir: dir.to_owned(),
            exported,
        })
    }

    /// Rewrites `argv` and `env` so the shell loads its hooks; returns the new argv.
    /// `mark_file` holds the session's secret (see [`write_mark_file`]).
    pub fn inject(
        &self,
        kind: ShellKind,
        argv: &[String],
        env: &mut BTreeMap<String, String>,
        mark_file: &Path,
    ) -> Vec<String> {
        let mut argv = argv.to_vec();
        match kind {
            ShellKind::Bash => {
                // `--rcfile` replaces ~/.bashrc; the hook file sources the user's one first.
                if let Some(rc) = take_rcfile(&mut argv) {
                    env.insert("AI_SESSION_BASHRC".into(), rc);
                }
                let rc = self.dir.join("bash.rc").to_string_lossy().into_owned();
                argv.splice(1..1, ["--rcfile".to_owned(), rc, "-i".to_owned()]);
            }
            ShellKind::Sh => {
                if let Some(user_env) = env.remove("ENV") {
                    env.insert("AI_SESSION_ENV".into(), user_env);
                }
                env.insert(
                    "ENV".into(),
                    self.dir.join("sh.rc").to_string_lossy().into_owned(),
                );
                if argv.len() == 1 {
                    argv.push("-i".into());
                }
            }
            ShellKind::Zsh => {
                if let Some(user) = env.remove("ZDOTDIR") {
                    env.insert("AI_SESSION_ZDOTDIR".into(), user);
                }
                env.insert(
                    "ZDOTDIR".into(),
                    self.dir.join("zsh").to_string_lossy().into_owned(),
                );
            }
            ShellKind::OtherPosix | ShellKind::NotShell => return argv,
        }
        env.insert(
            MARK_FILE_ENV.into(),
            mark_file.to_string_lossy().into_owned(),
        );
        // The mark file is in the session's directory, which is named after the session.
        if let Some(name) = mark_file
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
        {
            let file = self.exported.file(name);
            env.insert(
                exported::ENV_FILE_ENV.into(),
                file.to_string_lossy().into_owned(),
            );
        }
        argv
    }
}

/// Writes the session's secret to `path`, readable by its owner only, for the hooks to read
/// once; the session removes it when the shell's first mark arrives.
pub fn write_mark_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{secret}\n").as_bytes())
}

fn take_rcfile(argv: &mut Vec<String>) -> Option<String> {
    let i = argv
        .iter()
        .position(|a| a == "--rcfile" || a == "--init-file")?;
    if i + 1 >= argv.len() {
        return None;
    }
    let rc = argv.remove(i + 1);
    argv.remove(i);
    Some(rc)
}

/// Quotes `s` for a POSIX shell command line.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_shells() {
        assert_eq!(ShellKind::detect("/bin/bash"), ShellKind::Bash);
        assert_eq!(ShellKind::detect("-zsh"), ShellKind::Zsh);
        assert_eq!(ShellKind::detect("/usr/bin/dash"), ShellKind::Sh);
        assert_eq!(ShellKind::detect("mksh"), ShellKind::OtherPosix);
        assert_eq!(ShellKind::detect("python3"), ShellKind::NotShell);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn bash_keeps_user_rcfile() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks::install(dir.path()).unwrap();
        let mut env = BTreeMap::new();
        let argv: Vec<String> = ["bash", "--rcfile", "/my/rc"].map(String::from).to_vec();
        let out = hooks.inject(ShellKind::Bash, &argv, &mut env, Path::new("/s/mark"));
        assert_eq!(out[1], "--rcfile");
        assert_eq!(env["AI_SESSION_BASHRC"], "/my/rc");
        assert_eq!(env[MARK_FILE_ENV], "/s/mark");
        assert!(!env.values().any(|v| v.contains("s3cret")));
        assert!(!out.contains(&"/my/rc".to_owned()));
    }
}
