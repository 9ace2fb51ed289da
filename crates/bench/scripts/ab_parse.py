#!/usr/bin/env python3
"""`ai-session-full parse --command CMD < FILE` of two builds, alternating run by run.

usage: ab_parse.py OLD_DIR NEW_DIR FILE [RUNS] [--pipe] [--command CMD | --no-command]
Prints, per build, the median and range of the wall time (and MB/s), the median CPU time
(user + system, from wait4), the median peak resident memory and the view's lines that name
an error (ERROR or `error` as a word). `--pipe` gives the file through a pipe (a `cat` process)
instead of as the file itself; CMD defaults to `cargo build`; `--no-command` gives none (the
format is recognised from the text alone, as for a saved log).
"""
import os
import re
import statistics
import subprocess
import sys
import time

ERROR = re.compile(rb"\berror\b", re.IGNORECASE)


def main():
    args = [a for a in sys.argv[1:] if a not in ("--pipe", "--no-command")]
    pipe = "--pipe" in sys.argv
    command = None if "--no-command" in sys.argv else "cargo build"
    if "--command" in args:
        i = args.index("--command")
        command = args[i + 1]
        del args[i : i + 2]
    old, new, path = args[0], args[1], args[2]
    runs = int(args[3]) if len(args) > 3 else 20
    bins = {"old": os.path.join(old, "ai-session-full"), "new": os.path.join(new, "ai-session-full")}
    size = os.path.getsize(path) / 1e6
    res = {k: [] for k in bins}
    t0, l0 = time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg()[0]
    for i in range(runs):
        order = list(bins.items()) if i % 2 == 0 else list(reversed(bins.items()))
        for k, exe in order:
            with open(path, "rb") as f:
                feeder = None
                stdin = f
                if pipe:
                    feeder = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
                    stdin = feeder.stdout
                start = time.perf_counter()
                flags = ["--command", command] if command is not None else []
                p = subprocess.Popen([exe, "parse", *flags], stdin=stdin, stdout=subprocess.PIPE)
                if feeder:
                    feeder.stdout.close()
                view = p.stdout.read()
                _, _, ru = os.wait4(p.pid, 0)
                wall = time.perf_counter() - start
                if feeder:
                    feeder.wait()
            errors = sum(1 for line in view.splitlines() if ERROR.search(line))
            res[k].append((wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, errors))
    t1, l1 = time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg()[0]
    how = "pipe" if pipe else "file"
    print(f"{path} {size:.1f} MB ({how}), {t0}-{t1} UTC, load {l0:.2f}-{l1:.2f}, {runs} runs each")
    for k, r in res.items():
        w = [x[0] for x in r]
        c = [x[1] for x in r]
        m = [x[2] for x in r]
        e = sorted({x[3] for x in r})
        med = statistics.median(w)
        print(
            f"  {k}: wall median {med * 1000:.0f} ms ({min(w) * 1000:.0f}-{max(w) * 1000:.0f}) = "
            f"{size / med:.0f} MB/s; cpu median {statistics.median(c) * 1000:.0f} ms; "
            f"peak {statistics.median(m):.0f} MB; view lines naming an error {e}"
        )


if __name__ == "__main__":
    main()
