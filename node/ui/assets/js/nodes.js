// The nodes page: the Raft members, which one leads and in which term, how far each has
// the Raft log (as the leader knows it), and this node's own health: its event log's end and
// how far its projections have read it.

import { get } from './api.js';
import { h, fill, guarded } from './dom.js';

export async function nodesView(el) {
  const members = h('tbody');
  const health = h('dl', { class: 'grid', id: 'health' });
  const summary = h('p', { id: 'cluster-summary' });
  const load = async () => {
    const [view, me] = await Promise.all([get('/api/v1/cluster'), get('/api/v1/health')]);
    const leader = view.leader_id;
    summary.textContent = `Term ${view.term}; leader: ${leader === null || leader === undefined ? 'none' : `node ${leader}`}; `
      + `this is node ${view.node_id}${view.scheduling ? ', which schedules' : ''}.`;
    fill(members, view.members.map((m) => h('tr', {},
      h('td', { class: 'num' }, m.id),
      h('td', {}, m.http_addr), h('td', {}, m.raft_addr),
      h('td', {}, m.leader ? 'leader' : m.voter ? 'follower' : 'learner'),
      h('td', { class: 'num' }, m.matched_index ?? ''))));
    fill(health,
      h('dt', {}, 'Event log end'), h('dd', {}, view.log_end),
      h('dt', {}, 'Projected up to'), h('dd', {}, view.projected),
      h('dt', {}, 'Projection lag (events)'), h('dd', { id: 'projection-lag' }, Math.max(0, view.log_end - view.projected)),
      Object.entries(me).filter(([, v]) => typeof v !== 'object')
        .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
  };
  fill(el, h('h1', {}, 'Nodes'), summary,
    h('table', { id: 'members' },
      h('thead', {}, h('tr', {}, ['Node', 'REST address', 'Raft address', 'Role', 'Raft log matched']
        .map((t) => h('th', { scope: 'col' }, t)))),
      members),
    h('h2', {}, 'This node'), health);
  await load();
  const timer = setInterval(() => {
    if (!el.isConnected || location.hash !== '#/nodes') return clearInterval(timer);
    guarded(load);
  }, 3000);
}
