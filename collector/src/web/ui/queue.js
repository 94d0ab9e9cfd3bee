// The queue: open tickets, outages first (with their host count), then by priority and SLA
// time left. Filters (priority, state, assignee or "mine", rule, host, label) are kept in the
// address so a reload or a shared link shows the same view. Counts per priority (and outages)
// from the server, of everything the filters match. Live: each
// event's ticket replaces its row in place (added, updated, or removed when it no longer
// matches), so nothing reloads.

import {
  api, el, setApp, start, replace, errorLine, onTicketEvent, priorityBadge, stateBadge, slaCell,
  hostLink, ticketLink, ago, dueOf, tableRow,
} from './common.js';

const FIELDS = ['priority', 'state', 'assignee', 'mine', 'rule', 'host', 'label'];
const LIMIT = 1000;
let filters = {};
let tickets = new Map();
let session = null;
const body = el('tbody', { id: 'queue-rows' });
const counts = el('div', { class: 'counts', 'aria-label': 'Open tickets per priority' });
const status = el('div', { class: 'status-line', 'aria-live': 'polite' });

const columns = [
  ['P', (t) => priorityBadge(t.priority)],
  ['Ticket', (t) => [ticketLink(t), ' ',
    t.linked_hosts > 0 ? el('span', { class: 'badge outage', text: 'outage · ' + t.linked_hosts + ' hosts' }) : null, ' ',
    t.flapping ? el('span', { class: 'badge flap', title: 'resolved and reopened repeatedly', text: 'flapping' }) : null]],
  ['Host', (t) => hostLink(t)],
  ['Rule', (t) => t.rule_id],
  ['State', (t) => stateBadge(t.state)],
  ['Assignee', (t) => t.assignee || '—'],
  ['SLA', (t) => slaCell(t)],
  ['Opened', (t) => ago(t.opened_at_ms)],
];

function readFilters() {
  const q = new URLSearchParams(location.search);
  const f = {};
  for (const k of FIELDS) if (q.get(k)) f[k] = q.get(k);
  if (!f.state) f.state = 'open';
  return f;
}

function writeFilters() {
  const q = new URLSearchParams();
  for (const k of FIELDS) if (filters[k] && !(k === 'state' && filters[k] === 'open')) q.set(k, filters[k]);
  const s = q.toString();
  history.replaceState(null, '', s ? '?' + s : location.pathname);
}

function order(a, b) {
  const outage = (t) => (t.linked_hosts > 0 || t.agent_id === 'fleet' ? 0 : 1);
  return outage(a) - outage(b) || a.priority - b.priority ||
    (dueOf(a) ?? Infinity) - (dueOf(b) ?? Infinity) || a.id - b.id;
}

/** Whether a ticket belongs in the view (the same rules the server applies). */
function matches(t, labels) {
  const s = filters.state || 'open';
  const open = t.state === 'new' || t.state === 'acknowledged';
  if (s === 'open' && !open) return false;
  if (s === 'resolved' && !(t.state === 'resolved' || t.state === 'closed')) return false;
  if (!['open', 'resolved', 'all'].includes(s) && t.state !== s) return false;
  if (filters.priority && String(t.priority) !== filters.priority) return false;
  if (filters.mine && t.assignee !== session.name) return false;
  if (!filters.mine && filters.assignee && t.assignee !== filters.assignee) return false;
  if (filters.rule && t.rule_id !== filters.rule) return false;
  if (filters.host && t.agent_id !== filters.host && (t.hostname || '').toLowerCase() !== filters.host.toLowerCase()) return false;
  if (filters.label && labels && !labels.includes(filters.label)) return false;
  return true;
}

function rowAttrs(t) {
  return { 'data-ticket-id': t.id, 'data-state': t.state, class: t.fresh ? 'fresh' : null };
}

function render() {
  const list = [...tickets.values()].sort(order);
  const byId = new Map([...body.children].map((r) => [r.dataset.ticketId, r]));
  let prev = null;
  for (const t of list) {
    let row = byId.get(String(t.id));
    if (!row || row.dataset.version !== t.version) {
      const fresh = tableRow(columns, t, rowAttrs);
      fresh.dataset.version = t.version;
      if (row) row.replaceWith(fresh);
      row = fresh;
    }
    byId.delete(String(t.id));
    const want = prev ? prev.nextSibling : body.firstChild;
    if (want !== row) body.insertBefore(row, want);
    prev = row;
  }
  for (const r of byId.values()) r.remove();
  renderCounts(list.length);
  if (!list.length) replace(status, el('p', { class: 'muted', text: 'No tickets match.' }));
  else replace(status);
}

// Counts per priority come from the server (GET /api/tickets/summary, the same filters), so
// they are right however many tickets match; until it answers, the rows shown are counted.
let summary = null;
let summaryTimer = null;

