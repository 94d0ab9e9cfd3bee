// One ticket: what it is, its SLA countdowns, the actions (acknowledge, assign, comment,
// resolve, reopen, close — POST /api/tickets/{id}/actions), a silence of its host or rule for
// a while (POST /api/silences), the knowledge-base steps (safe Markdown), the linked hosts of
// an outage, and the timeline. Live: an event of this ticket (or of a host under it) redraws
// the page in place, keeping what is being typed.

import {
  api, el, setApp, setTitle, start, replace, errorLine, onTicketEvent, priorityBadge, stateBadge,
  slaCell, facts, fmtTime, ago, can, me, table, hostLink, ticketLink, isOpen, debounce,
} from './common.js';
import { markdown } from './markdown.js';

const id = Number(location.pathname.split('/').pop());
const head = el('section', { class: 'card', id: 'ticket-head', 'aria-live': 'polite' });
const actions = el('section', { class: 'card no-print', id: 'ticket-actions', 'aria-label': 'Actions' });
const silence = el('section', { class: 'card no-print', id: 'ticket-silence', 'aria-label': 'Silence' });
const kb = el('section', { class: 'card', id: 'ticket-kb' });
const linked = el('section', { id: 'ticket-linked' });
const timeline = el('section', { class: 'card', id: 'ticket-timeline' });
const status = el('div', { class: 'status-line', id: 'action-status', 'aria-live': 'polite' });
let detail = null;
let actionsDrawnFor = '';

function drawHead(t) {
  setTitle('#' + t.id + ' ' + t.title);
  replace(head,
    el('div', { class: 'actions' }, priorityBadge(t.priority),
      el('span', { id: 'ticket-state', 'data-state': t.state }, stateBadge(t.state)),
      t.flapping ? el('span', { class: 'badge flap', text: 'flapping' }) : null,
      t.linked_hosts > 0 ? el('span', { class: 'badge outage', text: 'outage · ' + t.linked_hosts + ' hosts' }) : null,
      t.tier > 1 ? el('span', { class: 'badge', text: 'tier ' + t.tier }) : null),
    facts([
      ['Host', hostLink(t)],
      ['Rule', t.rule_id + (t.subject ? ' · ' + t.subject : '')],
      ['Assignee', t.assignee || 'nobody'],
      ['SLA', isOpen(t) ? slaCell(t) : '—'],
      ['Response due', fmtTime(t.response_due_ms)],
      ['Resolve due', fmtTime(t.resolve_due_ms)],
      ['Opened', fmtTime(t.opened_at_ms) + ' (' + ago(t.opened_at_ms) + ')'],
      ['Last seen', fmtTime(t.last_seen_at_ms)],
      ['Acknowledged', t.acknowledged_at_ms ? fmtTime(t.acknowledged_at_ms) : 'no'],
      ['Resolved', t.resolved_at_ms ? fmtTime(t.resolved_at_ms) : '—'],
      ['Occurrences', String(t.occurrences)],
      ['Parent outage', t.parent_id ? el('a', { href: '/tickets/' + t.parent_id, text: '#' + t.parent_id }) : null],
    ]));
}

async function act(action, text) {
  replace(status, action + '…');
  try {
    detail = await api('POST', '/api/tickets/' + id + '/actions', { action, text: text || '' });
    replace(status, el('span', { text: 'Done: ' + action }));
    draw(true);
  } catch (e) {
    replace(status, errorLine(e));
  }
}

