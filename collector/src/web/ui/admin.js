// Administration: enrollment tokens (list, create: GET/POST /api/tokens; revoke a valid one:
// POST /api/tokens/{hash}/revoke), agents' and operators' certificates (GET /api/certificates,
// a page at a time, each agent linked to its host page) and users (list, add: GET/POST
// /api/users). A created token is shown once. Needs the admin role; for others the API's
// refusal is shown as it is.

import { api, el, setApp, start, replace, errorLine, fmtTime, table } from './common.js';

const tokens = el('section', { class: 'card', id: 'admin-tokens' });
const certificates = el('section', { class: 'card', id: 'admin-certificates' });
const users = el('section', { class: 'card', id: 'admin-users' });
const CERT_PAGE = 50;

async function loadTokens() {
  const line = el('div', { class: 'status-line', 'aria-live': 'polite' });
  const label = el('input', { 'aria-label': 'Token label', placeholder: 'label', size: 16 });
  const uses = el('input', { 'aria-label': 'Uses', type: 'number', min: 1, max: 100000, value: '1', size: 5 });
  const ttl = el('input', { 'aria-label': 'Valid for', value: '24h', size: 6 });
  const form = el('form', { class: 'actions' }, label, uses, ttl, el('button', { type: 'submit', text: 'Create token' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const t = await api('POST', '/api/tokens', { label: label.value, uses: Number(uses.value), ttl: ttl.value });
      replace(line, 'Token (shown once): ', el('code', { id: 'new-token', text: t.token }), ' — expires ' + fmtTime(t.expires_at_ms));
      await listTokens(listArea);
    } catch (err) {
      replace(line, errorLine(err));
    }
  });
  const listArea = el('div');
  replace(tokens, el('h2', { text: 'Enrollment tokens' }), form, line, listArea);
  await listTokens(listArea);
}

async function listTokens(area) {
  try {
    const list = await api('GET', '/api/tokens');
    replace(area, list.length ? table([
      ['Label', (t) => t.label || '—'],
      ['State', (t) => (t.state === 'revoked' ? 'revoked ' + fmtTime(t.revoked_at_ms) : t.state)],
      ['Uses left', (t) => t.uses_left + ' of ' + t.uses_total, 'num'],
      ['Created', (t) => fmtTime(t.created_at_ms)],
      ['Expires', (t) => fmtTime(t.expires_at_ms)],
      ['', (t) => (t.state === 'valid' ? revokeTokenButton(t, area) : '')],
    ], list, (t) => ({ 'data-token': t.hash.slice(0, 12), 'data-state': t.state })) : el('p', { class: 'muted', text: 'No tokens.' }));
  } catch (e) {
    replace(area, errorLine(e));
  }
}

// Revoke: after a confirm dialog; the list is read again either way.
function revokeTokenButton(t, area) {
  const button = el('button', { type: 'button', class: 'danger', text: 'Revoke' });
  button.addEventListener('click', async () => {
    if (!window.confirm('Revoke the enrollment token ' + (t.label || t.hash.slice(0, 12)) + '? Agents can no longer enroll with it.')) return;
    button.disabled = true;
    try {
      await api('POST', '/api/tokens/' + encodeURIComponent(t.hash) + '/revoke');
    } catch (e) {
      replace(button.parentNode, errorLine(e));
      return;
    }
    await listTokens(area);
  });
  return button;
}

async function loadCertificates(offset) {
  try {
    const page = await api('GET', '/api/certificates?limit=' + CERT_PAGE + '&offset=' + offset);
    const who = (c) => (c.kind === 'agent'
      ? el('a', { href: '/hosts/' + encodeURIComponent(c.subject), text: c.hostname || c.subject })
      : c.subject);
    const nav = el('div', { class: 'actions' });
    if (offset > 0) {
      const prev = el('button', { type: 'button', text: 'Newer' });
      prev.addEventListener('click', () => loadCertificates(Math.max(0, offset - CERT_PAGE)));
      nav.append(prev);
    }
    if (offset + page.certificates.length < page.total) {
      const next = el('button', { type: 'button', text: 'Older' });
      next.addEventListener('click', () => loadCertificates(offset + CERT_PAGE));
      nav.append(next);
    }
    replace(certificates, el('h2', { text: 'Agents and certificates' }),
      el('p', { class: 'muted', text: page.total + ' certificate(s)' + (page.total ? ', ' + (offset + 1) + '–' + (offset + page.certificates.length) + ' shown' : '') + '. Revoke an agent from its host page.' }),
      page.certificates.length ? table([
        ['Kind', (c) => c.kind],
        ['Agent or operator', who],
        ['State', (c) => (c.state === 'revoked' ? 'revoked ' + fmtTime(c.revoked_at_ms) : c.state)],
        ['Issued', (c) => fmtTime(c.issued_at_ms)],
        ['Expires', (c) => fmtTime(c.not_after_ms)],
        ['Fingerprint', (c) => el('code', { text: c.fingerprint.slice(0, 16) + '…', title: c.fingerprint })],
      ], page.certificates, (c) => ({ 'data-subject': c.subject, 'data-state': c.state })) : null,
      nav);
  } catch (e) {
    replace(certificates, el('h2', { text: 'Agents and certificates' }), errorLine(e));
  }
}

async function loadUsers() {
  const line = el('div', { class: 'status-line', 'aria-live': 'polite' });
  const name = el('input', { 'aria-label': 'User name', placeholder: 'name', size: 14, autocomplete: 'off' });
  const role = el('select', { 'aria-label': 'Role' }, ['viewer', 'technician', 'admin'].map((r) => el('option', { value: r, text: r })));
  const password = el('input', { 'aria-label': 'Password', type: 'password', placeholder: 'password (10+)', autocomplete: 'new-password', size: 16 });
  const form = el('form', { class: 'actions' }, name, role, password, el('button', { type: 'submit', text: 'Add user' }));
  const area = el('div');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const u = await api('POST', '/api/users', { name: name.value.trim(), role: role.value, password: password.value });
      replace(line, 'Added ' + u.name + ' (' + u.role + ').');
      password.value = '';
      await listUsers(area);
    } catch (err) {
      replace(line, errorLine(err));
    }
  });
  replace(users, el('h2', { text: 'Users' }), form, line, area);
  await listUsers(area);
}

async function listUsers(area) {
  try {
    const list = await api('GET', '/api/users');
    replace(area, table([
      ['Name', (u) => u.name],
      ['Role', (u) => u.role],
      ['State', (u) => (u.disabled ? 'disabled ' + fmtTime(u.disabled_at_ms) : 'active')],
      ['Created', (u) => fmtTime(u.created_at_ms)],
    ], list));
  } catch (e) {
    replace(area, errorLine(e));
  }
}

async function main() {
  await start();
  setApp(tokens, certificates, users);
  await Promise.all([loadTokens(), loadCertificates(0), loadUsers()]);
}

main();
