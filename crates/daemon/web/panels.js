// The other panels: agents, bus topics with their recent messages (bus.recent, then the topic's
// own stream), coordinator events (the `$system` bus stream), the task DAG and dead letters;
// the audit log with its chain check and sealed details opened on request (audit.open); charts
// drawn from GET /v1/stats polled every 2 s once the tab was shown (no external service).
'use strict';

// ---- agents and tasks -----------------------------------------------------------------------

function table(id, head, rows) {
  const t = document.getElementById(id);
  t.replaceChildren(el('tr', {}, ...head.map((h) => el('th', {}, h))),
    ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c)))));
  if (!rows.length) t.append(el('tr', {}, el('td', { class: 'dim' }, 'none')));
}

async function loadCoord() {
  const get = (path, empty) => api('GET', path).catch((e) => { showError(`${path}: ${e.message}`); return empty; });
  const [agents, tasks, topics, recent, dead] = await Promise.all([
    get('/v1/agents', { agents: [] }),
    get('/v1/tasks', { tasks: [] }),
    get('/v1/bus/topics', { topics: [] }),
    get('/v1/bus/recent', { topics: [] }),
    get('/v1/bus/dead-letters', { dead_letters: [], stats: {} }),
  ]);
  table('agents', ['name', 'id', 'status', 'capabilities', 'session', 'load'],
    agents.agents.map((a) => [a.name, a.id, a.status, a.capabilities.join(' '), a.session || '', `${a.load}/${a.max_tasks}`]));
  drawTopics(topics.topics, recent.topics);
  table('tasks', ['id', 'description', 'state', 'needs', 'after', 'agent', 'attempts', 'last error'],
    tasks.tasks.map((t) => [t.id, t.description, t.state, t.needs.join(' '), t.after.join(' '), t.agent ?? '', `${t.attempts}/${t.max_retries + 1}`, t.last_error || '']));
  table('dead', ['seq', 'kind', 'recipient', 'reason', 'attempts'],
    dead.dead_letters.map((d) => [d.seq, d.kind, d.recipient || '', d.reason, d.attempts ?? '']));
  drawDag(tasks.tasks);
}

// ---- bus topics and their recent messages ---------------------------------------------------

/** Topics with subscribers and topics with messages kept, one row each; a click opens one. */
function drawTopics(subscribed, kept) {
  const rows = new Map();
  for (const t of subscribed) rows.set(t.topic, { topic: t.topic, subscribers: t.subscribers, kept: 0 });
  for (const t of kept) rows.set(t.topic, Object.assign(rows.get(t.topic) || { topic: t.topic, subscribers: 0 }, { kept: t.kept }));
  // The open topic's own stream may be ahead of these answers (a message that arrived while
  // they were on their way): its count never goes back below what the page has seen.
  const open = rows.get(topicView.name);
  if (open) open.kept = keptOfOpenTopic(open.kept);
  const all = [...rows.values()].sort((a, b) => (a.topic < b.topic ? -1 : 1));
  table('topics', ['topic', 'subscribers', 'recent messages'], all.map((t) => [t.topic, t.subscribers, t.kept]));
  const trs = document.querySelectorAll('#topics tr');
  all.forEach((t, i) => {
    const tr = trs[i + 1];
    tr.dataset.topic = t.topic;
    tr.classList.add('clickable');
    if (t.topic === topicView.name) tr.classList.add('selected');
    tr.addEventListener('click', () => openTopic(t.topic));
  });
}

const topicView = { name: null, ws: null, messages: [] };

/** The daemon keeps a topic's last 50 messages: the open topic's count, at least those seen. */
function keptOfOpenTopic(counted) {
  return Math.min(50, Math.max(counted, topicView.messages.length));
}

