// The alerts and decisions panels. Alerts come from GET /v1/alerts (alerts.list, daemon:status)
// and arrive live: each message on the `$alerts` bus stream fetches the alerts after the last
// one shown (so what is drawn is always what alerts.list lets this principal read, command
// included); only while that stream is down are they polled. Decisions: decision.stats (success
// rate by agent and by kind, calibration bins drawn as a reliability diagram, Brier score) and
// decision.list, a row opening decision.show; reloaded every 3 s while the tab is shown.
'use strict';

// ---- alerts ---------------------------------------------------------------------------------

const alerts = { byId: new Map(), last: 0, unseen: 0, streaming: false, loading: null, refused: null };

function tabShown(name) {
  return document.getElementById(`tab-${name}`).classList.contains('active');
}

function alertQuery(after) {
  const q = new URLSearchParams({ limit: '500' });
  if (after) q.set('after', String(after));
  return `/v1/alerts?${q}`;
}

/** Fetches the alerts after the newest shown (all of them the first time); one load at a time. */
function fetchAlerts() {
  alerts.loading ||= (async () => {
    try {
      const r = await api('GET', alertQuery(alerts.last));
      alerts.refused = null;
      let fresh = 0;
      for (const a of r.alerts) {
        if (!alerts.byId.has(a.id)) fresh += 1;
        alerts.byId.set(a.id, a);
        alerts.last = Math.max(alerts.last, a.id);
      }
      if (fresh && alerts.drawn && !tabShown('alerts')) alerts.unseen += fresh;
      alerts.drawn = true;
      alerts.total = r.total;
    } catch (e) {
      alerts.refused = e.hint ? `${e.message} (${e.hint})` : e.message;
    } finally {
      alerts.loading = null;
    }
    drawAlerts();
  })();
  return alerts.loading;
}

function drawAlerts() {
  const badge = document.getElementById('alert-badge');
  badge.hidden = !alerts.unseen;
  badge.textContent = alerts.unseen ? String(alerts.unseen) : '';
  const count = document.getElementById('alert-count');
  if (alerts.refused) {
    count.textContent = `alerts: ${alerts.refused}`;
    document.getElementById('alerts').replaceChildren();
    return;
  }
  const rule = document.getElementById('alert-rule').value;
  const shown = [...alerts.byId.values()].filter((a) => !rule || a.rule === rule).sort((a, b) => b.id - a.id);
  count.textContent = `${shown.length} shown, ${alerts.total ?? 0} raised since the daemon started`;
  table('alerts', ['#', 'when', 'rule', 'session', 'caller', 'risk', 'message', 'command'],
    shown.map((a) => [a.id, new Date(a.time_ms).toLocaleString(), a.rule, a.session || '', a.caller || '',
      a.risk, a.message, a.command || '']));
  const rows = document.querySelectorAll('#alerts tr');
  shown.forEach((a, i) => {
    const row = rows[i + 1];
    if (!row) return;
    row.dataset.alert = a.id;
    row.dataset.rule = a.rule;
    row.classList.add(a.risk >= 50 ? 'risk-high' : a.risk >= 30 ? 'risk-mid' : 'risk-low');
  });
}

/** The `$alerts` topic: each message means new alerts to fetch. */
function followAlerts() {
  const ws = new WebSocket(wsUrl('/v1/bus/stream?topic=%24alerts'));
  const live = document.getElementById('alert-live');
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === 'subscribed') {
      alerts.streaming = true;
      live.textContent = 'live ($alerts)';
      fetchAlerts();
    } else if (m.type === 'message') {
      fetchAlerts();
    }
  };
  ws.onclose = () => {
    alerts.streaming = false;
    live.textContent = 'polled every 5 s (the $alerts stream is closed)';
    setTimeout(followAlerts, 5000);
  };
}

tabHooks.alerts = () => {
  alerts.unseen = 0;
  fetchAlerts();
};
document.getElementById('alert-rule').addEventListener('input', drawAlerts);
fetchAlerts();
maySubscribe().then((yes) => {
  if (yes) followAlerts();
  else document.getElementById('alert-live').textContent = 'polled every 5 s (following $alerts needs bus:subscribe)';
});
// A refused alerts.list is not asked again (api() remembers), so this polls nothing then.
setInterval(() => { if (!alerts.streaming) fetchAlerts(); }, 5000);

// ---- decisions ------------------------------------------------------------------------------

const decisions = { open: null };

function pct(x) { return x == null ? '–' : `${Math.round(100 * x)}%`; }

