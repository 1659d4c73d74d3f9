// The UI's frame: who is logged in, the navigation, and which view the address (`#/...`)
// shows. Each view fills `main` from the API and follows the live stream while shown.

import { ApiError } from './api.js';
import { h, fill, showError, clearError } from './dom.js';
import { stop } from './stream.js';
import { session, whoami, logout, loginView } from './login.js';
import { jobsView } from './jobs.js';
import { jobView } from './job.js';
import { consoleView } from './console.js';
import { clustersView } from './clusters.js';
import { nodesView } from './nodes.js';

const main = () => document.getElementById('main');

const views = [
  [/^#\/jobs\/(\d+)\/console$/, (m, el) => consoleView(el, Number(m[1]))],
  [/^#\/jobs\/(\d+)$/, (m, el) => jobView(el, Number(m[1]))],
  [/^#\/jobs(\?.*)?$/, (m, el) => jobsView(el)],
  [/^#\/clusters$/, (m, el) => clustersView(el)],
  [/^#\/nodes$/, (m, el) => nodesView(el)],
];

function header() {
  const nav = document.getElementById('nav');
  nav.hidden = false;
  for (const a of nav.querySelectorAll('a')) {
    const here = location.hash.startsWith(a.getAttribute('href'));
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const who = document.getElementById('who');
  if (!session.authentication) {
    fill(who, h('span', {}, 'no authentication (every caller is an admin)'));
    return;
  }
  fill(who,
    h('span', { id: 'who-user' }, `${session.user} (${session.role})`),
    h('button', { type: 'button', id: 'logout', onclick: async () => {
      try {
        await logout();
      } finally {
        location.hash = '#/jobs';
        await show();
      }
    } }, 'Log out'));
}

function showLogin() {
  stop();
  document.getElementById('nav').hidden = true;
  fill(document.getElementById('who'));
  loginView(main(), () => show());
}

async function show() {
  stop();
  clearError();
  try {
    await whoami();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin();
    return showError(e);
  }
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    history.replaceState(null, '', '#/jobs');
  }
  header();
  const view = views.find(([re]) => re.test(location.hash));
  const el = main();
  if (!view) {
    fill(el, h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/jobs' }, 'Jobs')));
    return;
  }
  try {
    await view[1](location.hash.match(view[0]), el);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin();
    showError(e);
  }
}

window.addEventListener('hashchange', show);
show();
