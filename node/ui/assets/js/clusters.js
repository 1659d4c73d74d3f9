// The clusters page: every registered cluster, its kind, where it is, its capacity and
// what its drivers take of it (drivers, cores, memory, as the scheduler counts them), the
// jobs waiting for it, and why each waiting job waits. Admins register, change and remove
// clusters here (the built-in one is the node's own and changes only with its flags).

import { get, del, withQuery } from './api.js';
import { h, fill, stateBadge, guarded } from './dom.js';
import { watch, debounce } from './stream.js';
import { isAdmin } from './login.js';
import { clusterForm } from './cluster_form.js';

function capacity(c) {
  const cap = c.capacity || {};
  const parts = [];
  if (cap.maxDrivers) parts.push(`${cap.maxDrivers} drivers`);
  if (cap.maxDriverCores) parts.push(`${cap.maxDriverCores} driver cores`);
  if (cap.maxDriverMemory) parts.push(`${cap.maxDriverMemory} driver memory`);
  return parts.join(', ') || 'unbounded';
}

/** A bar of `used` against `max` (a plain figure without a limit). */
function meter(label, used, max, unit = '') {
  const text = `${used}${unit}${max ? ` of ${max}${unit}` : ''}`;
  if (!max) return h('div', {}, `${label}: ${text}`);
  const bar = h('span');
  bar.style.width = `${Math.min(100, Math.round((100 * used) / max))}%`;
  return h('div', {},
    h('div', { class: 'meter', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': max,
      'aria-valuenow': used, 'aria-label': `${label} in use` }, bar),
    `${label}: ${text}`);
}

const mib = (s) => (s ? Number(String(s).replace(/m$/, '')) : 0);

function inUse(c) {
  const cap = c.capacity || {};
  const use = c.inUse || { drivers: 0, driverCores: 0, driverMemory: '0m' };
  return [
    meter('drivers', use.drivers, cap.maxDrivers),
    meter('driver cores', use.driverCores, cap.maxDriverCores),
    meter('driver memory', mib(use.driverMemory), mib(cap.maxDriverMemory), ' MiB'),
  ];
}

export async function clustersView(el) {
  const body = h('tbody');
  const queued = h('tbody');
  const editor = h('div', { id: 'cluster-editor' });
  const edit = (cluster) => {
    fill(editor, h('h2', {}, cluster ? `Change ${cluster.name}` : 'Register a cluster'),
      clusterForm(cluster, () => {
        fill(editor, addButton());
        guarded(load);
      }));
    editor.querySelector('input:not([readonly]), select').focus();
  };
  const remove = async (name) => {
    if (!confirm(`Remove cluster ${name}? Jobs can no longer run there.`)) return;
    await guarded(async () => {
      await del(`/api/v1/clusters/${encodeURIComponent(name)}`);
      await load();
    });
  };
  const addButton = () => h('button', { type: 'button', id: 'add-cluster', onclick: () => edit(null) }, 'Register a cluster');
  const manage = (c) => (isAdmin() && !c.builtIn ? h('td', {},
    h('button', { type: 'button', class: 'secondary', 'data-edit': c.name, onclick: () => edit(c) }, 'Change'), ' ',
    h('button', { type: 'button', class: 'secondary', 'data-remove': c.name, onclick: () => remove(c.name) }, 'Remove'))
    : h('td'));
  const load = async () => {
    const list = await get('/api/v1/clusters');
    const details = await Promise.all(list.clusters.map((c) => get(`/api/v1/clusters/${encodeURIComponent(c.name)}`)));
    fill(body, details.map((c) => h('tr', {},
      h('td', {}, c.name, c.builtIn ? h('span', { class: 'muted' }, ' (built in)') : null),
      h('td', {}, c.type),
      h('td', {}, Object.entries(c.connection || {}).map(([k, v]) => h('div', {}, `${k}: ${v}`))),
      h('td', {}, capacity(c)),
      h('td', { class: 'use' }, inUse(c)),
      h('td', { class: 'num' }, c.queuedJobs ?? 0),
      manage(c))));
    const waiting = await get(withQuery('/api/v1/jobs', { state: 'not_started', limit: 100 }));
    fill(queued, waiting.jobs.length ? waiting.jobs.map((j) => h('tr', {},
      h('td', { class: 'num' }, h('a', { href: `#/jobs/${j.id}` }, j.id)), h('td', {}, j.cluster),
      h('td', {}, stateBadge(j.state)), h('td', {}, j.reason || 'waiting for the scheduler')))
      : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'Nothing is waiting.')));
  };
  fill(el,
    h('h1', {}, 'Clusters'),
    h('table', { id: 'clusters' },
      h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Connection', 'Capacity', 'In use', 'Waiting', 'Manage'].map((t) => h('th', { scope: 'col' }, t)))),
      body),
    isAdmin() ? fill(editor, addButton()) : null,
    h('h2', {}, 'Waiting jobs'),
    h('table', { id: 'queued' },
      h('thead', {}, h('tr', {}, ['Job', 'Cluster', 'State', 'Why it waits'].map((t) => h('th', { scope: 'col' }, t)))),
      queued));
  await load();
  watch({}, debounce(() => guarded(load), 1000));
}
