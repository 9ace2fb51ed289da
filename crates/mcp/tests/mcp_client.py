"""End-to-end test of `ai-session mcp` with the official Python MCP SDK as the client.

Usage: python3 mcp_client.py AI_SESSION_BINARY LABEL
The caller sets AI_SESSION_HOME to a private directory and stops the daemon afterwards.
Every wait has a deadline; a failure raises and exits non-zero.
"""

import asyncio
import json
import os
import sys
import warnings

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

# resources/subscribe is deprecated for the 2026 protocol; this client negotiates 2025-11-25.
warnings.filterwarnings("ignore", message="resources/(un)?subscribe is removed")

BINARY, LABEL = sys.argv[1], sys.argv[2]
DEADLINE = 60  # seconds, for any single step
TOOLS = {
    "session_create", "session_list", "session_kill", "session_resize", "session_exec",
    "session_send_keys", "session_wait", "session_read", "session_capture",
    "context_get", "context_add", "snapshot_create", "snapshot_list", "snapshot_restore",
    "agent_register", "agent_list", "bus_publish", "task_submit", "task_claim",
    "task_complete", "task_fail", "task_list",
}
PREFIX = "ai-session://sessions/"


class Inbox:
    """Every notification the server sends, and a way to wait for one."""

    def __init__(self):
        self.items = []
        self.changed = asyncio.Event()

    async def __call__(self, message):
        if isinstance(message, Exception):
            return
        self.items.append(message)
        self.changed.set()

    async def wait_for(self, pred, what, start=0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while True:
            self.changed.clear()
            for m in self.items[start:]:
                if pred(m):
                    return m
            remaining = deadline - loop.time()
            assert remaining > 0, f"no {what} within {DEADLINE}s; got {self.items[start:]}"
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


def updated(uri):
    return lambda m: isinstance(m, types.ResourceUpdatedNotification) and str(m.params.uri) == uri


def list_changed(m):
    return isinstance(m, types.ResourceListChangedNotification)


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
    params = StdioServerParameters(command=BINARY, args=["-L", LABEL, "mcp", "--tools", "all"], env=dict(os.environ))
    inbox = Inbox()
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=inbox) as s:
            init = await asyncio.wait_for(s.initialize(), DEADLINE)
            print("negotiated protocol", init.protocol_version, "server", init.server_info)
            assert init.server_info.name == "ai-session", init.server_info
            assert init.capabilities.tools is not None
            res_caps = init.capabilities.resources
            assert res_caps is not None and res_caps.subscribe and res_caps.list_changed, res_caps
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

            r = await call(s, "session_exec", {"session": "work", "command": "sleep 5", "idle_timeout_ms": 300})
            assert r["status"] == "running" and r["exit_code"] is None, r
            # Hints in MCP's own terms: tools and their arguments, no other front end's syntax.
            assert 'session_wait {"prompt":true,"session":"work"}' in r["hint"], r
            assert 'session_send_keys {"keys":["C-c"],"session":"work"}' in r["hint"], r
            busy = await call(s, "session_exec", {"session": "work", "command": "echo no"}, expect_error=True)
            busy_hint = busy.structured_content["error"]["hint"]
            assert busy.structured_content["error"]["kind"] == "session_busy", busy
            assert "session_wait" in busy_hint and "session_send_keys" in busy_hint, busy
            for text in (r["hint"], r["more"], busy_hint, busy.content[0].text):
                for foreign in ("ai-session ", " -t ", "POST /v1", "GET /v1", "--prompt"):
                    assert foreign not in text, (foreign, text)
            assert "advice" not in r and "advice" not in busy.structured_content["error"], r
            # Arguments: numbers sent as strings are taken; a wrong type is a tool error that
            # names the argument in plain words.
            odd = await call(s, "session_read", {"session": "work", "since": "0", "max_bytes": "64"})
            assert odd["start"] == 0 or odd["dropped"] > 0, odd
            bad = await call(s, "session_wait", {"session": "work", "prompt": True, "timeout_secs": "soon"}, expect_error=True)
            err = bad.structured_content["error"]
            assert err["kind"] == "invalid_params" and err["field"] == "timeout_secs", bad
            assert err["message"] == '`timeout_secs` must be a number, not the string "soon"', bad
            w = await call(s, "session_wait", {"session": "work", "prompt": True, "timeout_ms": 20000})
            assert w["exit_code"] == 0, w

            listed = await call(s, "session_list", {})
            assert [x["name"] for x in listed["sessions"]] == ["work"], listed
            await call(s, "session_resize", {"session": "work", "cols": 100, "rows": 30})

            # An interactive program: a python REPL driven with keys.
            sent = await call(s, "session_send_keys", {"session": "work", "keys": ["python3 -q", "Enter"]})
            await call(s, "session_wait", {"session": "work", "regex": ">>> $", "timeout_ms": 20000})
            sent = await call(s, "session_send_keys", {"session": "work", "keys": ["print(2 ** 10)", "Enter"]})
            m = await call(s, "session_wait", {"session": "work", "regex": "^1024$", "timeout_ms": 20000})
            assert m["matched"] == "1024", m
            got = await call(s, "session_read", {"session": "work", "since": sent["offset"]})
            assert "1024" in got["data"] and got["end"] >= m["offset"], got
            cap = await call(s, "session_capture", {"session": "work", "scrollback": 5})
            assert "1024" in cap["screen"] and cap["size"] == {"cols": 100, "rows": 30}, cap
            # Python's next prompt first: a C-d typed ahead of it can be flushed with the input.
            await call(s, "session_wait", {"session": "work", "regex": ">>> $", "timeout_ms": 20000})
            await call(s, "session_send_keys", {"session": "work", "keys": ["C-d"]})
            await call(s, "session_wait", {"session": "work", "prompt": True, "timeout_ms": 20000})

            # Errors an agent can act on: a tool error with the daemon's message and hint.
            err = await call(s, "session_exec", {"session": "nope", "command": "ls"}, expect_error=True)
            text = err.content[0].text
            assert "no session named 'nope'" in text and "hint:" in text and "work" in text, text
            err = await call(s, "session_wait", {"session": "work", "regex": "never-printed", "timeout_ms": 200}, expect_error=True)
            assert err.structured_content["error"]["kind"] == "timeout", err
            err = await call(s, "session_wait", {"session": "work"}, expect_error=True)
            assert "exactly one" in err.content[0].text, err
            # Arguments that break the schema: a tool error naming the missing argument.
            bad = await call(s, "session_exec", {"session": "work"}, expect_error=True)
            assert bad.structured_content["error"]["message"] == "`command` is required", bad

            await resources(s, inbox)
            await progress(s)
            await context_and_snapshots(s, inbox)
            await coordination(s)

            mark = len(inbox.items)
            await call(s, "session_kill", {"session": "work"})
            listed = await call(s, "session_list", {})
            assert listed["sessions"] == [], listed
            await inbox.wait_for(list_changed, "resources/list_changed after a kill", mark)


