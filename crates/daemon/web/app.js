// The dashboard's shell: the API helper (cookie + CSRF token), tabs, the error banner, and the
// session list: polled from GET /v1/sessions, drawn virtualised (only the rows in view exist),
// rows kept live between polls by the $system bus stream (session states, panels.js) and the
// selected session's own stream (terminal.js). In a cluster (GET /v1/cluster/nodes answers),
// each row names its node, and the sessions of the other nodes are listed too.
'use strict';

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const PRINCIPAL = document.querySelector('meta[name="principal"]').content;
const ROW = 24;

// Reads this principal was refused (403), by path without its query: asked once per page
// load, not at every poll, so a read-only dashboard does not fill the audit log with denials
// (nor raise denial_burst alerts). A capability granted later shows after a reload.
const refusedReads = new Map();

/** Calls the REST API as this dashboard session; throws an Error with the server's message. */
async function api(method, path, body) {
  const key = path.split('?')[0];
  if (method === 'GET' && refusedReads.has(key)) throw refusedReads.get(key);
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') {
    opts.headers['X-CSRF-Token'] = CSRF;
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body || {});
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!r.ok) {
    const err = new Error((json && json.error && json.error.message) || `HTTP ${r.status}`);
    err.status = r.status;
    err.hint = json && json.error && json.error.hint;
    if (r.status === 401) showError('Logged out: run `ai-session web` for a new link.');
    if (r.status === 403 && method === 'GET') refusedReads.set(key, err);
    throw err;
  }
  return json;
}

/** Whether this principal may follow bus topics (bus:subscribe, which bus.recent needs too):
 * asked once, so a dashboard without it never opens a stream the daemon would refuse. */
let subscribing = null;
function maySubscribe() {
  subscribing ||= api('GET', '/v1/bus/recent').then(() => true, (e) => e.status !== 403);
  return subscribing;
}

function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

function showError(text) {
  const e = document.getElementById('error');
  e.textContent = text;
  e.hidden = !text;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ''));
  return e;
}

function human(ms) {
  if (ms == null) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

// ---- tabs ----------------------------------------------------------------------------------

const tabHooks = {};
document.getElementById('tabs').addEventListener('click', (ev) => {
  const tab = ev.target.dataset && ev.target.dataset.tab;
  if (!tab) return;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b === ev.target);
  for (const s of document.querySelectorAll('.tab')) s.classList.toggle('active', s.id === `tab-${tab}`);
  if (tabHooks[tab]) tabHooks[tab]();
});
document.getElementById('who').textContent = `as ${PRINCIPAL}`;
document.getElementById('logout').addEventListener('click', async () => {
  await fetch('/logout', { method: 'POST', headers: { 'X-CSRF-Token': CSRF } });
  location.reload();
});

// ---- the session list ----------------------------------------------------------------------

const list = {
  all: [],        // every session, from the last poll
  shown: [],      // after the filters
  agents: {},     // session name -> agent name
  selected: null, // name
  live: {},       // name -> fields the stream updated since the last poll
  node: null,     // this daemon's node, when it is in a cluster
  clusterless: false, // the daemon said it is in no cluster
};

function rowFields(s) {
  const live = list.live[s.name] || {};
  const last = s.last_command;
  const exit = live.exit_code !== undefined ? live.exit_code : (last ? last.exit_code : null);
  return {
    name: s.name,
    state: live.state || s.state,
    program: (s.program || []).join(' '),
    cwd: s.cwd,
    sandbox: s.sandbox ? s.sandbox.policy : '',
    exit,
    duration: s.created_ms ? human(Date.now() - s.created_ms) : '',
    agent: list.agents[s.name] || '',
    node: s.node || list.node || '',
    remote: !!s.remote,
  };
}

