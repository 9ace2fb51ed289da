#!/usr/bin/env python3
"""Execs at an agent's pace, two builds and tmux side by side: one exec every GAP seconds (more
than the daemon's 2-second sync), the CLI call users make and a socket call on an open
connection, alternating builds, and tmux's send-keys + capture-pane loop (as
`../shared/bench/tmux-baseline.sh` runs it, timed inside bash with $EPOCHREALTIME); prints p50,
mean and p90 in ms per build and path, and tmux's over each build's CLI exec.

usage: exec_paced.py OLD_BIN NEW_BIN [ROUNDS] [GAP]
Each build gets a private daemon (AI_SESSION_HOME in a temporary directory), one sh session.
"""
import subprocess
import sys
import tempfile
import time

from socket_new_ab import call, connect


def cli(bin_, home, *args):
    t = time.perf_counter()
    out = subprocess.run([bin_, "-L", "paced", *args], env={"AI_SESSION_HOME": home, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    took = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{bin_} {args}: {out.stderr}")
    return took, out.stdout


def tmux_round(sock, i):
    script = (f's=$EPOCHREALTIME; tmux -L {sock} send-keys -t s1 "echo MARK{i}" Enter; '
              f'until tmux -L {sock} capture-pane -p -t s1 | grep -q "^MARK{i}$"; do :; done; '
              'e=$EPOCHREALTIME; echo "$s $e"')
    out = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, check=True)
    s, e = out.stdout.split()
    return float(e) - float(s)


def main():
    old, new = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    gap = float(sys.argv[4]) if len(sys.argv) > 4 else 2.5
    builds = {"old": old, "new": new}
    homes = {k: tempfile.mkdtemp(prefix=f"paced-{k}-") for k in builds}
    conns = {}
    for k, b in builds.items():
        cli(b, homes[k], "new", "-s", "p", "--shell", "/bin/sh")
        cli(b, homes[k], "exec", "-t", "p", "true")
        conns[k] = connect(f"{homes[k]}/run/paced.sock")
    times = {k: {"cli": [], "socket": []} for k in builds}
    sock = f"paced{int(time.time())}"
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", "s1", "sh"], check=True)
    tmux = []
    for i in range(rounds):
        order = ("old", "new") if i % 2 else ("new", "old")
        time.sleep(gap)
        tmux.append(tmux_round(sock, i))
        time.sleep(gap)
        for k in order:
            took, out = cli(builds[k], homes[k], "exec", "-t", "p", f"echo C{i}")
            if f"C{i}" not in out:
                sys.exit(f"{k}: the output of echo C{i} is {out!r}")
            times[k]["cli"].append(took)
        time.sleep(gap)
        for k in order:
            params = {"target": "p", "command": f"echo S{i}"}
            times[k]["socket"].append(call(conns[k], 10 + i, "session.exec", params))
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    tmux.sort()
    tmux_p50 = tmux[len(tmux) // 2] * 1e3
    print(f"tmux send-keys + capture-pane every {gap} s: p50 {tmux_p50:.2f} ms, "
          f"mean {sum(tmux) / len(tmux) * 1e3:.2f}, p90 {tmux[int(len(tmux) * 0.9)] * 1e3:.2f}")
    for k, b in builds.items():
        subprocess.run([b, "-L", "paced", "daemon", "stop"], env={"AI_SESSION_HOME": homes[k]},
                       capture_output=True)
        for path, xs in times[k].items():
            xs.sort()
            p50, p90 = xs[len(xs) // 2] * 1e3, xs[int(len(xs) * 0.9)] * 1e3
            mean = sum(xs) / len(xs) * 1e3
            print(f"{k} {path} exec every {gap} s: p50 {p50:.2f} ms, mean {mean:.2f}, p90 {p90:.2f}"
                  + (f"; tmux / this {tmux_p50 / p50:.2f}x" if path == "cli" else ""))


if __name__ == "__main__":
    main()
