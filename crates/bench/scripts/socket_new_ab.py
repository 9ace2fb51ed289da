#!/usr/bin/env python3
"""Socket `session.new` and `session.exec` of two running daemons, alternating call by call.

usage: socket_new_ab.py OLD_SOCKET NEW_SOCKET [N]
Each daemon gets N `session.new` (sh) and N `session.exec` (`echo M<i>`) on one connection;
prints p50, mean and p90 in ms per daemon and method. Start the daemons first, e.g.
`AI_SESSION_HOME=/tmp/old OLD/ai-session -L ab new -s warm --shell /bin/sh`.
"""
import json
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rb")
    s.sendall(b'{"jsonrpc":"2.0","id":0,"method":"hello","params":{"client":"ab","protocol":1}}\n')
    f.readline()
    return s, f


def call(conn, i, method, params):
    s, f = conn
    line = json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
    s.sendall(line.encode() + b"\n")
    t = time.perf_counter()
    answer = json.loads(f.readline())
    if "error" in answer:
        sys.exit(f"{method}: {answer['error']}")
    return time.perf_counter() - t


def main():
    old, new = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    conns = {"old": connect(old), "new": connect(new)}
    times = {k: {"new": [], "exec": []} for k in conns}
    tag = str(int(time.time()))[-5:]
    for conn in conns.values():
        call(conn, 1, "session.new", {"name": f"x{tag}", "shell": "/bin/sh"})
        call(conn, 2, "session.exec", {"target": f"x{tag}", "command": "true"})
    for i in range(n):
        order = ("old", "new") if i % 2 else ("new", "old")
        for k in order:
            params = {"name": f"n{tag}_{i}", "shell": "/bin/sh"}
            times[k]["new"].append(call(conns[k], 10 + i, "session.new", params))
            params = {"target": f"x{tag}", "command": f"echo M{i}"}
            times[k]["exec"].append(call(conns[k], 10_000 + i, "session.exec", params))
    for k in conns:
        for method, xs in times[k].items():
            xs.sort()
            p50, p90 = xs[len(xs) // 2] * 1e3, xs[int(len(xs) * 0.9)] * 1e3
            mean = sum(xs) / len(xs) * 1e3
            print(f"{k} {method}: p50 {p50:.2f} ms, mean {mean:.2f}, p90 {p90:.2f}")


if __name__ == "__main__":
    main()
