// A scripted session against ai-session's MCP server with the official TypeScript SDK.
//
// usage: node mcp_ts_client.mjs SDK_DIR stdio AI_SESSION_BINARY LABEL
//        node mcp_ts_client.mjs SDK_DIR http URL TOKEN
//
// SDK_DIR holds node_modules with @modelcontextprotocol/client (2.x: protocol 2026-07-28) and
// @modelcontextprotocol/sdk (1.x: 2025-11-25), as .ci/run installs them. Each transport is
// driven at 2026-07-28 (pinned: server/discover, per-request metadata, subscriptions/listen)
// and at 2025-11-25 (initialize; over HTTP the session ends with DELETE /mcp): list tools,
// create, exec (exit code, structuredContent), read, kill. Every step has a deadline; a failure
// exits non-zero.

import assert from "node:assert/strict";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [SDK_DIR, MODE, A, B] = process.argv.slice(2);
const DEADLINE_MS = 60_000;
const mod = (p) => import(pathToFileURL(path.join(SDK_DIR, "node_modules", p)).href);

const modern = await mod("@modelcontextprotocol/client/dist/index.mjs");
const modernStdio = await mod("@modelcontextprotocol/client/dist/stdio.mjs");
const legacyClient = await mod("@modelcontextprotocol/sdk/dist/esm/client/index.js");
const legacyStdio = await mod("@modelcontextprotocol/sdk/dist/esm/client/stdio.js");
const legacyHttp = await mod("@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js");

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function call(client, name, args, { error = false } = {}) {
  const r = await within(client.callTool({ name, arguments: args }), name);
  assert.equal(Boolean(r.isError), error, `${name} ${JSON.stringify(args)}: ${JSON.stringify(r)}`);
  assert.ok(r.structuredContent, `${name}: no structuredContent: ${JSON.stringify(r)}`);
  return r.structuredContent;
}

/** The scripted session both eras run: tools, create, exec, read, kill. */
async function session(client, name) {
  const { tools } = await within(client.listTools(), "tools/list");
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  for (const t of ["session_create", "session_exec", "session_read", "session_kill"]) {
    assert.ok(byName[t], `no tool ${t} in ${Object.keys(byName)}`);
  }
  const exec = byName.session_exec;
  assert.equal(exec.outputSchema?.type, "object", JSON.stringify(exec));
  assert.equal(exec.annotations?.readOnlyHint, false, JSON.stringify(exec.annotations));
  assert.equal(exec.annotations?.destructiveHint, true, JSON.stringify(exec.annotations));
  assert.equal(byName.session_read.annotations?.readOnlyHint, true);
  assert.equal(byName.session_kill.annotations?.idempotentHint, true);
  assert.equal(byName.session_create.annotations?.destructiveHint, false);

  const info = await call(client, "session_create", { name, shell: "/bin/bash" });
  assert.equal(info.name, name);
  // The SDK validates structuredContent against outputSchema on every call below.
  const r = await call(client, "session_exec", {
    session: name,
    command: "echo hello-from-ts; (exit 3)",
    view: "full",
    timeout_ms: "30000", // a number sent as a string is taken
  });
  assert.equal(r.status, "exited", JSON.stringify(r));
  assert.equal(r.exit_code, 3, JSON.stringify(r));
  assert.match(r.output, /hello-from-ts/);
  const compact = await call(client, "session_exec", { session: name, command: "echo hi" });
  assert.equal(compact.exit_code, 0);
  assert.ok(compact.compact && compact.output === undefined, JSON.stringify(compact));
  const read = await call(client, "session_read", { session: name, since: r.output_start });
  assert.match(read.data, /hello-from-ts/);

  // Errors are tool results in MCP's own terms.
  const missing = await call(client, "session_exec", { session: "nope", command: "true" }, { error: true });
  assert.equal(missing.error.kind, "session_not_found", JSON.stringify(missing));
  assert.ok(!/ai-session |POST \/v1/.test(JSON.stringify(missing)), JSON.stringify(missing));
  return name;
}

async function kill(client, name) {
  const killed = await call(client, "session_kill", { session: name });
  assert.equal(killed.killed, name);
  const list = await call(client, "session_list", {});
  assert.ok(!list.sessions.some((s) => s.name === name), JSON.stringify(list));
}

/** 2026-07-28: discover, then a subscriptions/listen stream reporting a session's output. */
async function modernRun(transport, name) {
  const client = new modern.Client(
    { name: "ai-session-ci", version: "1.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } },
  );
  await within(client.connect(transport), "connect (2026-07-28)");
  assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
  await session(client, name);
  const uri = `ai-session://sessions/${name}/log`;
  let updated;
  const seen = new Promise((resolve) => { updated = resolve; });
  client.setNotificationHandler("notifications/resources/updated", (n) => {
    if (n.params.uri === uri) updated(n);
  });
  const sub = await within(client.listen({ resourceSubscriptions: [uri], resourcesListChanged: true }), "listen");
  assert.deepEqual(sub.honoredFilter.resourceSubscriptions, [uri], JSON.stringify(sub.honoredFilter));
  await call(client, "session_exec", { session: name, command: "echo after-listen" });
  await within(seen, "notifications/resources/updated on the listen stream");
  await sub.close();
  await kill(client, name);
  await client.close();
  console.log(`2026-07-28 over ${MODE}: ok`);
}

/** 2025-11-25: initialize; over HTTP, DELETE /mcp ends the session as the SDK expects. */
async function legacyRun(transport, name) {
  const client = new legacyClient.Client({ name: "ai-session-ci-legacy", version: "1.0.0" });
  await within(client.connect(transport), "connect (2025-11-25)");
  assert.equal(client.getServerVersion()?.name, "ai-session");
  await session(client, name);
  await kill(client, name);
  if (MODE === "http") {
    assert.ok(transport.sessionId, "the server gave no Mcp-Session-Id");
    await within(transport.terminateSession(), "DELETE /mcp");
    assert.equal(transport.sessionId, undefined, "the SDK kept the session after DELETE");
  }
  await client.close();
  console.log(`2025-11-25 over ${MODE}: ok`);
}

if (MODE === "stdio") {
  const params = (sdk) =>
    new sdk.StdioClientTransport({
      command: A,
      args: ["-L", B, "mcp"],
      env: { ...process.env },
      stderr: "inherit",
    });
  await modernRun(params(modernStdio), "ts-stdio");
  await legacyRun(params(legacyStdio), "ts-stdio-legacy");
} else if (MODE === "http") {
  const url = new URL(A + "/mcp");
  const headers = { Authorization: `Bearer ${B}` };
  await modernRun(new modern.StreamableHTTPClientTransport(url, { requestInit: { headers } }), "ts-http");
  await legacyRun(new legacyHttp.StreamableHTTPClientTransport(url, { requestInit: { headers } }), "ts-http-legacy");
} else {
  throw new Error(`unknown mode ${MODE}: give stdio or http`);
}