function applyFilters() {
  const text = document.getElementById('filter-text').value.trim().toLowerCase();
  const state = document.getElementById('filter-state').value;
  const failed = document.getElementById('filter-failed').checked;
  list.shown = list.all.map(rowFields).filter((r) =>
    (!state || r.state === state || (state === 'remote' && r.remote))
    && (!failed || (r.exit != null && r.exit !== 0))
    && (!text || [r.name, r.program, r.cwd, r.agent, r.sandbox, r.node].some((f) => f.toLowerCase().includes(text))));
  document.getElementById('session-spacer').style.height = `${list.shown.length * ROW}px`;
  document.getElementById('list-count').textContent =
    `${list.shown.length} of ${list.all.length} sessions`;
  drawRows();
}

/** Draws only the rows in view (plus a margin): 1,000 sessions cost 40 elements, not 8,000. */
function drawRows() {
  const box = document.getElementById('session-list');
  const spacer = document.getElementById('session-spacer');
  const first = Math.max(0, Math.floor(box.scrollTop / ROW) - 5);
  const last = Math.min(list.shown.length, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + 5);
  spacer.replaceChildren();
  for (let i = first; i < last; i++) {
    const r = list.shown[i];
    const exitClass = r.exit == null ? '' : (r.exit === 0 ? 'exit-ok' : 'exit-bad');
    const row = el('div', {
      class: `row${r.name === list.selected ? ' selected' : ''}`,
      'data-name': r.name,
      style: `position:absolute;top:${i * ROW}px;left:0;right:0`,
      onclick: () => selectSession(r.name),
    },
    el('span', { title: r.name }, r.name),
    el('span', { class: `state ${r.state}` }, r.remote && r.state !== 'remote' ? `${r.state} (remote)` : r.state),
    el('span', { title: r.program }, r.program),
    el('span', { title: r.cwd }, r.cwd),
    el('span', {}, r.sandbox),
    el('span', { class: exitClass }, r.exit == null ? '' : r.exit),
    el('span', {}, r.duration),
    el('span', {}, r.agent),
    el('span', { class: 'node' }, r.node));
    spacer.append(row);
  }
}

async function pollSessions() {
  try {
    const [sessions, agents, cluster] = await Promise.all([
      api('GET', '/v1/sessions'),
      api('GET', '/v1/agents').catch(() => ({ agents: [] })),
      list.clusterless ? null : api('GET', '/v1/cluster/nodes').catch((e) => {
        // Not in a cluster (409): a daemon joins one only when it starts, so ask no more.
        if (e.status === 409) list.clusterless = true;
        return null;
      }),
    ]);
    list.node = cluster ? cluster.node : null;
    // A clustered daemon's list holds every live node's sessions, each with its node: those of
    // other nodes are followed through forwarded reads (terminal.js), not a stream.
    for (const s of sessions.sessions) s.remote = !!(list.node && s.node && s.node !== list.node);
    list.all = sessions.sessions.concat(remoteSessions(cluster, sessions.sessions))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    list.live = {};
    list.agents = {};
    for (const a of agents.agents) if (a.session && a.status === 'active') list.agents[a.session] = a.name;
    applyFilters();
    if (typeof onListPolled === 'function') onListPolled(list.all.find((s) => s.name === list.selected));
  } catch (e) {
    if (e.status !== 401) showError(`session list: ${e.message}`);
  }
}

/** Sessions the node records name but the list did not bring (their node did not answer in
 * time): name and node only. */
function remoteSessions(cluster, local) {
  if (!cluster) return [];
  const here = new Set(local.map((s) => s.name));
  const out = [];
  for (const n of cluster.nodes) {
    if (n.node === cluster.node) continue;
    for (const name of n.sessions) {
      if (here.has(name)) continue;
      here.add(name); // a name listed twice (a record not yet expired) is shown once
      out.push({ name, state: 'remote', program: [], cwd: '', node: n.node, remote: true });
    }
  }
  return out;
}

/** The stream of the selected session changed its row (state, exit code). */
function liveUpdate(name, fields) {
  list.live[name] = Object.assign(list.live[name] || {}, fields);
  applyFilters();
}

for (const id of ['filter-text', 'filter-state', 'filter-failed']) {
  document.getElementById(id).addEventListener('input', applyFilters);
}
document.getElementById('session-list').addEventListener('scroll', drawRows);
window.addEventListener('resize', drawRows);
pollSessions();
setInterval(pollSessions, 3000);
