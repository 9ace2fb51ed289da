#!/usr/bin/env python3
"""Runs `output --mb MB --rounds N` of two release builds alternately and prints each run's
key figures (one JSON line per run) and then the median of every figure per build.

usage: ab_output.py OLD_DIR NEW_DIR [RUNS] [MB] [ROUNDS]
OLD_DIR, NEW_DIR: directories holding a build's ai-session, ai-session-full and output (the
bench runs the ai-session beside it). Run from the repository root, or set TMUX_BASELINE.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def figures(d):
    a, r = d["ai_session"], d["ratios"]
    parse = {f'{p["input"]}_{round(p["mb"])}mb': round(p["mb_s"], 1) for p in d["parse"]}
    return {
        "exec_x_tmux": round(r["cli_exec_speedup_vs_tmux"], 2),
        "new_x_tmux": round(r["cli_new_speedup_vs_tmux"], 2),
        "cat_x_bare": round(r["exec_cat_vs_bare_pty"], 2),
        "cat_x_tmux": round(r["exec_cat_vs_tmux"], 2),
        "cli_exec_ms": round(a["cli_exec"]["mean_ms"], 2),
        "cli_new_ms": round(a["cli_new"]["mean_ms"], 2),
        "tmux_roundtrip_ms": d["tmux"]["roundtrip_ms"],
        "tmux_new_ms": d["tmux"]["create_ms"],
        "bare_mb_s": round(a["bare_pty_reader_mb_s"], 1),
        "cat_mb_s": round(a["exec_cat_default_view_mb_s"], 1),
        **{f"parse_{k}_mb_s": v for k, v in parse.items()},
    }


def main():
    old, new = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    mb = sys.argv[4] if len(sys.argv) > 4 else "32"
    rounds = sys.argv[5] if len(sys.argv) > 5 else "100"
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    env = dict(os.environ)
    env.setdefault("TMUX_BASELINE", os.path.join(root, "..", "shared", "bench", "tmux-baseline.sh"))
    seen = {old: [], new: []}
    for i in range(runs):
        for build in (old, new) if i % 2 == 0 else (new, old):
            load = open("/proc/loadavg").read().split()[0]
            start = time.strftime("%H:%M:%S")
            out = subprocess.run(
                [os.path.join(build, "output"), "--mb", mb, "--rounds", rounds],
                cwd=root, env=env, capture_output=True, text=True, check=True,
            ).stdout
            f = figures(json.loads(out))
            seen[build].append(f)
            print(json.dumps({"build": build, "time": start, "load": load, **f}), flush=True)
    for build, rows in seen.items():
        medians = {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0]}
        print(json.dumps({"build": build, "runs": len(rows), "median": medians}))


if __name__ == "__main__":
    main()
