// One host: summary, "Check now" (POST /api/hosts/{host}/check: the fresh report's time, or
// since when it is offline), "Why it was offline" (the agent's own uplink diagnosis carried by
// the snapshots it spooled while it could not reach the collector, and the failing checks of
// its latest connectivity probe), "Revoke" (admins only, after a confirm dialog: POST
// /api/hosts/{host}/revoke; the server refuses everyone else), labels (editable: PUT /api/hosts/{host}/labels), disks with usage
// bars and a usage-history chart with the forecast line (GET /api/hosts/{host}/disk-history),
// conditions about to open, patches (pending list, reboot), antivirus, connectivity checks,
// system facts, probe status and the host's ticket history. Live: events of this host
// refresh the host and its tickets.

import {
  api, el, setApp, setTitle, start, replace, errorLine, onTicketEvent, priorityBadge, stateBadge,
  facts, fmtTime, fmtBytes, fmtDuration, ago, can, table, ticketLink, debounce,
} from './common.js';
import { usageChart } from './chart.js';

const name = decodeURIComponent(location.pathname.split('/').pop());
const summary = el('section', { class: 'card', id: 'host-summary' });
const check = el('section', { class: 'card no-print', id: 'host-check' });
const offline = el('section', { class: 'card', id: 'host-offline', hidden: true });
const revoke = el('section', { class: 'card no-print', id: 'host-revoke', hidden: true });
const revokeLine = el('div', { class: 'status-line', id: 'revoke-result', 'aria-live': 'polite' });
// Silent this long (or "offline" to check now) counts as offline, as on the fleet page.
const SILENT_MS = 30 * 60 * 1000;
// How long after a spell of failed uploads ended the host page still explains it.
const RECENT_SPELL_MS = 7 * 24 * 3600 * 1000;
let offlineSaid = false;
const labels = el('section', { class: 'card', id: 'host-labels' });
const disks = el('section', { class: 'card', id: 'host-disks' });
const pending = el('section', { class: 'card', id: 'host-pending' });
const patches = el('section', { class: 'card', id: 'host-patches' });
const antivirus = el('section', { class: 'card', id: 'host-antivirus' });
const connectivity = el('section', { class: 'card', id: 'host-connectivity' });
const system = el('section', { class: 'card', id: 'host-system' });
const history = el('section', { id: 'host-tickets' });
let host = null;
let labelsDrawn = false;

function yes(b) {
  return b ? 'yes' : 'no';
}

function bar(percent) {
  const span = el('span');
  span.style.width = Math.max(0, Math.min(100, percent)).toFixed(1) + '%';
  return el('div', {
    class: 'bar' + (percent >= 95 ? ' full' : percent >= 85 ? ' high' : ''),
    role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': percent.toFixed(0),
    'aria-label': 'used ' + percent.toFixed(0) + '%',
  }, span);
}

function drawSummary(h) {
  setTitle(h.hostname || h.agent_id);
  replace(summary, facts([
    ['Agent id', h.agent_id],
    ['OS', h.os],
    ['Agent version', h.agent_version],
    ['Last seen', el('span', {
      id: 'host-last-seen', 'data-ms': h.last_seen_at_ms || 0,
      text: h.last_seen_at_ms ? fmtTime(h.last_seen_at_ms) + ' (' + ago(h.last_seen_at_ms) + ')' : 'never',
    })],
    ['Clock skew', (h.clock_skew_ms >= 0 ? '+' : '−') + fmtDuration(h.clock_skew_ms)],
    ['Enrolled', fmtTime(h.enrolled_at_ms)],
    ['Certificate', h.revoked ? 'revoked' : 'valid'],
    ['Snapshots', h.snapshots_stored + ' stored, ' + h.rejected_snapshots + ' rejected, ' + h.dropped_snapshots + ' dropped'],
    ['Same machine as', h.same_machine_as.length ? h.same_machine_as.join(', ') : null],
    ['Uplink', h.uplink ? h.uplink.consecutive_failures + ' failures since ' + fmtTime(h.uplink.failing_since_ms) + ': ' + h.uplink.last_error : null],
  ]));
}

function drawCheck() {
  const line = el('div', { class: 'status-line', id: 'check-result', 'aria-live': 'polite' });
  const button = el('button', { type: 'button', id: 'check-now', disabled: !can('technician'), text: 'Check now' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    replace(line, 'Asking the agent…');
    try {
      const r = await api('POST', '/api/hosts/' + encodeURIComponent(host.agent_id) + '/check');
      line.dataset.status = r.status;
      offlineSaid = r.status === 'offline';
      if (r.status === 'done') replace(line, 'Fresh facts taken ' + fmtTime(r.snapshot_at_ms) + ' (' + r.seconds.toFixed(1) + ' s).');
      else if (r.status === 'offline') replace(line, 'Offline since ' + (r.last_seen_at_ms ? fmtTime(r.last_seen_at_ms) + ' (' + ago(r.last_seen_at_ms) + ')' : 'it enrolled') + '.');
      else replace(line, r.status + (r.detail ? ': ' + r.detail : ''));
      load();
    } catch (e) {
      replace(line, errorLine(e));
    } finally {
      button.disabled = !can('technician');
    }
  });
  replace(check, el('h2', { text: 'Check now' }),
    el('p', { class: 'muted', text: 'The agent runs every probe and reports at once.' }), button, line);
}

