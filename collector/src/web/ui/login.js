// The sign-in page: name and password to POST /api/session, which sets the session cookie;
// then on to the page asked for (`?next=`, only a path on this site).

import { api, el, setApp, errorLine, replace } from './common.js';

function nextPath() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  return /^\/(?![\/\\])/.test(next) ? next : '/';
}

async function main() {
  document.getElementById('conn').hidden = true;
  try {
    await api('GET', '/api/session');
    location.replace(nextPath());
    return;
  } catch (_) {
    // Not signed in: show the form.
  }
  const status = el('div', { class: 'status-line', 'aria-live': 'polite' });
  const name = el('input', { id: 'name', name: 'name', autocomplete: 'username', required: true });
  const password = el('input', {
    id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const button = el('button', { type: 'submit', text: 'Sign in' });
  const form = el('form', { class: 'card stack login', 'aria-label': 'Sign in' },
    el('label', { for: 'name' }, 'Name', name),
    el('label', { for: 'password' }, 'Password', password),
    button, status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    replace(status, 'Signing in…');
    try {
      await api('POST', '/api/session', { name: name.value, password: password.value });
      location.assign(nextPath());
    } catch (err) {
      replace(status, errorLine(err));
      button.disabled = false;
      password.select();
    }
  });
  setApp(form);
  name.focus();
}

main();