function renderCounts(shown) {
  let per = [0, 0, 0, 0];
  let outages = null;
  let total = shown;
  if (summary) {
    per = [summary.p1, summary.p2, summary.p3, summary.p4];
    outages = summary.outages;
    total = summary.total;
  } else {
    for (const t of tickets.values()) if (t.priority >= 1 && t.priority <= 4) per[t.priority - 1] += 1;
  }
  replace(counts, per.map((n, i) => el('span', { class: 'count p' + (i + 1), 'data-priority': i + 1 },
    el('strong', { text: 'P' + (i + 1) }), ' ' + n)),
  outages !== null ? el('span', { class: 'count outages', text: outages + ' outage' + (outages === 1 ? '' : 's') }) : null,
  el('span', { class: 'count', text: shown + ' shown' + (total > shown ? ' of ' + total : '') + (shown >= LIMIT ? ' (first ' + LIMIT + ')' : '') }));
}

function summaryQuery() {
  const q = new URLSearchParams();
  for (const k of FIELDS) if (filters[k]) q.set(k, k === 'mine' ? 'true' : filters[k]);
  return q;
}

async function loadSummary() {
  try {
    summary = await api('GET', '/api/tickets/summary?' + summaryQuery().toString());
  } catch (e) {
    summary = null;
  }
  renderCounts(tickets.size);
}

/** Asks for the counts again soon after live events (one request for a burst of them). */
function refreshSummary() {
  if (summaryTimer) return;
  summaryTimer = setTimeout(() => { summaryTimer = null; loadSummary(); }, 1000);
}

function version(t) {
  return [t.state, t.priority, t.assignee, t.flapping, t.linked_hosts, t.acknowledged_at_ms, t.title, t.occurrences].join('|');
}

async function load() {
  const q = new URLSearchParams({ limit: String(LIMIT) });
  for (const k of FIELDS) if (filters[k]) q.set(k, k === 'mine' ? 'true' : filters[k]);
  try {
    const list = await api('GET', '/api/tickets?' + q.toString());
    tickets = new Map(list.map((t) => [t.id, { ...t, version: version(t) }]));
    summary = null;
    render();
    loadSummary();
  } catch (e) {
    tickets = new Map();
    render();
    replace(status, errorLine(e));
  }
}

function form() {
  const input = (name, label, attrs) => el('label', {}, label,
    el('input', { name, value: filters[name] || '', size: 12, ...attrs }));
  const select = (name, label, options) => {
    const s = el('select', { name }, options.map(([v, t]) => el('option', { value: v, text: t })));
    s.value = filters[name] || options[0][0];
    return el('label', {}, label, s);
  };
  const f = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter tickets' },
    select('priority', 'Priority', [['', 'any'], ['1', 'P1'], ['2', 'P2'], ['3', 'P3'], ['4', 'P4']]),
    select('state', 'State', [['open', 'open'], ['new', 'new'], ['acknowledged', 'acknowledged'],
      ['suppressed', 'under an outage'], ['resolved', 'resolved'], ['all', 'all']]),
    input('assignee', 'Assignee'),
    el('label', { class: 'inline' }, el('input', { type: 'checkbox', name: 'mine', checked: !!filters.mine }), 'mine'),
    input('rule', 'Rule', { list: 'rules' }),
    input('host', 'Host'),
    input('label', 'Label'),
    el('button', { type: 'submit', text: 'Apply' }),
    el('button', { type: 'button', class: 'secondary', text: 'Clear', onclick: () => { filters = { state: 'open' }; writeFilters(); main2(); } }));
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(f);
    filters = {};
    for (const k of FIELDS) {
      const v = data.get(k);
      if (k === 'mine') { if (v) filters.mine = '1'; } else if (v) filters[k] = String(v).trim();
    }
    writeFilters();
    load();
  });
  f.addEventListener('change', (e) => { if (e.target.tagName === 'SELECT' || e.target.type === 'checkbox') f.requestSubmit(); });
  return f;
}

function main2() {
  setApp(form(), counts, status,
    el('table', { class: 'cards', id: 'queue' },
      el('thead', {}, el('tr', {}, columns.map(([h]) => el('th', { scope: 'col', text: h })))),
      body));
  load();
}

async function main() {
  session = await start();
  filters = readFilters();
  main2();
  onTicketEvent((e) => {
    const t = { ...e.ticket, version: version(e.ticket), fresh: true };
    if (matches(t, e.labels)) tickets.set(t.id, t);
    else tickets.delete(t.id);
    render();
    refreshSummary();
    setTimeout(() => {
      const row = body.querySelector('tr[data-ticket-id="' + t.id + '"]');
      if (row) row.classList.remove('fresh');
      const cur = tickets.get(t.id);
      if (cur) cur.fresh = false;
    }, 2500);
  });
}

main();
