// The fleet: every host with its health colour, OS, last seen, agent version, clock skew,
// labels and open tickets, one page at a time from GET /api/fleet (searched and paged by the
// collector, so a large fleet is never loaded whole). Search by name, label, OS or version
// (`label:lab`, `os:debian`, `version:0.3` limit the search to one field). Live: an event of
// a host on the page refreshes the page.

import {
  api, el, setApp, start, replace, errorLine, onTicketEvent, fmtDuration, ago, debounce, tableRow,
} from './common.js';

const params = new URLSearchParams(location.search);
let q = params.get('q') || '';
let page = Math.max(1, Number(params.get('page')) || 1);
let perPage = Number(params.get('per_page')) || 50;
let shown = new Set();
const body = el('tbody', { id: 'fleet-rows' });
const pager = el('div', { class: 'pager', 'aria-label': 'Pages' });
const status = el('div', { class: 'status-line', 'aria-live': 'polite' });

const columns = [
  ['Host', (h) => [el('span', { class: 'health ' + h.health, title: h.health, role: 'img', 'aria-label': h.health }),
    el('a', { href: '/hosts/' + encodeURIComponent(h.agent_id), text: h.hostname || h.agent_id })]],
  ['Health', (h) => h.health],
  ['OS', (h) => h.os || '—'],
  ['Last seen', (h) => (h.last_seen_at_ms ? ago(h.last_seen_at_ms) : 'never')],
  ['Version', (h) => h.agent_version || '—'],
  ['Skew', (h) => (Math.abs(h.clock_skew_ms) < 1000 ? '0s' : (h.clock_skew_ms > 0 ? '+' : '−') + fmtDuration(h.clock_skew_ms)), 'num'],
  ['Labels', (h) => el('span', { class: 'labels' }, h.labels.map((l) => el('span', { class: 'badge', text: l })))],
  ['Open tickets', (h) => String(h.open_tickets), 'num'],
];

function remember() {
  const s = new URLSearchParams();
  if (q) s.set('q', q);
  if (page > 1) s.set('page', String(page));
  if (perPage !== 50) s.set('per_page', String(perPage));
  const t = s.toString();
  history.replaceState(null, '', t ? '?' + t : location.pathname);
}

async function load() {
  remember();
  try {
    const r = await api('GET', '/api/fleet?' + new URLSearchParams({ q, page: String(page), per_page: String(perPage) }));
    replace(body, r.hosts.map((h) => tableRow(columns, h, () => ({ 'data-agent-id': h.agent_id, 'data-health': h.health }))));
    shown = new Set(r.hosts.map((h) => h.agent_id));
    const pages = Math.max(1, r.pages);
    replace(pager,
      el('button', { type: 'button', class: 'secondary', disabled: page <= 1, onclick: () => { page -= 1; load(); }, text: '‹ Previous' }),
      el('span', { id: 'fleet-position', text: 'Page ' + r.page + ' of ' + pages + ' · ' + r.total + ' hosts' }),
      el('button', { type: 'button', class: 'secondary', disabled: page >= pages, onclick: () => { page += 1; load(); }, text: 'Next ›' }));
    replace(status, r.total ? '' : el('p', { class: 'muted', text: 'No host matches.' }));
  } catch (e) {
    replace(status, errorLine(e));
  }
}

async function main() {
  await start();
  const search = el('input', { type: 'search', id: 'fleet-search', value: q, size: 30, placeholder: 'name, label:x, os:x, version:x' });
  const per = el('select', { id: 'fleet-per-page' }, [25, 50, 100, 200].map((n) => el('option', { value: n, text: n + ' per page' })));
  per.value = String(perPage);
  const run = debounce(() => { q = search.value.trim(); page = 1; load(); }, 300);
  search.addEventListener('input', run);
  per.addEventListener('change', () => { perPage = Number(per.value); page = 1; load(); });
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Search the fleet' },
    el('label', { for: 'fleet-search' }, 'Search', search), el('label', {}, 'Page size', per));
  form.addEventListener('submit', (e) => { e.preventDefault(); q = search.value.trim(); page = 1; load(); });
  setApp(form, pager, status,
    el('table', { class: 'cards', id: 'fleet' },
      el('thead', {}, el('tr', {}, columns.map(([h, , c]) => el('th', { scope: 'col', class: c, text: h })))), body));
  await load();
  const refresh = debounce(load, 1000);
  onTicketEvent((e) => { if (shown.has(e.ticket.agent_id)) refresh(); });
}

main();
