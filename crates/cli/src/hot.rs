//! The commands agents run in a loop (`exec`, `new`, `send`, `read` ...), parsed against their
//! own subcommand alone. Building the whole command tree (about sixty subcommands and their
//! help) costs every call about half a megabyte of heap, near half of the CLI's start-up page
//! faults (`perf record -e page-faults ai-session --version`): `docs/benchmarks.md`.
//!
//! Help, and anything the short tree does not take as it is (an error, another command), goes
//! to the whole tree, so what a user sees is unchanged; the tests below hold the two trees to
//! the same arguments.

use std::ffi::OsString;

use clap::{Args, Command as Tree, FromArgMatches};

use super::{
    CaptureArgs, Cli, DaemonChoice, ExecArgs, JsonFlag, NewArgs, ReadArgs, ResizeArgs, SendArgs,
    TargetArgs, WaitArgs,
};

type Augment = fn(Tree) -> Tree;

/// Each hot subcommand's name and the arguments it takes (its variant in `Command`).
const HOT: &[(&str, Augment)] = &[
    ("exec", ExecArgs::augment_args),
    ("new", NewArgs::augment_args),
    ("send", SendArgs::augment_args),
    ("read", ReadArgs::augment_args),
    ("capture", CaptureArgs::augment_args),
    ("wait", WaitArgs::augment_args),
    ("ls", JsonFlag::augment_args),
    ("kill", TargetArgs::augment_args),
    ("resize", ResizeArgs::augment_args),
];

/// `argv` parsed, with whether it asked for JSON, when it runs a hot subcommand without
/// asking for help; `None` sends it to the whole tree.
pub(crate) fn parse(argv: &[OsString]) -> Option<(Cli, bool)> {
    let wanted = crate::args::subcommand(argv)?;
    let &(name, augment) = HOT.iter().find(|(n, _)| *n == wanted)?;
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        return None;
    }
    let matches = tree(name, augment).try_get_matches_from(argv).ok()?;
    let cli = Cli::from_arg_matches(&matches).ok()?;
    Some((cli, super::wants_json(&matches)))
}

/// The root with its global options and one subcommand.
fn tree(name: &'static str, augment: Augment) -> Tree {
    DaemonChoice::augment_args(Tree::new("ai-session")).subcommand(augment(Tree::new(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn args(tree: &Tree) -> Vec<String> {
        let mut out: Vec<String> = tree
            .get_arguments()
            .map(|a| {
                format!(
                    "{} {:?} {:?} {} {} {:?} {:?}",
                    a.get_id(),
                    a.get_short(),
                    a.get_long(),
                    a.is_required_set(),
                    a.is_global_set(),
                    a.get_num_args(),
                    a.get_default_values()
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn each_hot_subcommand_takes_what_the_whole_tree_gives_it() {
        let mut whole = Cli::command();
        whole.build();
        for &(name, augment) in HOT {
            let mut short = tree(name, augment);
            short.build();
            let full = whole.find_subcommand(name).unwrap();
            let alone = short.find_subcommand(name).unwrap();
            assert_eq!(args(full), args(alone), "{name}");
            assert_eq!(
                full.get_all_aliases().count(),
                0,
                "{name} has aliases: add them to the short tree"
            );
        }
    }

    fn os(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    #[test]
    fn hot_commands_parse_alone_and_the_rest_goes_to_the_whole_tree() {
        let parsed = parse(&os(&[
            "ai-session",
            "-L",
            "x",
            "exec",
            "-t",
            "a",
            "--json",
            "echo hi",
        ]));
        let (cli, json) = parsed.unwrap();
        assert!(json);
        assert_eq!(cli.daemon.label.as_deref(), Some("x"));
        assert!(matches!(cli.command, super::super::Command::Exec(ref a) if a.target == "a"));
        let (cli, json) = parse(&os(&["ai-session", "new", "-s", "b", "-Sx"])).unwrap();
        assert!(!json);
        assert!(cli.daemon.socket.is_some());
        for line in [
            &["ai-session", "exec", "--help"][..],
            &["ai-session", "--version"],
            &["ai-session", "task", "ls"],
            &["ai-session", "exec", "--no-such-flag", "-t", "a", "x"],
            &["ai-session"],
        ] {
            assert!(parse(&os(line)).is_none(), "{line:?}");
        }
    }
}
