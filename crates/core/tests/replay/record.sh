#!/usr/bin/env bash
# Records the byte streams of real terminal programs at 80x24 (inside tmux panes, with `script`),
# then renders each stream in a fresh tmux pane and saves tmux's screen as the expected result.
# The emulator replay test (tests/replay.rs) feeds the same bytes to ai-session's emulator and
# compares. Run from this directory; needs tmux, script (util-linux), vim, less, top.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sock="replay$$"
t() { tmux -L "$sock" -f /dev/null "$@"; }
trap 't kill-server 2>/dev/null || true' EXIT
t new-session -d -s keepalive "sleep 3600"

record() { # name command...
  local name=$1; shift
  rm -f "$here/$name.bin"
  t new-session -d -x 80 -y 24 -s "rec-$name" "TERM=xterm-256color script -q -O '$here/$name.bin' -c \"$*\"; tmux -L $sock wait-for -S done-$name"
  t wait-for "done-$name"
  # `script` adds its own start and end lines to the stream: keep only the program's bytes.
  python3 - "$here/$name.bin" <<'PY'
import re, sys
path = sys.argv[1]
data = open(path, 'rb').read()
data = re.sub(rb'^Script started on [^\n]*\n', b'', data)
data = re.sub(rb'\r?\nScript done on [^\n]*\n?$', b'', data)
open(path, 'wb').write(data)
PY
}

render() { # name
  local name=$1
  t new-session -d -x 80 -y 24 -s "ren-$name" "stty -opost -echo; cat '$here/$name.bin'; tmux -L $sock wait-for -S shown-$name; sleep 600"
  t wait-for "shown-$name"
  t capture-pane -p -t "ren-$name" > "$here/$name.screen"
  t kill-session -t "ren-$name"
}

record ls "ls --color=always -la /usr/share/doc | head -60"
record vim "timeout -s KILL 1 vim -u NONE -N -c 'set number' /etc/services"
record less "timeout -s KILL 1 less /etc/services"
record top "timeout -s KILL 1.5 top -d 1"
record synthetic "printf '\\033[2J\\033[Hwide: 日本語 end\\r\\ntabs:\\tone\\ttwo\\r\\n\\033[1;31mred\\033[0m \\033[7minverse\\033[0m\\r\\n'; printf 'line%s\\r\\n' 1 2 3 4 5 6; printf '\\033[3;6r\\033[6;1H\\nscrolled\\033[r\\033[10;1Hx\\033[2Ly\\033[1P\\033[20;70Hwrap-around-the-edge-of-the-screen'"
for f in ls vim less top synthetic; do render "$f"; done
echo "recorded: $(ls "$here"/*.bin | wc -l) streams"
