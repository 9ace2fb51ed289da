#!/usr/bin/env bash
# Runs `cli_latency` of two release builds alternately and prints one JSON line of key figures
# per run, so old and new builds meet the same minutes of a shared machine.
#
#   usage: ab_latency.sh OLD_DIR NEW_DIR [RUNS] [ROUNDS]
#   OLD_DIR, NEW_DIR: directories holding a build's ai-session, ai-session-full, cli_latency
#   needs: python3, tmux, TMUX_BASELINE (default ../shared/bench/tmux-baseline.sh)
set -euo pipefail
old=$1; new=$2; runs=${3:-3}; rounds=${4:-200}
here=$(cd "$(dirname "$0")/../../.." && pwd)
export TMUX_BASELINE=${TMUX_BASELINE:-$here/../shared/bench/tmux-baseline.sh}
cd "$here"   # cli_latency finds the tmux script from the repository root
for _ in $(seq 1 "$runs"); do
  for dir in "$old" "$new"; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$dir/cli_latency" --rounds "$rounds" --exe "$dir/ai-session" 2>/dev/null |
      DIR=$dir LOAD=$load python3 -c '
import json, os, sys, time
d = json.load(sys.stdin)
m = lambda k: round(d[k]["mean_ms"], 2)
print(json.dumps({"build": os.environ["DIR"], "time": time.strftime("%H:%M:%S"),
    "load": os.environ["LOAD"], "cli_exec": m("cli_exec"), "cli_new": m("cli_new"),
    "socket_exec": m("socket_exec"), "socket_new": m("socket_new"),
    "tmux_roundtrip": d["tmux"]["roundtrip_ms"], "tmux_new": d["tmux"]["create_ms"],
    "exec_x_tmux": round(d["exec_speedup_over_tmux"], 2),
    "new_x_tmux": round(d["new_speedup_over_tmux"], 2)}))'
  done
done
