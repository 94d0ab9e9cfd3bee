// The end-of-shift handoff (GET /api/handoff): open P1/P2 tickets, escalations and what was
// resolved since a time. Printable: the print style sheet drops navigation and controls.

import {
  api, el, setApp, start, replace, errorLine, priorityBadge, stateBadge, fmtTime, ago, table,
  hostLink, ticketLink, slaCell,
} from './common.js';

const content = el('div', { id: 'handoff' });

function list(title, tickets, cut, resolved) {
  return el('section', { class: 'card' }, el('h2', { text: title + ' (' + tickets.length + (cut ? '+' : '') + ')' }),
    tickets.length ? table([
      ['P', (t) => priorityBadge(t.priority)],
      ['Ticket', (t) => [ticketLink(t), t.linked_hosts > 0 ? ' · ' + t.linked_hosts + ' hosts' : '']],
      ['Host', (t) => hostLink(t)],
      ['State', (t) => stateBadge(t.state)],
      ['Assignee', (t) => t.assignee || '—'],
      resolved ? ['Resolved', (t) => fmtTime(t.resolved_at_ms)] : ['SLA', (t) => slaCell(t)],
      ['Opened', (t) => fmtTime(t.opened_at_ms) + ' (' + ago(t.opened_at_ms) + ')'],
    ], tickets) : el('p', { class: 'muted', text: 'None.' }),
    cut ? el('p', { class: 'muted', text: 'The list is cut; see the queue for all.' }) : null);
}

async function load(hours) {
  try {
    const h = await api('GET', '/api/handoff?since_ms=' + (Date.now() - hours * 3600000));
    replace(content,
      el('p', { text: 'Generated ' + fmtTime(h.generated_at_ms) + '; resolved since ' + fmtTime(h.since_ms) + '.' }),
      list('Open P1 and P2', h.critical_open, h.cut.critical_open, false),
      list('Escalated', h.escalated, h.cut.escalated, false),
      list('Resolved', h.resolved_since, h.cut.resolved_since, true));
  } catch (e) {
    replace(content, errorLine(e));
  }
}

async function main() {
  await start();
  const since = el('select', { id: 'handoff-since', 'aria-label': 'Resolved since' },
    [['12', 'last 12 hours'], ['24', 'last 24 hours'], ['72', 'last 3 days'], ['168', 'last week']].map(([v, t]) => el('option', { value: v, text: t })));
  since.addEventListener('change', () => load(Number(since.value)));
  setApp(el('div', { class: 'actions no-print' }, since,
    el('button', { type: 'button', onclick: () => window.print(), text: 'Print' })), content);
  await load(12);
}

main();
