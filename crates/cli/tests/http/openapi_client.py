"""Drives the HTTP API through a client generated from /openapi.json by openapi-python-client.

Usage: python3 openapi_client.py URL TOKEN DIR
DIR holds the generated package `ais_client`. Only the generated code talks to the server:
create a session, exec (full and compact views, a failing command), read the output, get the
session's context, snapshot it, list snapshots, kill it. Any failure raises.
"""

import sys
import typing

URL, TOKEN, DIR = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, DIR)

from ais_client import AuthenticatedClient  # noqa: E402
from ais_client.api.context import context_add, context_get  # noqa: E402
from ais_client.api.sessions import (  # noqa: E402
    session_exec,
    session_kill,
    session_list,
    session_new,
    session_read,
)
from ais_client.api.snapshots import snapshot_create, snapshot_list  # noqa: E402
from ais_client.types import Unset  # noqa: E402

client = AuthenticatedClient(base_url=URL, token=TOKEN, timeout=60.0)


def body(module, fields):
    """The operation's generated body model, built from `fields`."""
    hint = typing.get_type_hints(module.sync_detailed)["body"]  # `Model | Unset`
    model = next(t for t in typing.get_args(hint) or (hint,) if hasattr(t, "from_dict"))
    return model.from_dict(fields)


def ok(result, what):
    """The parsed answer; a generated error model (or nothing) fails with the raw response."""
    assert result is not None, what
    assert not hasattr(result, "error"), f"{what}: {result}"
    return result


created = ok(session_new.sync(client=client, body=body(session_new, {"name": "gen", "shell": "/bin/bash"})), "new")
assert created.name == "gen", created

full = ok(session_exec.sync(
    name="gen", client=client,
    body=body(session_exec, {"command": "printf 'one\\ntwo\\n'; (exit 4)", "view": "full", "timeout_ms": 30000})),
    "exec full")
assert full.exit_code == 4, full
assert full.output == "one\ntwo\n", full
assert isinstance(full.compact, Unset), full

compact = ok(session_exec.sync(
    name="gen", client=client, body=body(session_exec, {"command": "echo hi", "view": "compact"})), "exec compact")
assert compact.exit_code == 0 and compact.output == "", compact
assert not isinstance(compact.compact, Unset), compact

read = ok(session_read.sync(name="gen", client=client, since=full.output_start), "read")
assert read.data.startswith("one\ntwo"), read

added = ok(context_add.sync(name="gen", client=client,
                            body=body(context_add, {"role": "note", "text": "the build needs make"})), "context add")
assert added.id >= 0, added
ctx = ok(context_get.sync(name="gen", client=client, budget=2000), "context")
assert ctx.tokens_used > 0 and "make" in ctx.text, ctx

snap = ok(snapshot_create.sync(name="gen", client=client, body=body(snapshot_create, {"label": "from the generated client"})), "snapshot")
listed = ok(snapshot_list.sync(client=client, target="gen"), "snapshots")
assert [s.id for s in listed.snapshots] == [snap.id], listed

ok(session_kill.sync(name="gen", client=client), "kill")
names = [s.name for s in ok(session_list.sync(client=client), "list").sessions]
assert "gen" not in names, names
print("generated client: ok")
