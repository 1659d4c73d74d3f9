// Who the caller is, and logging in and out: a password (HTTP Basic, checked against the
// users file or the directory) or a token (an API token, or an identity provider's JWT),
// traded once for the node's session cookie.

import { api, get, post } from './api.js';
import { h, fill, showError, clearError } from './dom.js';

/** The caller as the node sees it (`GET /api/v1/whoami`). */
export const session = { user: null, role: null, authentication: true };

/** Whether the caller may run and change jobs (viewers may not). */
export const mayChange = () => session.role === 'admin' || session.role === 'user';
export const isAdmin = () => session.role === 'admin';

export async function whoami() {
  Object.assign(session, await get('/api/v1/whoami'));
  return session;
}

export async function logout() {
  await post('/api/v1/logout');
  Object.assign(session, { user: null, role: null });
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** The login page; `done` runs once the cookie is set. */
export function loginView(el, done) {
  const submit = async (event, authorization) => {
    event.preventDefault();
    clearError();
    try {
      Object.assign(session, await api('POST', '/api/v1/login', undefined, { Authorization: authorization }));
      done();
    } catch (e) {
      showError(e);
    }
  };
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const token = h('input', { id: 'login-token', name: 'token', type: 'password', autocomplete: 'off', required: true });
  const byPassword = h('form', { class: 'stack', 'aria-label': 'Log in with a password',
    onsubmit: (e) => submit(e, basic(user.value, password.value)) },
    h('label', { for: 'login-user' }, 'User name', user),
    h('label', { for: 'login-password' }, 'Password', password),
    h('button', { type: 'submit' }, 'Log in'));
  const byToken = h('form', { class: 'stack', 'aria-label': 'Log in with a token', hidden: true,
    onsubmit: (e) => submit(e, `Bearer ${token.value.trim()}`) },
    h('label', { for: 'login-token' }, 'API token or identity provider token', token),
    h('button', { type: 'submit' }, 'Log in'));
  const tab = (label, form, other) => h('button', { type: 'button', role: 'tab', 'aria-selected': String(!form.hidden),
    onclick: (e) => {
      form.hidden = false;
      other.hidden = true;
      for (const b of e.target.parentElement.children) b.setAttribute('aria-selected', String(b === e.target));
    } }, label);
  fill(el, h('section', { class: 'login' },
    h('h1', {}, 'Log in to Kindling'),
    h('div', { class: 'tabs', role: 'tablist' }, tab('Password', byPassword, byToken), tab('Token', byToken, byPassword)),
    byPassword, byToken));
  user.focus();
}
