#!/usr/bin/env python3
"""`ai-session-full parse --command 'cargo build' < FILE` of two builds, alternating run by run.

usage: ab_parse.py OLD_DIR NEW_DIR FILE [RUNS]
Prints, per build, the median and range of the wall time (and MB/s), the median CPU time
(user + system, from wait4) and the median peak resident memory.
"""
import os
import statistics
import subprocess
import sys
import time


def main():
    old, new, path = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    bins = {"old": os.path.join(old, "ai-session-full"), "new": os.path.join(new, "ai-session-full")}
    size = os.path.getsize(path) / 1e6
    res = {k: [] for k in bins}
    t0, l0 = time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg()[0]
    for i in range(runs):
        order = list(bins.items()) if i % 2 == 0 else list(reversed(bins.items()))
        for k, exe in order:
            with open(path, "rb") as stdin, open(os.devnull, "wb") as out:
                start = time.perf_counter()
                p = subprocess.Popen([exe, "parse", "--command", "cargo build"], stdin=stdin, stdout=out)
                _, _, ru = os.wait4(p.pid, 0)
                wall = time.perf_counter() - start
            res[k].append((wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024))
    t1, l1 = time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg()[0]
    print(f"{path} {size:.1f} MB, {t0}-{t1} UTC, load {l0:.2f}-{l1:.2f}, {runs} runs each")
    for k, r in res.items():
        w = [x[0] for x in r]
        c = [x[1] for x in r]
        m = [x[2] for x in r]
        med = statistics.median(w)
        print(
            f"  {k}: wall median {med * 1000:.0f} ms ({min(w) * 1000:.0f}-{max(w) * 1000:.0f}) = "
            f"{size / med:.0f} MB/s; cpu median {statistics.median(c) * 1000:.0f} ms; "
            f"peak {statistics.median(m):.0f} MB"
        )


if __name__ == "__main__":
    main()