/** The topic's recent messages, then its own stream keeps the table live (one topic at a time). */
async function openTopic(name) {
  if (topicView.ws) topicView.ws.close();
  topicView.ws = null;
  topicView.name = name;
  topicView.messages = [];
  for (const tr of document.querySelectorAll('#topics tr')) tr.classList.toggle('selected', tr.dataset.topic === name);
  document.getElementById('topic-view').hidden = false;
  document.getElementById('topic-name').textContent = name;
  const live = document.getElementById('topic-live');
  live.textContent = '';
  try {
    const r = await api('GET', `/v1/bus/recent?topic=${encodeURIComponent(name)}`);
    if (topicView.name !== name) return;
    topicView.messages = r.messages;
  } catch (e) {
    live.textContent = e.message;
    if (e.status === 403) return; // the stream needs the same capability
  }
  drawTopicMessages();
  const ws = new WebSocket(wsUrl(`/v1/bus/stream?topic=${encodeURIComponent(name)}`));
  topicView.ws = ws;
  ws.onmessage = (ev) => {
    if (topicView.ws !== ws) return;
    const m = JSON.parse(ev.data);
    if (m.type === 'subscribed') {
      live.textContent = '(live)';
      loadCoord(); // the topic now has this page as a subscriber
    }
    if (m.type !== 'message') return;
    if (topicView.messages.some((x) => x.id === m.message.id)) return;
    topicView.messages.push(m.message);
    while (topicView.messages.length > 200) topicView.messages.shift();
    drawTopicMessages();
    // The daemon keeps this one too (at most 50 a topic): the topic's row counts it.
    const kept = document.querySelector(`#topics tr[data-topic="${CSS.escape(name)}"] td:nth-child(3)`);
    if (kept) kept.textContent = String(keptOfOpenTopic(Number(kept.textContent) + 1));
  };
  ws.onclose = () => { if (topicView.ws === ws) live.textContent = '(stream closed)'; };
}

function drawTopicMessages() {
  const newest = topicView.messages.slice().reverse();
  table('topic-messages', ['#', 'sent', 'from', 'payload'], newest.map((m) => [m.id,
    new Date(m.sent_at_ms).toLocaleTimeString(), m.from == null ? '' : `agent ${m.from}`,
    el('code', {}, JSON.stringify(m.payload).slice(0, 400))]));
}

const STATE_COLOURS = {
  queued: '#9aa3af', assigned: '#6fa8dc', running: '#e0c070', done: '#7fbf7f', failed: '#e07070', dead_lettered: '#b04040',
};

