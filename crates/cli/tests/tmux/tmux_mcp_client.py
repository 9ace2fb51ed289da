"""Drives the tmux-mcp MCP server (PyPI `tmux-mcp`) over stdio with the official MCP SDK.

The server runs `tmux` from PATH, which the Rust test points at the ai-session shim; `$TMUX`
names the test's daemon. Every tool call is checked against what the shim must have done;
the script exits non-zero on the first difference and prints a JSON summary on success.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def shim(*args):
    """Runs the shim directly (as a harness would next to the MCP server)."""
    proc = await asyncio.create_subprocess_exec(
        "tmux", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    if proc.returncode != 0:
        raise SystemExit(f"tmux {args}: {err.decode()}")
    return out.decode()


async def main():
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", "import sys; sys.argv=['tmux-mcp']; from tmux_mcp.server import main; main()"],
        env=dict(os.environ),
    )
    checked = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name for t in (await session.list_tools()).tools}

            async def call(tool, **args):
                result = await session.call_tool(tool, args)
                text = text_of(result)
                if result.isError or text.startswith("Error"):
                    raise SystemExit(f"{tool}({args}) failed: {text}")
                checked.append(tool)
                return text

            out = await call("tmux_create_session", name="mcp", window_name="main")
            assert "session_id=$" in out and "pane_id=%" in out, out
            out = await call("tmux_list_sessions")
            assert "\tmcp\t1 windows\t0 attached\t" in out, out

            await call("tmux_send_keys", target="mcp", keys="echo mcp-$((40+2)); tmux wait -S mcp-done")
            await call("tmux_send_keys", target="mcp", keys="Enter")
            await shim("wait-for", "mcp-done")
            out = await call("tmux_read_pane", target="mcp:main")
            assert "mcp-42" in out.splitlines(), out

            out = await call("tmux_split_window", target="mcp:main", horizontal=True, size="5")
            pane = out.split("pane_id=")[1].strip()
            assert pane.startswith("%"), out
            out = await call("tmux_list_panes", target="mcp:main")
            rows = [r.split("\t") for r in out.splitlines()]
            assert [r[4] for r in rows] == ["80x18", "80x5"], out
            await call("tmux_resize_pane", target=pane, height=8)
            out = await call("tmux_list_panes", target="mcp:main")
            assert [r.split("\t")[4] for r in out.splitlines()] == ["80x15", "80x8"], out
            await call("tmux_select_pane", target="mcp:main.0")

            out = await call("tmux_create_window", session="mcp", name="second")
            assert "window_index=1" in out, out
            await call("tmux_rename_window", target="mcp:second", new_name="logs")
            await call("tmux_select_window", target="mcp:logs")
            out = await call("tmux_list_windows", session="mcp")
            windows = [r.split("\t") for r in out.splitlines()]
            assert [(w[1], w[3], w[4]) for w in windows] == [("0", "main", "0"), ("1", "logs", "1")], out

            await call("tmux_kill", target=pane, type="pane")
            out = await call("tmux_list_panes", target="mcp:main")
            assert len(out.splitlines()) == 1, out
            await call("tmux_rename_session", old_name="mcp", new_name="renamed")
            out = await call("tmux_list_sessions")
            assert "\trenamed\t" in out, out
            await call("tmux_kill", target="renamed", type="session")
            out = text_of(await session.call_tool("tmux_list_sessions", {}))
            assert "renamed" not in out, out

    print(json.dumps({"tools": sorted(tools), "checked": checked}))


asyncio.run(main())