async function loadDecisions() {
  let stats;
  let list;
  try {
    [stats, list] = await Promise.all([api('GET', '/v1/decisions/stats'), api('GET', '/v1/decisions?limit=200')]);
  } catch (e) {
    document.getElementById('decision-count').textContent = `decisions: ${e.message}`;
    return;
  }
  document.getElementById('decision-figures').replaceChildren(
    figure('decisions', stats.decisions), figure('decided', stats.decided),
    figure('Brier score', stats.brier == null ? '–' : stats.brier.toFixed(3)));
  table('decision-agents', ['agent', 'decisions', 'success', 'failure', 'unknown', 'success rate', 'mean confidence'],
    stats.by_agent.map((a) => [a.agent, a.decisions, a.success, a.failure, a.unknown, pct(a.success_rate), pct(a.mean_confidence)]));
  table('decision-kinds', ['kind', 'decisions', 'success', 'failure', 'unknown', 'success rate', 'mean confidence'],
    (stats.by_kind || []).map((k) => [k.kind, k.decisions, k.success, k.failure, k.unknown, pct(k.success_rate), pct(k.mean_confidence)]));
  table('decision-bins', ['confidence', 'decided', 'mean confidence', 'succeeded'],
    stats.bins.map((b) => [`${b.lower.toFixed(1)}–${b.upper.toFixed(1)}`, b.count, pct(b.mean_confidence), pct(b.success_rate)]));
  drawCalibration(stats.bins);
  const rows = list.decisions.slice().reverse();
  document.getElementById('decision-count').textContent = `${rows.length} newest first`;
  table('decisions', ['#', 'when', 'agent', 'session / task', 'kind', 'decision', 'confidence', 'outcome', 'execs (failed)'],
    rows.map((d) => [d.id, new Date(d.created_ms).toLocaleString(), d.agent || '(owner)', d.session || d.task || '',
      d.kind || '', d.decision, pct(d.confidence), `${d.outcome}${d.explicit ? ' (set by hand)' : ''}`, `${d.execs} (${d.failed_execs})`]));
  const trs = document.querySelectorAll('#decisions tr');
  rows.forEach((d, i) => {
    const tr = trs[i + 1];
    if (!tr) return;
    tr.dataset.decision = d.id;
    tr.dataset.outcome = d.outcome;
    tr.classList.add('clickable');
    if (d.id === decisions.open) tr.classList.add('selected');
    tr.addEventListener('click', () => showDecision(d.id));
  });
  if (decisions.open != null) showDecision(decisions.open);
}

async function showDecision(id) {
  decisions.open = id;
  const box = document.getElementById('decision-detail');
  box.hidden = false;
  try {
    const d = await api('GET', `/v1/decisions/show?id=${id}`);
    box.replaceChildren(
      el('h3', {}, `Decision #${d.id}: ${d.decision}${d.kind ? ` (${d.kind})` : ''}`),
      el('p', {}, el('b', {}, 'rationale: '), d.rationale || '(none given)'),
      el('p', {}, el('b', {}, 'alternatives: '), d.alternatives.length ? d.alternatives.join('; ') : '(none)'),
      el('p', {}, el('b', {}, 'confidence: '), pct(d.confidence), el('b', {}, '  outcome: '),
        `${d.outcome}${d.explicit ? ' (set by hand)' : ' (follows its last linked exec)'}`,
        el('b', {}, '  execs: '), `${d.execs}, ${d.failed_execs} failed`),
      d.note ? el('p', {}, el('b', {}, 'note: '), d.note) : '');
  } catch (e) {
    box.replaceChildren(el('p', { class: 'dim' }, `decision #${id}: ${e.message}`));
  }
}

/** Reliability diagram: each bin's mean confidence (x) against the share that succeeded (y),
 * the dot's area by its count; the diagonal is perfect calibration. */
function drawCalibration(bins) {
  const c = document.getElementById('chart-calibration');
  const g = c.getContext('2d');
  const pad = 28;
  const w = c.width - 2 * pad;
  const h = c.height - 2 * pad;
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = '#3a3f48';
  g.strokeRect(pad, pad, w, h);
  g.beginPath();
  g.moveTo(pad, pad + h);
  g.lineTo(pad + w, pad);
  g.stroke();
  g.fillStyle = '#7b8494';
  g.font = '10px sans-serif';
  g.fillText('stated confidence →', pad + w / 2 - 40, c.height - 8);
  g.fillText('succeeded ↑', 2, pad - 10);
  g.fillText('0', pad - 10, pad + h + 10);
  g.fillText('1', pad + w - 2, pad + h + 12);
  g.fillText('1', pad - 10, pad + 4);
  const most = Math.max(1, ...bins.map((b) => b.count));
  for (const b of bins) {
    const x = pad + b.mean_confidence * w;
    const y = pad + (1 - b.success_rate) * h;
    g.fillStyle = '#6fa8dc';
    g.beginPath();
    g.arc(x, y, 3 + 9 * Math.sqrt(b.count / most), 0, 2 * Math.PI);
    g.fill();
  }
}

tabHooks.decisions = loadDecisions;
setInterval(() => { if (tabShown('decisions')) loadDecisions(); }, 3000);
