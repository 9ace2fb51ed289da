//! tmux's argument rules: getopt flags from a spec (`"dPs:"`: `s` takes a value), clustered
//! (`-dP`), values attached or separate (`-sNAME`, `-s NAME`), `--` ending the flags, and the
//! first word that is not a flag ending them too; a repeated flag keeps every value.

use std::collections::BTreeMap;

use crate::error::TmuxError;

/// A command's flags and its remaining arguments.
#[derive(Debug, Default, Clone)]
pub struct Args {
    flags: BTreeMap<char, Vec<String>>,
    pub rest: Vec<String>,
}

impl Args {
    /// Parses `args` (the words after the command name) against `spec`.
    pub fn parse(command: &str, spec: &str, args: &[String]) -> Result<Self, TmuxError> {
        let mut out = Self::default();
        let mut i = 0;
        while i < args.len() {
            let word = &args[i];
            if word == "--" {
                i += 1;
                break;
            }
            if !word.starts_with('-') || word == "-" {
                break;
            }
            let chars: Vec<char> = word.chars().skip(1).collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                let Some(pos) = spec.find(c) else {
                    return Err(usage(command, c));
                };
                let takes = spec[pos + c.len_utf8()..].starts_with(':');
                if !takes {
                    out.flags.entry(c).or_default().push(String::new());
                    j += 1;
                    continue;
                }
                let attached: String = chars[j + 1..].iter().collect();
                let value = if !attached.is_empty() {
                    attached
                } else {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.clone(),
                        None => {
                            return Err(TmuxError::msg(format!(
                                "command {command}: -{c} expects an argument"
                            )));
                        }
                    }
                };
                out.flags.entry(c).or_default().push(value);
                break;
            }
            i += 1;
        }
        out.rest = args[i.min(args.len())..].to_vec();
        Ok(out)
    }

    /// Whether flag `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.flags.contains_key(&c)
    }

    /// The last value of flag `c`.
    pub fn get(&self, c: char) -> Option<&str> {
        self.flags.get(&c)?.last().map(String::as_str)
    }

    /// Every value of flag `c`, in order.
    pub fn all(&self, c: char) -> &[String] {
        self.flags.get(&c).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Flag `c` as a number, with tmux's error for a value that is not one.
    pub fn number(&self, c: char, what: &str) -> Result<Option<i64>, TmuxError> {
        match self.get(c) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| TmuxError::msg(format!("{what} invalid"))),
        }
    }
}

fn usage(command: &str, c: char) -> TmuxError {
    TmuxError::msg(format!("command {command}: unknown flag -{c}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn getopt_rules() {
        let a = Args::parse(
            "new-session",
            "dPs:x:e:",
            &words("-dPsNAME -x 80 -e A=1 -e B=2 vi x"),
        )
        .unwrap();
        assert!(a.has('d') && a.has('P'));
        assert_eq!(a.get('s'), Some("NAME"));
        assert_eq!(a.get('x'), Some("80"));
        assert_eq!(a.all('e'), ["A=1", "B=2"]);
        assert_eq!(a.rest, ["vi", "x"]);
        let b = Args::parse("send-keys", "lt:", &words("-t x -- -l")).unwrap();
        assert_eq!(b.rest, ["-l"]);
        assert!(Args::parse("x", "d", &words("-q")).is_err());
        assert!(Args::parse("x", "t:", &words("-t")).is_err());
    }
}
