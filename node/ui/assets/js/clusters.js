// The clusters page: every registered cluster, its kind, where it is, its capacity, and the
// jobs on it that have not ended; the queued ones say why they wait.

import { get, withQuery } from './api.js';
import { h, fill, stateBadge, guarded } from './dom.js';
import { watch, debounce } from './stream.js';

function capacity(c) {
  const cap = c.capacity || {};
  const parts = [];
  if (cap.maxDrivers) parts.push(`${cap.maxDrivers} drivers`);
  if (cap.maxDriverCores) parts.push(`${cap.maxDriverCores} driver cores`);
  if (cap.maxDriverMemory) parts.push(`${cap.maxDriverMemory} driver memory`);
  return parts.join(', ') || 'unbounded';
}

function meter(used, max) {
  if (!max) return h('span', {}, `${used}`);
  const pct = Math.min(100, Math.round((100 * used) / max));
  const bar = h('span');
  bar.style.width = `${pct}%`;
  return h('div', {}, h('div', { class: 'meter', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': max, 'aria-valuenow': used, 'aria-label': 'drivers in use' }, bar), `${used} of ${max}`);
}

export async function clustersView(el) {
  const body = h('tbody');
  const queued = h('tbody');
  const load = async () => {
    const list = await get('/api/v1/clusters');
    const details = await Promise.all(list.clusters.map((c) => get(`/api/v1/clusters/${encodeURIComponent(c.name)}`)));
    fill(body, details.map((c) => h('tr', {},
      h('td', {}, c.name, c.builtIn ? h('span', { class: 'muted' }, ' (built in)') : null),
      h('td', {}, c.type),
      h('td', {}, Object.entries(c.connection || {}).map(([k, v]) => h('div', {}, `${k}: ${v}`))),
      h('td', {}, capacity(c)),
      h('td', {}, meter(c.activeJobs || 0, c.capacity && c.capacity.maxDrivers)))));
    const waiting = await get(withQuery('/api/v1/jobs', { state: 'not_started', limit: 100 }));
    fill(queued, waiting.jobs.length ? waiting.jobs.map((j) => h('tr', {},
      h('td', { class: 'num' }, h('a', { href: `#/jobs/${j.id}` }, j.id)), h('td', {}, j.cluster),
      h('td', {}, stateBadge(j.state)), h('td', {}, j.reason || 'waiting for the scheduler')))
      : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'Nothing is waiting.')));
  };
  fill(el,
    h('h1', {}, 'Clusters'),
    h('table', { id: 'clusters' },
      h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Connection', 'Capacity', 'Jobs not ended'].map((t) => h('th', { scope: 'col' }, t)))),
      body),
    h('h2', {}, 'Waiting jobs'),
    h('table', { id: 'queued' },
      h('thead', {}, h('tr', {}, ['Job', 'Cluster', 'State', 'Why it waits'].map((t) => h('th', { scope: 'col' }, t)))),
      queued));
  await load();
  watch({}, debounce(() => guarded(load), 1000));
}
