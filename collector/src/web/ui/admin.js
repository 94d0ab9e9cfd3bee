// Administration: enrollment tokens (list, create: GET/POST /api/tokens) and users (list,
// add: GET/POST /api/users). A created token is shown once. Needs the admin role; for others
// the API's refusal is shown as it is.

import { api, el, setApp, start, replace, errorLine, fmtTime, table } from './common.js';

const tokens = el('section', { class: 'card', id: 'admin-tokens' });
const users = el('section', { class: 'card', id: 'admin-users' });

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
      ['State', (t) => t.state],
      ['Uses left', (t) => t.uses_left + ' of ' + t.uses_total, 'num'],
      ['Created', (t) => fmtTime(t.created_at_ms)],
      ['Expires', (t) => fmtTime(t.expires_at_ms)],
    ], list) : el('p', { class: 'muted', text: 'No tokens.' }));
  } catch (e) {
    replace(area, errorLine(e));
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
  setApp(tokens, users);
  await Promise.all([loadTokens(), loadUsers()]);
}

main();
