#!/usr/bin/env python3
"""The slowest exec beside a checkpoint of many new shells.

usage: exec_beside_news.py SOCKET [N]
Creates N sh sessions (default 300) on one connection to the daemon on SOCKET, then runs
`echo x` in another session back to back for 5 s and prints the number of execs, the slowest
and every exec over 20 ms (seconds since the start, milliseconds). The daemon must be running,
e.g. `AI_SESSION_HOME=/tmp/s ai-session -L s new -s w --shell /bin/sh`.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from socket_new_ab import connect  # noqa: E402  (the same hello on one connection)


def call(conn, i, method, params):
    s, f = conn
    s.sendall((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
    answer = json.loads(f.readline())
    if "error" in answer:
        sys.exit(f"{method}: {answer['error']}")
    return answer


def main():
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    conn = connect(path)
    tag = str(int(time.time()))[-5:]
    target = f"e{tag}"
    call(conn, 1, "session.new", {"name": target, "shell": "/bin/sh"})
    call(conn, 2, "session.exec", {"target": target, "command": "true"})
    start = time.time()
    for i in range(n):
        call(conn, 10 + i, "session.new", {"name": f"s{tag}_{i}", "shell": "/bin/sh"})
    print(f"{n} news in {time.time() - start:.2f} s")
    times = []
    start = time.time()
    while time.time() - start < 5:
        t = time.perf_counter()
        call(conn, 1_000_000, "session.exec", {"target": target, "command": "echo x"})
        times.append((round(time.time() - start, 2), round((time.perf_counter() - t) * 1000, 1)))
    slow = [x for x in times if x[1] > 20]
    print(f"execs {len(times)}, slowest {max(ms for _, ms in times):.1f} ms, over 20 ms: {slow[:20]}")


if __name__ == "__main__":
    main()