// The checks of a connectivity probe as rows: kind, target, ok, millis, failure, detail.
function connectivityChecks(c) {
  const checks = [];
  if (!c) return checks;
  if (c.gateway) checks.push({ kind: 'gateway', target: c.gateway.address + (c.gateway.interface ? ' (' + c.gateway.interface + ')' : ''), ok: c.gateway.present && c.gateway.reachable, millis: null, failure: c.gateway.present ? (c.gateway.reachable ? '' : 'not reachable') : 'no default gateway' });
  for (const d of c.dns) checks.push({ kind: 'dns', ...d });
  for (const t of c.tcp) checks.push({ kind: 'tcp', ...t });
  for (const s of c.https) checks.push({ kind: 'https', target: s.url, ...s, failure: s.failure || (s.certificate_days_left ? 'certificate: ' + s.certificate_days_left + ' days left' : '') });
  if (c.collector) checks.push({ kind: 'collector', ...c.collector });
  for (const v of c.vpn) checks.push({ kind: 'vpn', target: v.name, ok: v.up, millis: null, failure: v.up ? '' : 'down' });
  return checks;
}

// "Why it was offline": shown while the latest snapshot carries the agent's uplink diagnosis
// (taken while the agent could not reach the collector, flushed from its spool later), for a
// week after the host's last spell of failed uploads ended (the collector keeps the last
// diagnosis and when the first snapshot without one came), or when the host is offline now
// (silent for 30 minutes, or "offline" to check now). Built from the diagnosis and the latest
// failing connectivity checks; all text as text.
function drawOffline(h) {
  const now = h.uplink && h.uplink.consecutive_failures > 0 ? h.uplink : null;
  const spell = h.last_uplink_failure;
  const recovered = h.uplink_recovered_at_ms;
  const past = !now && spell && recovered && Date.now() - recovered < RECENT_SPELL_MS ? spell : null;
  const u = now || past;
  const silent = !h.last_seen_at_ms || Date.now() - h.last_seen_at_ms > SILENT_MS || offlineSaid;
  if (!u && !silent) {
    offline.hidden = true;
    replace(offline);
    return;
  }
  const failing = connectivityChecks(h.connectivity).filter((k) => !k.ok);
  const items = [];
  if (u) {
    items.push(el('li', { 'data-kind': 'uplink' },
      'The agent could not reach the collector: ' + u.consecutive_failures + ' failed uploads since ' + fmtTime(u.failing_since_ms) +
      (u.last_code ? ' (' + u.last_code + ')' : '') + '.', u.last_error ? [' Last error: ', el('code', { text: u.last_error })] : null));
    if (past) {
      items.push(el('li', { 'data-kind': 'recovered', id: 'offline-recovered' },
        'It reached the collector again at ' + fmtTime(recovered) + ', after ' +
        fmtDuration(recovered - past.failing_since_ms) + ' (' + ago(recovered) + ').'));
    }
  }
  for (const k of failing) {
    items.push(el('li', { 'data-kind': k.kind },
      k.kind + ' check of ', el('code', { text: k.target || '—' }), ' failed',
      [k.failure, k.detail].filter(Boolean).length ? ': ' + [k.failure, k.detail].filter(Boolean).join(' · ') : '', '.'));
  }
  offline.hidden = false;
  replace(offline, el('h2', { text: 'Why it was offline' }),
    silent ? el('p', { class: 'muted', text: 'Not reporting since ' + (h.last_seen_at_ms ? fmtTime(h.last_seen_at_ms) + ' (' + ago(h.last_seen_at_ms) + ')' : 'it enrolled') + '.' }) : null,
    items.length
      ? [el('p', { text: u ? 'From the snapshots the agent spooled while offline and sent later:' : 'From the latest connectivity checks it reported:' }), el('ul', { id: 'offline-reasons' }, items)]
      : el('p', { class: 'muted', text: 'No diagnosis yet: the agent sends its own with the snapshots it spooled meanwhile, once it reaches the collector again.' }));
}

