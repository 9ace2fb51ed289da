// The session view: xterm.js showing the live screen and its scrollback over the session's
// WebSocket stream (one stream: the selected session's), read-only until "Take over", which
// sends keystrokes with POST /v1/sessions/NAME/write (the daemon checks session:send:NAME and
// audits it); and the per-command timeline from GET /v1/sessions/NAME/history. A session on
// another node of a cluster has no stream here (streams are not forwarded): its screen is
// captured every second instead (capture, write and history follow the session to its node).
'use strict';

// xterm.js (488 KB) is loaded when the first session is opened, not with the page: the page
// loads faster, and a dashboard used for its other panels never parses it.
let term = null;
let fitAddon = null;
let xtermReady = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(s);
  });
}

function ensureTerminal() {
  xtermReady ||= loadScript('/ui/vendor/xterm.js')
    .then(() => loadScript('/ui/vendor/addon-fit.js'))
    .then(() => {
      term = new Terminal({
        disableStdin: true,
        scrollback: 5000,
        fontSize: 13,
        fontFamily: 'DejaVu Sans Mono, monospace',
        theme: { background: '#0e1013' },
      });
      fitAddon = new FitAddon.FitAddon();
      term.loadAddon(fitAddon);
      term.open(document.getElementById('terminal'));
      term.onData(typed);
    });
  return xtermReady;
}

const view = { name: null, ws: null, takeover: false, lastFinished: null, remote: null };

function setNote(text) { document.getElementById('view-note').textContent = text || ''; }

async function selectSession(name) {
  if (view.name === name) return;
  if (view.ws) view.ws.close();
  view.ws = null;
  clearInterval(view.remote);
  view.remote = null;
  view.name = name;
  list.selected = name;
  drawRows();
  document.getElementById('view-empty').hidden = true;
  document.getElementById('view').hidden = false;
  document.getElementById('view-name').textContent = name;
  setNote('');
  try {
    await ensureTerminal();
  } catch (e) {
    setNote(e.message);
    return;
  }
  if (view.name !== name) return;
  setTakeover(false);
  term.reset();
  timeline.total = -1;
  const row = list.all.find((s) => s.name === name);
  if (row && row.remote) followRemote(name, row.node);
  else openStream(name);
  loadTimeline(name);
}

/** A session of another node: its screen and scrollback captured every second, redrawn when
 * they change. */
function followRemote(name, node) {
  setState('remote');
  let last = null;
  const draw = async () => {
    try {
      const cap = await api('GET', `/v1/sessions/${encodeURIComponent(name)}/capture?scrollback=500&ansi=true`);
      if (view.name !== name) return;
      // The screen padded to its rows, so the view's last rows are the screen and the
      // cursor's row counts from its top.
      const screen = cap.lines.slice(cap.scrollback_lines);
      while (screen.length < cap.size.rows) screen.push('');
      const text = cap.lines.slice(0, cap.scrollback_lines).concat(screen).join('\r\n');
      if (text === last) return;
      last = text;
      // The screen changed: a command may have finished on the other node.
      loadTimeline(name, true);
      term.reset();
      term.resize(cap.size.cols, cap.size.rows);
      term.write(`${text}\x1b[${cap.cursor_row + 1};${cap.cursor_col + 1}H`);
    } catch (e) {
      if (view.name === name) setNote(`on node ${node}: ${e.message}`);
    }
  };
  setNote(`on node ${node}: captured every second (live streams are not forwarded between nodes)`);
  draw();
  view.remote = setInterval(draw, 1000);
}

function openStream(name) {
  const ws = new WebSocket(wsUrl(`/v1/sessions/${encodeURIComponent(name)}/stream`));
  view.ws = ws;
  const queued = [];
  let ready = false;

  const handle = (m) => {
    if (m.type === 'output') term.write(m.data);
    else if (m.type === 'state') { setState(m.state); liveUpdate(name, { state: m.state }); }
    else if (m.type === 'command' && m.phase === 'finished') {
      liveUpdate(name, { exit_code: m.exit_code });
      loadTimeline(name, true);
    } else if (m.type === 'closed') { setState('exited'); setNote('the program exited'); }
  };
  ws.onmessage = async (ev) => {
    if (view.ws !== ws) return;
    const m = JSON.parse(ev.data);
    if (m.type !== 'subscribed') {
      if (ready) handle(m); else queued.push(m);
      return;
    }

    term.resize(m.size.cols, m.size.rows);
    await drawScrollback(name, m.size.rows);
    term.write(m.screen_ansi || '');
    ready = true;
    for (const q of queued) handle(q);
    queued.length = 0;
  };
  ws.onclose = () => { if (view.ws === ws) setNote('stream closed'); };
}

/** The scrollback above the screen, pushed into xterm's history before the screen's redraw. */
async function drawScrollback(name, rows) {
  try {
    const cap = await api('GET', `/v1/sessions/${encodeURIComponent(name)}/capture?scrollback=2000&ansi=true`);
    const lines = cap.lines.slice(0, cap.scrollback_lines);
    if (lines.length) term.write(`${lines.join('\r\n')}\r\n${'\r\n'.repeat(rows)}`);
  } catch (e) {
    setNote(`scrollback: ${e.message}`);
  }
}

function setState(state) {
  const s = document.getElementById('view-state');
  s.textContent = state;
  s.className = `state ${state}`;
}

