"""End-to-end test of `ai-session mcp` with the official Python MCP SDK as the client.

Usage: python3 mcp_client.py AI_SESSION_BINARY LABEL
The caller sets AI_SESSION_HOME to a private directory and stops the daemon afterwards.
Every wait has a deadline; a failure raises and exits non-zero.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

BINARY, LABEL = sys.argv[1], sys.argv[2]
DEADLINE = 60  # seconds, for any single step
TOOLS = {
    "session_create", "session_list", "session_kill", "session_resize", "session_exec",
    "session_send_keys", "session_wait", "session_read", "session_capture",
}


def data(result):
    """The tool result's structured content (the text content holds the same JSON)."""
    assert result.content, result
    text = result.content[0].text
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(text)


async def call(session, name, args, expect_error=False):
    result = await asyncio.wait_for(session.call_tool(name, args), DEADLINE)
    assert bool(result.is_error) == expect_error, f"{name} {args}: {result}"
    return result if expect_error else data(result)


async def sdk_session():
    params = StdioServerParameters(command=BINARY, args=["-L", LABEL, "mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            init = await asyncio.wait_for(s.initialize(), DEADLINE)
            print("negotiated protocol", init.protocol_version, "server", init.server_info)
            assert init.server_info.name == "ai-session", init.server_info
            assert init.capabilities.tools is not None
            assert init.instructions

            tools = await asyncio.wait_for(s.list_tools(), DEADLINE)
            by_name = {t.name: t for t in tools.tools}
            assert TOOLS <= set(by_name), sorted(by_name)
            for t in by_name.values():
                assert t.description and len(t.description) > 30, t
                assert t.input_schema.get("type") == "object", t
            exec_schema = by_name["session_exec"].input_schema
            assert set(exec_schema["required"]) == {"session", "command"}, exec_schema
            assert "view" in exec_schema["properties"], exec_schema

            shell = "/bin/bash" if os.path.exists("/bin/bash") else None
            info = await call(s, "session_create", {"name": "work", "shell": shell})
            assert info["name"] == "work", info

            r = await call(s, "session_exec", {"session": "work", "command": "echo hi"})
            assert r["exit_code"] == 0 and r["status"] == "exited", r
            assert "hi" in r["compact"]["text"], r
            assert "session_read" in r["more"], r
            full = await call(s, "session_exec", {"session": "work", "command": "echo hi", "view": "full"})
            assert full["output"].strip() == "hi" and "compact" not in full, full
            both = await call(s, "session_exec", {"session": "work", "command": "echo hi", "view": "both"})
            assert both["output"].strip() == "hi" and "compact" in both, both

            r = await call(s, "session_exec", {"session": "work", "command": "false"})
            assert r["exit_code"] == 1 and r["status"] == "exited", r

            r = await call(s, "session_exec", {"session": "work", "command": "sleep 5", "idle_timeout_secs": 0.3})
            assert r["status"] == "running" and r["exit_code"] is None, r
            w = await call(s, "session_wait", {"session": "work", "prompt": True, "timeout_secs": 20})
            assert w["exit_code"] == 0, w

            listed = await call(s, "session_list", {})
            assert [x["name"] for x in listed["sessions"]] == ["work"], listed
            await call(s, "session_resize", {"session": "work", "cols": 100, "rows": 30})

            # An interactive program: a python REPL driven with keys.
            sent = await call(s, "session_send_keys", {"session": "work", "keys": ["python3 -q", "Enter"]})
            await call(s, "session_wait", {"session": "work", "regex": ">>> $", "timeout_secs": 20})
            sent = await call(s, "session_send_keys", {"session": "work", "keys": ["print(2 ** 10)", "Enter"]})
            m = await call(s, "session_wait", {"session": "work", "regex": "^1024$", "timeout_secs": 20})
            assert m["matched"] == "1024", m
            got = await call(s, "session_read", {"session": "work", "since": sent["offset"]})
            assert "1024" in got["data"] and got["end"] >= m["offset"], got
            cap = await call(s, "session_capture", {"session": "work", "scrollback": 5})
            assert "1024" in cap["screen"] and cap["size"] == {"cols": 100, "rows": 30}, cap
            await call(s, "session_send_keys", {"session": "work", "keys": ["C-d"]})
            await call(s, "session_wait", {"session": "work", "prompt": True, "timeout_secs": 20})

            # Errors an agent can act on: a tool error with the daemon's message and hint.
            err = await call(s, "session_exec", {"session": "nope", "command": "ls"}, expect_error=True)
            text = err.content[0].text
            assert "no session named 'nope'" in text and "hint:" in text and "work" in text, text
            err = await call(s, "session_wait", {"session": "work", "regex": "never-printed", "timeout_secs": 0.2}, expect_error=True)
            assert err.structured_content["error"]["kind"] == "timeout", err
            err = await call(s, "session_wait", {"session": "work"}, expect_error=True)
            assert "exactly one" in err.content[0].text, err
            # Arguments that break the schema: a JSON-RPC invalid-params error, or a tool error
            # naming the missing field.
            try:
                bad = await asyncio.wait_for(s.call_tool("session_exec", {"session": "work"}), DEADLINE)
            except Exception as e:  # the SDK raises on a JSON-RPC error
                print("missing argument ->", type(e).__name__, e)
                assert "command" in str(e), e
            else:
                print("missing argument ->", bad)
                assert bad.is_error and "command" in bad.content[0].text, bad

            await call(s, "session_kill", {"session": "work"})
            listed = await call(s, "session_list", {})
            assert listed["sessions"] == [], listed


async def raw_session():
    """Protocol version negotiation and malformed input, on the raw JSON-RPC lines."""
    proc = await asyncio.create_subprocess_exec(
        BINARY, "-L", LABEL, "mcp",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )

    async def send(obj):
        line = obj if isinstance(obj, str) else json.dumps(obj)
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()

    async def recv():
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
        assert line, "the server closed stdout"
        return json.loads(line)

    try:
        await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}})
        init = await recv()
        assert init["id"] == 1 and init["result"]["protocolVersion"] == "2024-11-05", init
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"})

        # Well-formed JSON that is not a JSON-RPC message: an Invalid Request error.
        await send({"jsonrpc": "2.0", "id": 2, "method": 42})
        err = await recv()
        assert err.get("error", {}).get("code") == -32600, err
        # An unknown method: Method not found.
        await send({"jsonrpc": "2.0", "id": 3, "method": "no/such/method"})
        err = await recv()
        assert err["id"] == 3 and err["error"]["code"] == -32601, err
        # A line that is not JSON at all is ignored (there is no id to answer), as in the other
        # official SDKs; the server stays up.
        await send("this is {not json")
        await send({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})
        ok = await recv()
        assert ok["id"] == 4 and len(ok["result"]["tools"]) >= len(TOOLS), ok
        # An unknown tool.
        await send({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                    "params": {"name": "no_such_tool", "arguments": {}}})
        err = await recv()
        assert err["id"] == 5 and ("error" in err or err["result"].get("isError")), err
        await send({"jsonrpc": "2.0", "id": 6, "method": "ping"})
        ok = await recv()
        assert ok["id"] == 6 and "result" in ok, ok
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), DEADLINE)
        except asyncio.TimeoutError:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.returncode


async def unknown_version():
    """A client asking for a version the server does not know gets one the server supports."""
    proc = await asyncio.create_subprocess_exec(
        BINARY, "-L", LABEL, "mcp",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "1999-01-01", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}).encode() + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
        reply = json.loads(line)
        print("unknown version ->", reply.get("result", {}).get("protocolVersion"), reply.get("error"))
        assert reply.get("result", {}).get("protocolVersion", "1999-01-01") != "1999-01-01" or "error" in reply, reply
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), DEADLINE)
        except asyncio.TimeoutError:
            proc.kill()
            raise


async def main():
    await sdk_session()
    await raw_session()
    await unknown_version()
    print("mcp end-to-end: ok")


if __name__ == "__main__":
    asyncio.run(main())
