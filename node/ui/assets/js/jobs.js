// The jobs page: a table of the jobs the caller may view, newest first, searched by name,
// filtered and paged by the server (the filters live in the address, so a view can be
// shared), kept current by the live stream, and the forms that start a batch or a session.

import { get, withQuery } from './api.js';
import { h, fill, time, duration, stateBadge, guarded } from './dom.js';
import { watch, debounce } from './stream.js';
import { mayChange } from './login.js';
import { submitForms } from './submit.js';

const PAGE = 50;
const STATES = ['not_started', 'starting', 'recovering', 'idle', 'running', 'busy',
  'shutting_down', 'error', 'dead', 'killed', 'success'];

/** The filters and offset the address holds (`#/jobs?state=running&offset=50`). */
function params() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  return {
    state: q.get('state') || '', kind: q.get('kind') || '', owner: q.get('owner') || '',
    name: q.get('name') || '', cluster: q.get('cluster') || '', offset: Number(q.get('offset') || 0),
  };
}

function go(p) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) if (v) q.set(k, v);
  const s = q.toString();
  location.hash = s ? `#/jobs?${s}` : '#/jobs';
}

function select(id, label, value, options) {
  const el = h('select', { id, name: id },
    h('option', { value: '' }, 'any'),
    options.map((o) => h('option', { value: o, selected: o === value }, o)));
  return h('label', { for: id }, label, el);
}

function filters(p, clusters) {
  const owner = h('input', { id: 'filter-owner', name: 'owner', value: p.owner, placeholder: 'user name' });
  const name = h('input', { id: 'filter-name', name: 'name', type: 'search', value: p.name, placeholder: 'part of a name' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter jobs',
    onsubmit: (e) => {
      e.preventDefault();
      const f = new FormData(form);
      go({
        name: f.get('name').trim(), state: f.get('state'), kind: f.get('kind'),
        cluster: f.get('cluster'), owner: f.get('owner').trim(),
      });
    } },
    h('label', { for: 'filter-name' }, 'Name', name),
    select('state', 'State', p.state, STATES),
    select('kind', 'Kind', p.kind, ['batch', 'session']),
    select('cluster', 'Cluster', p.cluster, clusters),
    h('label', { for: 'filter-owner' }, 'Owner', owner),
    h('button', { type: 'submit' }, 'Filter'));
  return form;
}

function row(j) {
  const kind = j.kind ? `${j.type} (${j.kind})` : j.type;
  return h('tr', { 'data-job': j.id },
    h('td', { class: 'num' }, h('a', { href: `#/jobs/${j.id}` }, j.id)),
    h('td', {}, j.name || ''),
    h('td', {}, kind),
    h('td', {}, j.owner || ''),
    h('td', {}, j.cluster),
    h('td', {}, stateBadge(j.state), j.reason && j.state === 'not_started' ? h('div', { class: 'muted' }, j.reason) : null),
    h('td', {}, time(j.submittedAt)),
    h('td', { class: 'num' }, duration(j.startedAt, j.finishedAt)));
}

export async function jobsView(el) {
  const p = params();
  const table = h('tbody');
  const count = h('span', { class: 'muted', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'secondary', onclick: () => go({ ...p, offset: Math.max(0, p.offset - PAGE) }) }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary', onclick: () => go({ ...p, offset: p.offset + PAGE }) }, 'Next');
  const load = async () => {
    const page = await get(withQuery('/api/v1/jobs', {
      state: p.state, kind: p.kind, owner: p.owner, name: p.name, cluster: p.cluster,
      order: 'desc', offset: p.offset, limit: PAGE,
    }));
    fill(table, page.jobs.length ? page.jobs.map(row)
      : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No jobs.')));
    const last = Math.min(page.total, p.offset + page.jobs.length);
    count.textContent = page.total ? `${p.offset + 1}-${last} of ${page.total}` : '';
    prev.disabled = p.offset === 0;
    next.disabled = last >= page.total;
  };
  const clusters = (await get('/api/v1/clusters')).clusters.map((c) => c.name);
  fill(el,
    h('h1', {}, 'Jobs'),
    mayChange() ? submitForms() : null,
    filters(p, clusters),
    h('table', { id: 'jobs' },
      h('caption', { class: 'sr-only' }, 'Jobs'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', class: 'num' }, 'Id'), h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Owner'),
        h('th', { scope: 'col' }, 'Cluster'), h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Submitted'), h('th', { scope: 'col', class: 'num' }, 'Duration'))),
      table),
    h('div', { class: 'pager' }, prev, next, count));
  await load();
  const filter = {};
  if (p.owner) filter.owner = p.owner;
  if (p.kind) filter.kind = p.kind;
  if (p.cluster) filter.cluster = p.cluster;
  watch(filter, debounce(() => guarded(load)));
}