async def resources(s, inbox):
    """Each session is two resources; a subscribed one reports its changes."""
    screen, log = PREFIX + "work/screen", PREFIX + "work/log"
    listed = await asyncio.wait_for(s.list_resources(), DEADLINE)
    uris = {str(r.uri): r for r in listed.resources}
    assert screen in uris and log in uris, sorted(uris)
    assert uris[screen].mime_type == "text/plain" and uris[screen].description, uris[screen]
    templates = await asyncio.wait_for(s.list_resource_templates(), DEADLINE)
    assert {t.uri_template for t in templates.resource_templates} == {
        PREFIX + "{name}/screen", PREFIX + "{name}/log"}, templates

    await call(s, "session_exec", {"session": "work", "command": "echo resource-marker"})
    got = await asyncio.wait_for(s.read_resource(screen), DEADLINE)
    assert "resource-marker" in got.contents[0].text, got
    got = await asyncio.wait_for(s.read_resource(log), DEADLINE)
    assert "resource-marker" in got.contents[0].text, got
    try:
        await asyncio.wait_for(s.read_resource(PREFIX + "nope/screen"), DEADLINE)
    except Exception as e:  # a JSON-RPC error: resource not found, with the existing sessions
        assert "no session named 'nope'" in str(e), e
    else:
        raise AssertionError("reading an unknown session's resource succeeded")

    # Subscribe: an exec's output turns into resources/updated.
    await asyncio.wait_for(s.subscribe_resource(screen), DEADLINE)
    mark = len(inbox.items)
    await call(s, "session_exec", {"session": "work", "command": "echo subscribed-marker"})
    await inbox.wait_for(updated(screen), "resources/updated for the screen", mark)
    got = await asyncio.wait_for(s.read_resource(screen), DEADLINE)
    assert "subscribed-marker" in got.contents[0].text, got

    # Unsubscribe the screen, follow the log: only the log reports from then on.
    await asyncio.wait_for(s.unsubscribe_resource(screen), DEADLINE)
    await asyncio.wait_for(s.subscribe_resource(log), DEADLINE)
    mark = len(inbox.items)
    await call(s, "session_exec", {"session": "work", "command": "echo log-marker"})
    await inbox.wait_for(updated(log), "resources/updated for the log", mark)
    await asyncio.wait_for(s.unsubscribe_resource(log), DEADLINE)
    stray = [m for m in inbox.items[mark:] if updated(screen)(m)]
    assert not stray, stray
    try:
        await asyncio.wait_for(s.subscribe_resource(PREFIX + "nope/log"), DEADLINE)
    except Exception as e:
        assert "nope" in str(e), e
    else:
        raise AssertionError("subscribing to an unknown session succeeded")