// Revoke: admins only (the server refuses everyone else with 403), after a confirm dialog.
function drawRevoke(h) {
  if (!can('admin')) {
    revoke.hidden = true;
    return;
  }
  revoke.hidden = false;
  const button = el('button', { type: 'button', id: 'revoke-agent', class: 'danger', disabled: h.revoked, text: h.revoked ? 'Revoked' : 'Revoke agent' });
  button.addEventListener('click', async () => {
    const who = h.hostname || h.agent_id;
    if (!window.confirm('Revoke every certificate of ' + who + ' (' + h.agent_id + ')? Its reports are refused from now on; it must enroll again.')) return;
    button.disabled = true;
    try {
      const r = await api('POST', '/api/hosts/' + encodeURIComponent(h.agent_id) + '/revoke');
      revokeLine.dataset.status = 'revoked';
      replace(revokeLine, 'Revoked ' + r.revoked_certificates + ' certificate(s) of ' + r.agent_id + '.');
      load();
    } catch (e) {
      replace(revokeLine, errorLine(e));
      button.disabled = false;
    }
  });
  replace(revoke, el('h2', { text: 'Revoke' }),
    el('p', { class: 'muted', text: 'Revokes every certificate of this agent: its next report is refused.' }), button, revokeLine);
}

function drawLabels(h) {
  if (labelsDrawn) return;
  labelsDrawn = true;
  const input = el('input', { id: 'labels-input', 'aria-label': 'Labels, separated by spaces or commas', size: 40, value: h.labels.join(' ') });
  const line = el('div', { class: 'status-line', 'aria-live': 'polite' });
  const save = el('button', { type: 'submit', disabled: !can('technician'), text: 'Save labels' });
  const form = el('form', { class: 'actions' }, input, save);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const list = input.value.split(/[\s,]+/).filter(Boolean);
    try {
      host = await api('PUT', '/api/hosts/' + encodeURIComponent(host.agent_id) + '/labels', { labels: list });
      input.value = host.labels.join(' ');
      replace(line, 'Saved.');
    } catch (err) {
      replace(line, errorLine(err));
    }
  });
  replace(labels, el('h2', { text: 'Labels' }), form, line);
}

async function drawDisks(h) {
  let hist = null;
  try {
    hist = await api('GET', '/api/hosts/' + encodeURIComponent(h.agent_id) + '/disk-history?days=7');
  } catch (e) {
    hist = { mounts: [], since_ms: Date.now() - 7 * 86400000, error: e };
  }
  const now = Date.now();
  const rows = h.filesystems.map((fs) => {
    const m = hist.mounts.find((x) => x.mount_point === fs.mount_point) || { mount_point: fs.mount_point, samples: [] };
    return el('div', { class: 'disk', 'data-mount': fs.mount_point },
      el('h3', {}, el('code', { text: fs.mount_point }), ' ', el('span', { class: 'muted', text: fs.device + ' · ' + fs.fs_type })),
      el('div', { class: 'actions' }, bar(fs.used_percent),
        el('span', { class: 'num', text: fs.used_percent.toFixed(1) + '% · ' + fmtBytes(fs.used_bytes) + ' used, ' + fmtBytes(fs.available_bytes) + ' free' })),
      m.hours_to_full ? el('p', { class: 'error', text: 'Full in about ' + fmtDuration(m.hours_to_full * 3600000) + ' (' + fmtTime(m.full_at_ms) + ') at the last day\'s rate.' }) : null,
      usageChart(m, hist.since_ms, now));
  });
  replace(disks, el('h2', { text: 'Disks' }), hist.error ? errorLine(hist.error) : null,
    rows.length ? rows : el('p', { class: 'muted', text: 'No filesystems reported.' }));
}

function drawPending(h) {
  replace(pending, el('h2', { text: 'About to open' }), h.pending.length
    ? table([
      ['Rule', (p) => p.rule_id + (p.subject ? ' · ' + p.subject : '')],
      ['P', (p) => priorityBadge(p.priority)],
      ['Since', (p) => fmtTime(p.since_ms)],
      ['Opens', (p) => p.reports_to_go ? p.reports_to_go + ' more reports' : fmtTime(p.opens_at_ms)],
    ], h.pending)
    : el('p', { class: 'muted', text: 'Nothing pending.' }));
}

function drawPatches(h) {
  const p = h.patches;
  if (!p) {
    replace(patches, el('h2', { text: 'Patches' }), el('p', { class: 'muted', text: 'Not reported.' }));
    return;
  }
  replace(patches, el('h2', { text: 'Patches' }),
    facts([
      ['Package manager', p.package_manager],
      ['Pending', p.pending_count + ' (' + p.security_count + ' security)'],
      ['Reboot', p.reboot_required ? el('span', { class: 'error', text: 'required' + (p.reboot_reason ? ': ' + p.reboot_reason : '') }) : 'not required'],
      ['Last update', fmtTime(p.last_update_ms)],
      ['Held', String(p.held_count)],
    ]),
    p.updates.length ? table([
      ['Package', (u) => u.name],
      ['Installed', (u) => u.installed_version],
      ['Candidate', (u) => u.candidate_version],
      ['Security', (u) => (u.security ? el('span', { class: 'error', text: 'yes' }) : 'no')],
    ], p.updates) : null,
    p.updates_truncated ? el('p', { class: 'muted', text: 'List cut by the agent.' }) : null);
}