// ---- take over ------------------------------------------------------------------------------

const encoder = new TextEncoder();
function b64(text) {
  let bin = '';
  for (const byte of encoder.encode(text)) bin += String.fromCharCode(byte);
  return btoa(bin);
}

function setTakeover(on) {
  view.takeover = on;
  term.options.disableStdin = !on;
  document.getElementById('takeover').classList.toggle('on', on);
  document.getElementById('takeover').textContent = on ? 'Release' : 'Take over';
  document.getElementById('terminal').classList.toggle('takeover', on);
  document.getElementById('fit').hidden = !on;
  if (on) term.focus();
}

// Keystrokes go out in order, one request at a time.
let sending = Promise.resolve();
function typed(data) {
  if (!view.takeover || !view.name) return;
  const name = view.name;
  // Keys queued behind a refusal are not sent: take-over is off by then.
  sending = sending.then(() => view.takeover && view.name === name
    && api('POST', `/v1/sessions/${encodeURIComponent(name)}/write`, { data_b64: b64(data) }))
    .catch((e) => {
      setTakeover(false);
      setNote(`take over refused: ${e.message}`);
    });
}

document.getElementById('takeover').addEventListener('click', () => {
  if (!term) return;
  setNote('');
  setTakeover(!view.takeover);
});

document.getElementById('fit').addEventListener('click', async () => {
  const dims = fitAddon && fitAddon.proposeDimensions();
  if (!dims || !view.name) return;
  try {
    await api('POST', `/v1/sessions/${encodeURIComponent(view.name)}/resize`, { size: { cols: dims.cols, rows: dims.rows } });
    term.resize(dims.cols, dims.rows);
  } catch (e) {
    setNote(`resize refused: ${e.message}`);
  }
});

// ---- the command timeline -----------------------------------------------------------------

// One load at a time; a load asked for meanwhile runs after it. `expectMore`: a command just
// finished, and its record may reach the store a moment after the stream said so: look again
// (five times at most) until the history grows.
const timeline = { loading: false, again: null, total: -1, retries: 0 };
async function loadTimeline(name, expectMore) {
  if (expectMore) timeline.retries = 5;
  if (timeline.loading) { timeline.again = name; return; }
  timeline.loading = true;
  const box = document.getElementById('timeline');
  try {
    const h = await api('GET', `/v1/sessions/${encodeURIComponent(name)}/history?limit=50`);
    if (view.name !== name) return;
    const grew = h.total > timeline.total;
    const changed = h.total !== timeline.total;
    timeline.total = h.total;
    // Redrawn only when the history changed, so entries opened by hand stay open.
    if (changed) box.replaceChildren(...h.execs.slice().reverse().map((x) => execEntry(name, x)));
    if (!h.execs.length) box.replaceChildren(el('p', { class: 'dim' }, 'No command run through exec yet.'));
    if (grew) timeline.retries = 0;
  } catch (e) {
    timeline.retries = 0;
    if (view.name === name) box.replaceChildren(el('p', { class: 'dim' }, `No timeline: ${e.message}`));
  } finally {
    timeline.loading = false;
  }
  if (timeline.again) {
    const next = timeline.again;
    timeline.again = null;
    loadTimeline(next);
  } else if (timeline.retries > 0) {
    timeline.retries -= 1;
    setTimeout(() => { if (view.name === name) loadTimeline(name); }, 400);
  }
}

function execEntry(name, x) {
  const ok = x.exit_code === 0;
  const exit = x.exit_code == null ? 'running' : `exit ${x.exit_code}`;
  const c = x.compact;
  const tokens = c ? `${c.raw_tokens} → ${c.compact_tokens} tokens${c.raw_tokens ? ` (saved ${Math.max(0, Math.round(100 * (1 - c.compact_tokens / c.raw_tokens)))}%)` : ''}` : '';
  const body = el('div', {});
  const full = el('button', { onclick: async () => {
    try {
      const len = x.output_end - x.output_start;
      const r = await api('GET', `/v1/sessions/${encodeURIComponent(name)}/read?since=${x.output_start}&max_bytes=${Math.max(1, len)}`);
      body.replaceChildren(el('div', { class: 'dim' }, `full output, bytes ${r.start}–${r.end}${r.dropped ? ` (${r.dropped} dropped)` : ''}`), el('pre', {}, r.data));
    } catch (e) {
      body.replaceChildren(el('p', { class: 'dim' }, e.message));
    }
  } }, 'full output');
  body.append(el('pre', {}, c ? c.text : '(output no longer in the log)'), full);
  return el('details', { class: 'exec' },
    el('summary', {},
      el('span', { class: ok ? 'exit-ok' : 'exit-bad' }, exit),
      el('code', { title: x.command }, x.command),
      el('span', { class: 'dim' }, human(x.duration_ms)),
      el('span', { class: 'dim' }, tokens)),
    body);
}

// The list's poll says a new exec finished in the selected session (one typed elsewhere).
function onListPolled(s) {
  if (!s || s.name !== view.name) return;
  const finished = s.last_command && s.last_command.finished_ms;
  if (finished && finished !== view.lastFinished) {
    view.lastFinished = finished;
    loadTimeline(s.name);
  }
  if (!list.live[s.name]) setState(s.state);
}