async def progress(s):
    """A long exec with a progress token reports progress until it returns."""
    seen = []

    async def on_progress(value, total, message):
        seen.append((value, total, message))

    r = await asyncio.wait_for(s.call_tool(
        "session_exec", {"session": "work", "command": "echo start; sleep 2.5; echo done"},
        progress_callback=on_progress), DEADLINE)
    assert not r.is_error, r
    out = r.structured_content
    assert out["exit_code"] == 0 and "done" in out["compact"]["text"], out
    print("progress notifications:", seen)
    assert len(seen) >= 2, seen
    values = [v for v, _, _ in seen]
    assert values == sorted(values) and values[0] > 0, values
    assert all("running for" in m for _, _, m in seen), seen
    assert any("start" in m for _, _, m in seen), seen

    # session_wait reports too.
    seen.clear()
    r = await call(s, "session_exec", {"session": "work", "command": "sleep 2", "idle_timeout_ms": 200})
    assert r["status"] == "running", r
    r = await asyncio.wait_for(s.call_tool(
        "session_wait", {"session": "work", "prompt": True, "timeout_ms": 20000},
        progress_callback=on_progress), DEADLINE)
    assert not r.is_error and r.structured_content["exit_code"] == 0, r
    assert len(seen) >= 1, seen


async def context_and_snapshots(s, inbox):
    ctx = await call(s, "context_get", {"session": "work", "budget": 2000})
    print("context_get:", {k: ctx[k] for k in ("tokens_used",) if k in ctx}, ctx.get("text", "")[:300])
    assert isinstance(ctx["text"], str) and ctx["text"], ctx
    assert ctx["tokens_used"] <= 2000, ctx
    assert "marker" in ctx["text"] or "echo" in ctx["text"], ctx["text"]
    added = await call(s, "context_add", {"session": "work", "role": "note", "text": "the build uses make"})
    assert isinstance(added["id"], int), added
    ctx = await call(s, "context_get", {"session": "work"})
    assert "the build uses make" in ctx["text"], ctx["text"]
    err = await call(s, "context_add", {"session": "work", "role": "note", "text": "  "}, expect_error=True)
    assert "empty" in err.content[0].text, err

    snap = await call(s, "snapshot_create", {"session": "work", "label": "mcp-test"})
    assert snap["session_name"] == "work" and snap["label"] == "mcp-test", snap
    listed = await call(s, "snapshot_list", {"session": "work"})
    assert snap["id"] in [x["id"] for x in listed["snapshots"]], listed
    mark = len(inbox.items)
    restored = await call(s, "snapshot_restore", {"snapshot": snap["id"], "name": "work2"})
    assert restored["session"]["name"] == "work2", restored
    await inbox.wait_for(list_changed, "resources/list_changed after a restore", mark)
    r = await call(s, "session_exec", {"session": "work2", "command": "echo restored"})
    assert r["exit_code"] == 0, r
    await call(s, "session_kill", {"session": "work2"})
    err = await call(s, "snapshot_restore", {"snapshot": "no-such-snapshot"}, expect_error=True)
    assert "error:" in err.content[0].text, err


async def coordination(s):
    agent = await call(s, "agent_register", {"name": "mcp-agent", "capabilities": ["test"]})
    token = agent["token"]
    assert token and agent["name"] == "mcp-agent", agent
    agents = await call(s, "agent_list", {})
    assert "mcp-agent" in json.dumps(agents["agents"]), agents
    task = await call(s, "task_submit", {"description": "say hi", "needs": ["test"]})
    claimed = await call(s, "task_claim", {"token": token, "wait_ms": 10000})
    assert claimed["task"]["id"] == task["id"], (task, claimed)
    done = await call(s, "task_complete", {"token": token, "id": task["id"], "result": {"said": "hi"}})
    assert done["task"]["state"] == "done", done
    listed = await call(s, "task_list", {"state": "done"})
    assert task["id"] in [t["id"] for t in listed["tasks"]], listed
    # Failing a task.
    task2 = await call(s, "task_submit", {"description": "break", "needs": ["test"], "max_retries": 0})
    claimed = await call(s, "task_claim", {"token": token, "wait_secs": 10})
    assert claimed["task"]["id"] == task2["id"], claimed
    failed = await call(s, "task_fail", {"token": token, "id": task2["id"], "reason": "on purpose"})
    assert failed["task"]["state"] in ("failed", "dead_lettered"), failed
    pub = await call(s, "bus_publish", {"topic": "mcp-test", "payload": {"x": 1}, "token": token})
    assert "delivered" in pub, pub
    # Errors an agent can act on.
    err = await call(s, "task_claim", {"token": "1." + "0" * 64}, expect_error=True)
    assert err.structured_content["error"]["kind"] == "permission_denied", err
    err = await call(s, "task_complete", {"token": token, "id": task["id"]}, expect_error=True)
    print("completing twice ->", err.content[0].text)
    assert "error:" in err.content[0].text, err


async def raw_session():
    """Protocol version negotiation and malformed input, on the raw JSON-RPC lines."""
    proc = await asyncio.create_subprocess_exec(
        BINARY, "-L", LABEL, "mcp", "--tools", "all",
        # Every tool with its output schema is one line of about 70 KB.
        limit=1 << 20,
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
