// Firstline dashboard: what every page shares. The session (GET /api/session: name, role and
// the CSRF token sent as X-CSRF-Token on every change), JSON calls, a DOM builder that only
// ever creates text nodes from data (never innerHTML with untrusted strings), formatting of
// times, durations and bytes, SLA countdowns, and the live event stream (/api/stream, an
// EventSource that resumes with Last-Event-ID) with its connection indicator.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let session = null;

/** Calls the JSON API; resolves to the parsed answer, rejects with an ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'the collector cannot be reached (' + e.message + ')');
  }
  const textBody = await response.text();
  let data = null;
  try {
    data = textBody ? JSON.parse(textBody) : null;
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const message = data && data.error ? data.error : response.status + ' ' + response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

/** Builds an element. `attrs`: class, text, on<event> functions, dataset via data-*, others
 *  as attributes. Children: nodes, strings (as text), arrays, null (skipped). */
export function el(tag, attrs, ...children) {
  const node = tag === 'svg' || attrs && attrs.svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false || k === 'svg') continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'value') node.value = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces a node's children. */
export function replace(node, ...children) {
  while (node.firstChild) node.removeChild(node.firstChild);
  append(node, children);
  return node;
}

/** Replaces the page's content area. */
export function setApp(...children) {
  const app = document.getElementById('app');
  replace(app, ...children);
  app.setAttribute('aria-busy', 'false');
  return app;
}

export function setTitle(text) {
  document.getElementById('title').textContent = text;
  document.title = text + ' · Firstline';
}

export function errorLine(err) {
  return el('p', { class: 'error', role: 'alert', text: err instanceof Error ? err.message : String(err) });
}

const ROLES = ['viewer', 'technician', 'admin'];
/** Whether the signed-in user has at least `role`. */
export function can(role) {
  return session !== null && ROLES.indexOf(session.role) >= ROLES.indexOf(role);
}
export function me() {
  return session;
}

/** Loads the session (or sends the browser to sign in), fills the header, starts the live
 *  stream. Returns the session. */
export async function start() {
  try {
    session = await api('GET', '/api/session');
  } catch (e) {
    if (e.status === 401) {
      location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
      return new Promise(() => {});
    }
    setApp(errorLine(e));
    throw e;
  }
  const who = document.getElementById('who');
  if (who) {
    replace(who,
      el('span', { text: session.name + ' (' + session.role + ')' }),
      el('button', { type: 'button', class: 'secondary', onclick: signOut, text: 'Sign out' }));
  }
  connectLive();
  setInterval(tick, 1000);
  return session;
}

async function signOut() {
  try {
    await api('DELETE', '/api/session');
  } catch (_) {
    // Signed out already, or the route differs: the sign-in page follows either way.
  }
  location.assign('/login');
}

// ---- live updates -------------------------------------------------------------------------

const listeners = [];
let lastCursor = null;
let source = null;
let reconnectTimer = null;

/** Calls `fn(alertEvent)` for every event of the log that arrives while the page is open. */
export function onTicketEvent(fn) {
  listeners.push(fn);
}

function indicate(state, text) {
  const c = document.getElementById('conn');
  if (!c) return;
  c.dataset.state = state;
  c.textContent = text;
}

function connectLive() {
  const url = lastCursor === null ? '/api/stream' : '/api/stream?cursor=' + encodeURIComponent(lastCursor);
  source = new EventSource(url);
  source.addEventListener('open', () => {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    indicate('live', 'live');
  });
  source.addEventListener('hello', (e) => {
    if (e.lastEventId) lastCursor = e.lastEventId;
    indicate('live', 'live');
  });
  source.addEventListener('ticket', (e) => {
    if (e.lastEventId) lastCursor = e.lastEventId;
    let event;
    try {
      event = JSON.parse(e.data);
    } catch (_) {
      return;
    }
    for (const fn of listeners) {
      try {
        fn(event);
      } catch (err) {
        console.error(err);
      }
    }
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      indicate('offline', 'offline');
      source = null;
      setTimeout(connectLive, 5000);
      return;
    }
    // The server ends each stream after a while and the browser reconnects at once: only a
    // reconnection that takes longer is shown.
    if (reconnectTimer === null) {
      reconnectTimer = setTimeout(() => {
        reconnectTimer = null;
        if (source && source.readyState !== EventSource.OPEN) indicate('reconnecting', 'reconnecting…');
      }, 3000);
    }
  });
}

/** Calls `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// ---- formatting ---------------------------------------------------------------------------

export function fmtTime(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
    pad(d.getHours()) + ':' + pad(d.getMinutes());
}

export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  const h = Math.floor(m / 60);
  if (h < 48) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
  return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
}

export function ago(ms) {
  if (!ms) return 'never';
  return fmtDuration(Date.now() - ms) + ' ago';
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return (i === 0 ? v : v.toFixed(1)) + ' ' + units[i];
}

export function priorityBadge(p) {
  return el('span', { class: 'badge pri p' + p, title: 'priority ' + p, text: 'P' + p });
}

export function stateBadge(state) {
  return el('span', { class: 'badge state', 'data-state': state, text: state });
}

export function isOpen(t) {
  return t.state === 'new' || t.state === 'acknowledged';
}

/** The due time that counts now: response until acknowledged, then resolve. */
export function dueOf(t) {
  if (!isOpen(t)) return null;
  return t.acknowledged_at_ms ? t.resolve_due_ms : t.response_due_ms;
}

/** An SLA countdown, updated every second; red once breached. */
export function slaCell(t) {
  const due = dueOf(t);
  const span = el('span', { class: 'sla' });
  if (due === null) {
    span.textContent = '—';
    return span;
  }
  span.dataset.due = String(due);
  span.dataset.what = t.acknowledged_at_ms ? 'resolve' : 'response';
  renderSla(span);
  return span;
}

function renderSla(span) {
  const left = Number(span.dataset.due) - Date.now();
  const what = span.dataset.what;
  if (left < 0) {
    span.classList.add('breached');
    span.textContent = what + ' breached ' + fmtDuration(-left);
  } else {
    span.classList.remove('breached');
    span.textContent = what + ' ' + fmtDuration(left);
  }
}

function tick() {
  for (const s of document.querySelectorAll('span.sla[data-due]')) renderSla(s);
}

/** A label–value list; values are text or nodes. */
export function facts(pairs) {
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.appendChild(el('dt', { text: k }));
    dl.appendChild(el('dd', {}, v === null || v === '' ? '—' : v));
  }
  return dl;
}

/** A table; `columns` are [heading, cell(row) -> node|string, class?]. Stacks as cards on phones. */
export function table(columns, rows, rowAttrs) {
  const head = el('tr', {}, columns.map(([h, , cls]) => el('th', { class: cls, scope: 'col', text: h })));
  const body = el('tbody', {}, rows.map((r) => tableRow(columns, r, rowAttrs)));
  return el('table', { class: 'cards' }, el('thead', {}, head), body);
}

export function tableRow(columns, r, rowAttrs) {
  return el('tr', rowAttrs ? rowAttrs(r) : {},
    columns.map(([h, cell, cls]) => el('td', { class: cls, 'data-label': h }, cell(r))));
}

export function hostLink(t) {
  if (t.agent_id === 'fleet') return el('span', { class: 'muted', text: 'fleet' });
  return el('a', { href: '/hosts/' + encodeURIComponent(t.agent_id), text: t.hostname || t.agent_id });
}

export function ticketLink(t) {
  return el('a', { href: '/tickets/' + encodeURIComponent(t.id), text: t.title });
}
