// Trends (GET /api/trends): the rules and hosts that recur most, the outages and how many
// hosts each touched, and per priority the time to acknowledge and to resolve against the
// SLA, over the last 7, 30 or 90 days.

import {
  api, el, setApp, start, replace, errorLine, priorityBadge, stateBadge, fmtTime, fmtDuration, table, debounce, onTicketEvent,
} from './common.js';

const content = el('div', { id: 'trends' });
let days = Number(new URLSearchParams(location.search).get('days')) || 30;

function share(n, of) {
  return of ? Math.round((100 * n) / of) + '%' : '—';
}

function meanCell(mean, sla) {
  if (mean === null) return '—';
  return el('span', { class: mean > sla ? 'error' : '', text: fmtDuration(mean) + ' (SLA ' + fmtDuration(sla) + ')' });
}

async function load() {
  try {
    const t = await api('GET', '/api/trends?days=' + days);
    replace(content,
      el('section', { class: 'card' }, el('h2', { text: 'Response per priority' }), table([
        ['P', (r) => priorityBadge(r.priority)],
        ['Opened', (r) => String(r.opened), 'num'],
        ['Acknowledged', (r) => String(r.acknowledged), 'num'],
        ['Mean to acknowledge', (r) => meanCell(r.mean_ack_ms, r.response_sla_ms)],
        ['Acknowledged in time', (r) => share(r.ack_in_time, r.acknowledged), 'num'],
        ['Resolved', (r) => String(r.resolved), 'num'],
        ['Mean to resolve', (r) => meanCell(r.mean_resolve_ms, r.resolve_sla_ms)],
        ['Resolved in time', (r) => share(r.resolve_in_time, r.resolved), 'num'],
      ], t.response)),
      el('div', { class: 'grid' },
        el('section', { class: 'card' }, el('h2', { text: 'Rules that recur most' }), t.rules.length ? table([
          ['Rule', (r) => el('a', { href: '/?state=all&rule=' + encodeURIComponent(r.rule_id), text: r.rule_id })],
          ['Opened or reopened', (r) => String(r.openings), 'num'],
          ['Hosts', (r) => String(r.hosts), 'num'],
        ], t.rules) : el('p', { class: 'muted', text: 'None.' })),
        el('section', { class: 'card' }, el('h2', { text: 'Hosts that recur most' }), t.hosts.length ? table([
          ['Host', (h) => el('a', { href: '/hosts/' + encodeURIComponent(h.agent_id), text: h.hostname || h.agent_id })],
          ['Opened or reopened', (h) => String(h.openings), 'num'],
          ['Rules', (h) => String(h.rules), 'num'],
        ], t.hosts) : el('p', { class: 'muted', text: 'None.' }))),
      el('section', { class: 'card' }, el('h2', { text: 'Outages' }), t.outages.length ? table([
        ['P', (o) => priorityBadge(o.priority)],
        ['Outage', (o) => el('a', { href: '/tickets/' + o.ticket_id, text: o.title })],
        ['Hosts', (o) => String(o.hosts), 'num'],
        ['State', (o) => stateBadge(o.state)],
        ['Opened', (o) => fmtTime(o.opened_at_ms)],
        ['Lasted', (o) => (o.resolved_at_ms ? fmtDuration(o.resolved_at_ms - o.opened_at_ms) : 'ongoing')],
      ], t.outages) : el('p', { class: 'muted', text: 'No outage in this window.' })),
      el('p', { class: 'muted', text: 'Since ' + fmtTime(t.since_ms) + '. Host tickets under an outage count under the outage.' }));
  } catch (e) {
    replace(content, errorLine(e));
  }
}

async function main() {
  await start();
  const pick = el('select', { id: 'trend-days', 'aria-label': 'Window' },
    [7, 30, 90].map((d) => el('option', { value: d, text: 'last ' + d + ' days' })));
  pick.value = String(days);
  pick.addEventListener('change', () => {
    days = Number(pick.value);
    history.replaceState(null, '', '?days=' + days);
    load();
  });
  setApp(el('div', { class: 'actions' }, pick), content);
  await load();
  onTicketEvent(debounce(load, 5000));
}

main();
