"""MCP over streamable HTTP (`/mcp` of `ai-session serve`) driven by the official Python MCP SDK.

Usage: python3 mcp_http_client.py URL TOKEN
Initialize, list the tools, create a session, exec `echo hi` and `false`, kill the session; also
checks that a request without the token is refused. Every step has a deadline; a failure raises.
"""

import asyncio
import json
import sys

import httpx2 as httpx
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

URL, TOKEN = sys.argv[1], sys.argv[2]
DEADLINE = 60


def data(result):
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def main():
    # Without the token: 401 before any MCP processing.
    async with httpx.AsyncClient() as plain:
        r = await plain.post(URL + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 401, r.status_code

    client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    async with client, streamable_http_client(URL + "/mcp", http_client=client) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await asyncio.wait_for(session.initialize(), DEADLINE)
            assert init.server_info.name, init
            tools = await asyncio.wait_for(session.list_tools(), DEADLINE)
            names = {t.name for t in tools.tools}
            assert {"session_create", "session_exec", "session_kill"} <= names, names
            created = data(await asyncio.wait_for(
                session.call_tool("session_create", {"name": "mcp-http", "shell": "/bin/bash"}), DEADLINE))
            assert created["name"] == "mcp-http", created
            hi = data(await asyncio.wait_for(
                session.call_tool("session_exec", {"session": "mcp-http", "command": "echo hi", "view": "full"}),
                DEADLINE))
            assert hi["exit_code"] == 0 and hi["output"] == "hi\n", hi
            no = data(await asyncio.wait_for(
                session.call_tool("session_exec", {"session": "mcp-http", "command": "false"}), DEADLINE))
            assert no["exit_code"] == 1, no
            missing = await asyncio.wait_for(
                session.call_tool("session_exec", {"session": "nope", "command": "true"}), DEADLINE)
            assert missing.is_error, missing
            await asyncio.wait_for(session.call_tool("session_kill", {"session": "mcp-http"}), DEADLINE)
    print("mcp over http: ok")


asyncio.run(main())