function drawAntivirus(h) {
  const a = h.antivirus;
  replace(antivirus, el('h2', { text: 'Antivirus' }), a && a.products.length
    ? table([
      ['Product', (p) => p.name + (p.vendor ? ' (' + p.vendor + ')' : '')],
      ['Running', (p) => yes(p.running)],
      ['Real-time', (p) => yes(p.realtime_protection)],
      ['Definitions', (p) => (p.definitions_version || '—') + ' · ' + fmtTime(p.definitions_updated_ms)],
      ['Engine', (p) => p.engine_version || '—'],
    ], a.products)
    : el('p', { class: 'muted', text: a ? 'No product found.' : 'Not reported.' }));
}

function drawConnectivity(h) {
  const c = h.connectivity;
  if (!c) {
    replace(connectivity, el('h2', { text: 'Connectivity' }), el('p', { class: 'muted', text: 'Not reported.' }));
    return;
  }
  const checks = connectivityChecks(c);
  replace(connectivity, el('h2', { text: 'Connectivity' }), checks.length ? table([
    ['Check', (k) => k.kind],
    ['Target', (k) => k.target],
    ['OK', (k) => (k.ok ? 'yes' : el('span', { class: 'error', text: 'no' }))],
    ['Time', (k) => (k.millis === null || k.millis === undefined ? '—' : k.millis.toFixed(0) + ' ms'), 'num'],
    ['Detail', (k) => [k.failure, k.detail].filter(Boolean).join(' · ') || '—'],
  ], checks) : el('p', { class: 'muted', text: 'No checks configured.' }));
}

function drawSystem(h) {
  const s = h.system;
  replace(system, el('h2', { text: 'System' }), s ? facts([
    ['OS', [s.os_name, s.os_version, s.os_build].filter(Boolean).join(' ')],
    ['Architecture', s.architecture],
    ['Uptime', fmtDuration(s.uptime_seconds * 1000)],
    ['CPU', s.cpu_percent.toFixed(0) + '%'],
    ['Memory', fmtBytes(s.memory_used_bytes) + ' of ' + fmtBytes(s.memory_total_bytes)],
    ['Agent', s.agent_version + ' · ' + fmtBytes(s.agent_rss_bytes) + ' RSS'],
    ['Machine id', s.machine_id],
  ]) : el('p', { class: 'muted', text: 'Not reported.' }),
  h.probe_status.length ? [el('h3', { text: 'Probes' }), table([
    ['Probe', (p) => p.probe], ['State', (p) => p.state], ['Message', (p) => p.message || '—'],
  ], h.probe_status)] : null);
}

async function drawTickets(h) {
  try {
    const list = await api('GET', '/api/tickets?limit=100&host=' + encodeURIComponent(h.agent_id));
    replace(history, el('h2', { text: 'Tickets' }), list.length ? table([
      ['P', (t) => priorityBadge(t.priority)],
      ['Ticket', (t) => ticketLink(t)],
      ['State', (t) => stateBadge(t.state)],
      ['Opened', (t) => fmtTime(t.opened_at_ms)],
      ['Resolved', (t) => fmtTime(t.resolved_at_ms)],
    ], list, (t) => ({ 'data-ticket-id': t.id, 'data-state': t.state })) : el('p', { class: 'muted', text: 'No tickets.' }));
  } catch (e) {
    replace(history, errorLine(e));
  }
}

async function load() {
  try {
    host = await api('GET', '/api/hosts/' + encodeURIComponent(name));
  } catch (e) {
    setApp(errorLine(e));
    return;
  }
  drawSummary(host);
  drawOffline(host);
  drawRevoke(host);
  drawLabels(host);
  drawPending(host);
  drawPatches(host);
  drawAntivirus(host);
  drawConnectivity(host);
  drawSystem(host);
  await Promise.all([drawDisks(host), drawTickets(host)]);
}

async function main() {
  await start();
  setApp(summary, check, offline, labels, disks, el('div', { class: 'grid' }, pending, patches, antivirus, connectivity, system), history, revoke);
  drawCheck();
  await load();
  const refresh = debounce(load, 300);
  onTicketEvent((e) => {
    if (host && e.ticket.agent_id === host.agent_id) refresh();
  });
}

main();