function drawActions(t) {
  // Redrawn only when what is possible changes, so typing survives live updates.
  const key = t.state + '|' + can('technician');
  if (key === actionsDrawnFor) return;
  actionsDrawnFor = key;
  if (!can('technician')) {
    replace(actions, el('h2', { text: 'Actions' }),
      el('p', { class: 'muted', text: 'Signed in as a viewer: reading only.' }), status);
    return;
  }
  const comment = el('textarea', { id: 'comment-text', 'aria-label': 'Comment', maxlength: 4000 });
  const assignee = el('input', { id: 'assign-to', 'aria-label': 'Assign to', placeholder: 'name', size: 14 });
  const button = (label, action, enabled, extra) => el('button', {
    type: 'button', 'data-action': action, disabled: !enabled, class: extra,
    onclick: () => act(action, action === 'assign' ? assignee.value.trim() : ''),
    text: label,
  });
  const open = isOpen(t);
  replace(actions, el('h2', { text: 'Actions' }),
    el('div', { class: 'actions' },
      button('Acknowledge', 'acknowledge', t.state === 'new'),
      button('Resolve', 'resolve', open),
      button('Reopen', 'reopen', t.state === 'resolved'),
      button('Close', 'close', t.state === 'resolved', 'secondary')),
    el('div', { class: 'actions' }, assignee,
      button('Assign', 'assign', open),
      el('button', { type: 'button', class: 'secondary', disabled: !open, onclick: () => act('assign', me().name), text: 'Assign to me' })),
    el('div', { class: 'stack' }, el('label', { for: 'comment-text' }, 'Comment'), comment,
      el('div', { class: 'actions' }, el('button', {
        type: 'button', 'data-action': 'comment',
        onclick: () => { if (comment.value.trim()) act('comment', comment.value).then(() => { comment.value = ''; }); },
        text: 'Add comment',
      }))),
    status);
}

function drawSilence(t) {
  if (!can('technician') || silence.childElementCount) return;
  const what = el('select', { 'aria-label': 'What to silence' },
    t.agent_id !== 'fleet' ? el('option', { value: 'host', text: 'host ' + (t.hostname || t.agent_id) }) : null,
    el('option', { value: 'rule', text: 'rule ' + t.rule_id }));
  const length = el('select', { 'aria-label': 'For how long' },
    [['1', '1 hour'], ['4', '4 hours'], ['24', '1 day'], ['168', '1 week']].map(([v, l]) => el('option', { value: v, text: l })));
  const reason = el('input', { 'aria-label': 'Reason', placeholder: 'reason', size: 24 });
  const line = el('div', { class: 'status-line', 'aria-live': 'polite' });
  replace(silence, el('h2', { text: 'Silence' }),
    el('div', { class: 'actions' }, what, 'for', length, reason,
      el('button', {
        type: 'button', onclick: async () => {
          const body = { ends_at_ms: Date.now() + Number(length.value) * 3600000, reason: reason.value };
          if (what.value === 'host') body.host = t.agent_id; else body.rule = t.rule_id;
          try {
            const s = await api('POST', '/api/silences', body);
            replace(line, 'Silenced ' + s.matcher_kind + ' ' + s.matcher_value + ' until ' + fmtTime(s.ends_at_ms));
          } catch (e) {
            replace(line, errorLine(e));
          }
        }, text: 'Silence',
      })), line);
}

function draw(force) {
  const t = detail.ticket;
  drawHead(t);
  if (force) actionsDrawnFor = '';
  drawActions(t);
  drawSilence(t);
  replace(kb, el('h2', { text: 'Knowledge base' }),
    detail.kb_markdown ? markdown(detail.kb_markdown) : el('p', { class: 'muted', text: 'No article for ' + (t.kb || 'this rule') + '.' }));
  if (detail.linked.length) {
    replace(linked, el('h2', { text: 'Hosts under this outage (' + detail.linked.length + ')' }),
      table([
        ['P', (l) => priorityBadge(l.priority)],
        ['Host', (l) => hostLink(l)],
        ['Ticket', (l) => ticketLink(l)],
        ['State', (l) => stateBadge(l.state)],
        ['Opened', (l) => fmtTime(l.opened_at_ms)],
      ], detail.linked));
  } else {
    replace(linked);
  }
  replace(timeline, el('h2', { text: 'Timeline' }),
    el('ol', { class: 'timeline' }, detail.timeline.map((e) => el('li', { 'data-kind': e.kind },
      el('div', { class: 'when', text: fmtTime(e.at_ms) }),
      el('strong', { text: e.kind }), e.actor ? ' by ' + e.actor : '', e.detail ? ': ' : '',
      e.detail ? el('span', { text: e.detail }) : null))));
}

async function load() {
  try {
    detail = await api('GET', '/api/tickets/' + id);
    draw(false);
  } catch (e) {
    setApp(errorLine(e));
  }
}

async function main() {
  await start();
  setApp(head, actions, silence, kb, linked, timeline);
  await load();
  const refresh = debounce(load, 200);
  onTicketEvent((e) => {
    if (e.ticket.id === id || e.ticket.parent_id === id) refresh();
  });
}

main();
