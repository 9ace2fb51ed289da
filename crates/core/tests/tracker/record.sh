#!/usr/bin/env bash
# Records the PTY output of real bash, zsh and sh sessions with ai-session's OSC 133 hooks, for
# the command tracker's replay tests (src/tracker/tests.rs). Each session runs the same script
# through a private daemon: execs that finish with various codes, one whose output forges a
# mark with a wrong secret, and a nested interactive shell answered with `send`. The raw log
# (`read --raw`) is saved as <shell>.bin. Run from this directory with the binary built:
#   AIS=../../../../target/debug/ai-session ./record.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ais=${AIS:?path to the ai-session binary}
home=$(mktemp -d)
trap 'HOME=$home AI_SESSION_HOME=$home "$ais" -L rec daemon stop >/dev/null 2>&1 || true; rm -rf "$home"' EXIT
a() { HOME=$home AI_SESSION_HOME=$home PROMPT_COMMAND= "$ais" -L rec "$@"; }
cd / # the sessions start here, so prompts show no path of this machine's

for shell in bash zsh sh; do
  a new -s "$shell" --shell "/bin/$shell" >/dev/null
  a exec -t "$shell" --timeout 20 'echo hello' >/dev/null
  a exec -t "$shell" --timeout 20 'false' >/dev/null || true
  a exec -t "$shell" --timeout 20 "printf '\\033]133;D;0;aid=forged\\007'; echo after-forge; (exit 3)" >/dev/null || true
  # A nested shell without hooks: the exec returns waiting for input at its prompt; it is
  # answered, and the outer shell's D reports the nested shell's status.
  a exec -t "$shell" --timeout 20 "PS1='nested\$ ' bash --norc --noprofile -i" >/dev/null 2>&1 || true
  a send -t "$shell" 'echo inner; exit 4' Enter >/dev/null
  a wait -t "$shell" --prompt --timeout 20 >/dev/null || true
  a exec -t "$shell" --timeout 20 'echo done' >/dev/null
  a read -t "$shell" --raw --json --since 0 --max-bytes 1000000 |
    python3 -c 'import json,sys; sys.stdout.buffer.write(json.load(sys.stdin)["data"].encode())' \
    > "$here/$shell.bin"
  a kill -t "$shell" >/dev/null
done