/** Tasks in columns by depth (a task sits right of every task it waits for), edges drawn. */
function drawDag(all) {
  const tasks = all.slice(-200);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const depth = new Map();
  const depthOf = (t, seen = new Set()) => {
    if (depth.has(t.id)) return depth.get(t.id);
    if (seen.has(t.id)) return 0;
    seen.add(t.id);
    const d = t.after.reduce((m, a) => (byId.has(a) ? Math.max(m, depthOf(byId.get(a), seen) + 1) : m), 0);
    depth.set(t.id, d);
    return d;
  };
  const columns = [];
  for (const t of tasks) (columns[depthOf(t)] ||= []).push(t);
  const W = 170; const H = 40; const GX = 60; const GY = 14;
  const pos = new Map();
  columns.forEach((col, x) => col.forEach((t, y) => pos.set(t.id, { x: 10 + x * (W + GX), y: 10 + y * (H + GY) })));
  const width = 20 + columns.length * (W + GX);
  const height = 20 + Math.max(1, ...columns.map((c) => c.length)) * (H + GY);
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  const node = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  };
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  const defs = node('defs', {});
  const marker = node('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto' });
  marker.append(node('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#6c7480' }));
  defs.append(marker);
  svg.append(defs);
  for (const t of tasks) {
    for (const a of t.after) {
      const from = pos.get(a); const to = pos.get(t.id);
      if (!from || !to) continue;
      const x1 = from.x + W; const y1 = from.y + H / 2; const x2 = to.x; const y2 = to.y + H / 2;
      svg.append(node('path', { class: 'edge', d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` }));
    }
  }
  for (const t of tasks) {
    const p = pos.get(t.id);
    const g = node('g', { class: 'node', 'data-task': t.id, 'data-state': t.state });
    g.append(node('rect', { x: p.x, y: p.y, width: W, height: H, fill: STATE_COLOURS[t.state] || '#ccc' }));
    g.append(node('text', { x: p.x + 6, y: p.y + 15 }, `#${t.id} ${t.state}${t.attempts > 1 ? ` (try ${t.attempts})` : ''}`));
    g.append(node('text', { x: p.x + 6, y: p.y + 31 }, t.description.slice(0, 26)));
    g.append(node('title', {}, `${t.description}\nneeds: ${t.needs.join(' ')}\nafter: ${t.after.join(' ')}`));
    svg.append(g);
  }
  document.getElementById('dag').replaceChildren(tasks.length ? svg : el('p', { class: 'dim' }, 'No tasks.'));
}

/** Coordinator events keep this panel current (each reloads it, at most every 500 ms) and the
 * session list's states live. */
function followSystem() {
  const ws = new WebSocket(wsUrl('/v1/bus/stream?topic=%24system'));
  let pending = null;
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type !== 'message') return;
    const events = document.getElementById('events');
    const p = m.message.payload || {};
    if (p.event === 'session_state_changed' && p.session) {
      // The session list's rows change state live between its polls.
      liveUpdate(p.session, { state: p.state });
      return;
    }
    events.prepend(el('li', {}, `${new Date(m.message.sent_at_ms).toLocaleTimeString()} ${p.event || p.kind || ''} ${JSON.stringify(p).slice(0, 160)}`));
    while (events.children.length > 100) events.lastChild.remove();
    if (!pending) pending = setTimeout(() => { pending = null; loadCoord(); }, 500);
  };
  ws.onclose = () => setTimeout(followSystem, 3000);
}

tabHooks.coord = loadCoord;
maySubscribe().then((yes) => { if (yes) followSystem(); });

// ---- audit --------------------------------------------------------------------------------

async function loadAudit() {
  const v = document.getElementById('verify');
  try {
    const r = await api('GET', '/v1/audit/verify');
    v.className = r.intact ? 'intact' : 'damaged';
    v.textContent = r.intact
      ? `audit verify: intact, ${r.entries} entries in ${r.files} file(s), signed head at #${r.head_seq}${r.breaks.length ? `, ${r.breaks.length} recorded break(s)` : ''}`
      : `audit verify: DAMAGED: ${r.error}`;
  } catch (e) {
    v.className = 'damaged';
    v.textContent = `audit verify: ${e.message}`;
  }
  const q = new URLSearchParams();
  const principal = document.getElementById('audit-principal').value.trim();
  const session = document.getElementById('audit-session').value.trim();
  const risk = document.getElementById('audit-risk').value;
  if (principal) q.set('principal', principal);
  if (session) q.set('session', session);
  if (risk && risk !== '0') q.set('min_risk', risk);
  q.set('limit', '500');
  try {
    const r = await api('GET', `/v1/audit?${q}`);
    document.getElementById('audit-count').textContent = `${r.entries.length} of ${r.matched} matching entries (newest first)`;
    table('audit', ['#', 'time', 'principal', 'session', 'action', 'detail', 'result', 'risk'],
      r.entries.slice().reverse().map((e) => [e.seq, e.time, e.principal, e.session || '', e.action,
        e.sealed ? sealedDetail(e) : e.detail, e.result, e.risk]));
  } catch (e) {
    document.getElementById('audit-count').textContent = e.message;
  }
}
/** A sealed detail: a button that opens it with audit.open (needs audit:open; the opening is
 * itself recorded in the log). */
function sealedDetail(e) {
  const cell = el('span', { class: 'sealed', 'data-seq': e.seq });
  const open = el('button', { class: 'open-sealed', title: 'audit.open: needs audit:open; the opening is audited', onclick: async () => {
    try {
      const r = await api('POST', '/v1/audit/open', { seq: e.seq });
      cell.replaceChildren(el('span', { class: 'opened' }, r.detail));
    } catch (err) {
      cell.replaceChildren(el('span', { class: 'dim' }, `sealed; ${err.message}`));
    }
  } }, 'open');
  cell.append(el('span', { class: 'dim' }, 'sealed '), open);
  return cell;
}

tabHooks.audit = loadAudit;
document.getElementById('audit-apply').addEventListener('click', loadAudit);

// ---- metrics -------------------------------------------------------------------------------

const series = { t: [], rate: [], fail: [], p50: [], p90: [], busy: [], idle: [] };
let previous = null;

async function pollStats() {
  let s;
  try {
    s = await api('GET', '/v1/stats');
  } catch (e) {
    if (e.status === 403) document.getElementById('metric-figures').textContent = `metrics: ${e.message}`;
    return;
  }
  const now = Date.now();
  const execs = Object.values(s.execs).reduce((a, b) => a + b, 0);
  const failed = s.execs.nonzero + s.execs.timeout + s.execs.error;
  if (previous) {
    const dt = (now - previous.now) / 1000;
    push('rate', Math.max(0, (execs - previous.execs) / dt));
    push('fail', Math.max(0, (failed - previous.failed) / dt));
    push('p50', s.exec_duration.p50_ms || 0);
    push('p90', s.exec_duration.p90_ms || 0);
    push('busy', s.sessions.busy);
    push('idle', s.sessions.idle);
  }
  previous = { now, execs, failed };
  document.getElementById('metric-figures').replaceChildren(
    figure('sessions', s.sessions.idle + s.sessions.busy + s.sessions.starting),
    figure('execs', execs), figure('failed', failed),
    figure('tokens saved', s.tokens.raw ? `${Math.round(100 * (1 - s.tokens.returned / s.tokens.raw))}%` : '–'),
    figure('denied', s.capability_denials), figure('uptime', human(s.uptime_ms)),
    figure('rss', `${Math.round(s.process.rss_bytes / 1048576)} MiB`));
  if (document.getElementById('tab-metrics').classList.contains('active')) {
    chart('chart-rate', [series.rate], ['#6fa8dc']);
    chart('chart-fail', [series.fail], ['#e07070']);
    chart('chart-latency', [series.p50, series.p90], ['#7fbf7f', '#e0c070']);
    chart('chart-sessions', [series.busy, series.idle], ['#e0c070', '#7fbf7f']);
    table('methods', ['method', 'ok', 'denied', 'error', 'p50 ms', 'p99 ms'],
      s.requests.filter((m) => m.ok + m.denied + m.error > 0).map((m) => [m.method, m.ok, m.denied, m.error,
        m.duration && m.duration.p50_ms != null ? m.duration.p50_ms.toFixed(2) : '', m.duration && m.duration.p99_ms != null ? m.duration.p99_ms.toFixed(2) : '']));
  }
}

function push(key, v) {
  series[key].push(v);
  if (series[key].length > 180) series[key].shift();
}

function figure(label, value) { return el('div', {}, el('b', {}, value), label); }

/** Lines on a canvas, scaled to the largest value shown. */
function chart(id, lines, colours) {
  const c = document.getElementById(id);
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1e-9, ...lines.flat());
  g.fillStyle = '#7b8494';
  g.font = '10px sans-serif';
  g.fillText(max.toFixed(max < 10 ? 2 : 0), 4, 12);
  // A few samples spread over a 30-sample width at first; 180 (6 minutes) once there are.
  const span = Math.max(30, ...lines.map((l) => l.length)) - 1;
  lines.forEach((line, i) => {
    g.strokeStyle = colours[i];
    g.beginPath();
    line.forEach((v, x) => {
      const px = (x / span) * (c.width - 8) + 4;
      const py = c.height - 6 - (v / max) * (c.height - 20);
      if (x === 0) g.moveTo(px, py); else g.lineTo(px, py);
    });
    g.stroke();
  });
}

// Polled from the first time the tab is shown (the charts keep their history from then on), so
// a dashboard used for its other panels neither loads the figures nor asks for daemon:status.
let statsTimer = null;
tabHooks.metrics = () => {
  pollStats();
  statsTimer ||= setInterval(pollStats, 2000);
};
