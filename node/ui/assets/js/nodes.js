// The nodes page: the Raft members, which one leads and in which term, how far each has the
// Raft log (as the leader knows it), and each member's own health as it answers it: its
// event log's end, how far its projections have read it, and the lag between the two; a
// member that does not answer says why.

import { get } from './api.js';
import { h, fill, guarded } from './dom.js';

function health(m) {
  const hl = m.health;
  if (!hl) return [h('td'), h('td'), h('td'), h('td')];
  if (!hl.reachable) return [h('td', { class: 'state state-dead' }, `down: ${hl.error}`), h('td'), h('td'), h('td')];
  return [
    h('td', { class: 'state state-success' }, 'up'),
    h('td', { class: 'num' }, hl.log_end),
    h('td', { class: 'num' }, hl.projected),
    h('td', { class: 'num' }, Math.max(0, hl.log_end - hl.projected)),
  ];
}

export async function nodesView(el) {
  const members = h('tbody');
  const summary = h('p', { id: 'cluster-summary' });
  const load = async () => {
    const view = await get('/api/v1/cluster?health=true');
    const leader = view.leader_id;
    summary.textContent = `Term ${view.term}; leader: ${leader === null || leader === undefined ? 'none' : `node ${leader}`}; `
      + `this page is served by node ${view.node_id}${view.scheduling ? ', which schedules' : ''}.`;
    fill(members, view.members.map((m) => h('tr', { 'data-member': m.id },
      h('td', { class: 'num' }, m.id),
      h('td', {}, m.http_addr), h('td', {}, m.raft_addr),
      h('td', {}, m.leader ? 'leader' : m.voter ? 'follower' : 'learner'),
      h('td', { class: 'num' }, m.matched_index ?? ''),
      health(m))));
  };
  fill(el, h('h1', {}, 'Nodes'), summary,
    h('table', { id: 'members' },
      h('thead', {}, h('tr', {}, ['Node', 'REST address', 'Raft address', 'Role', 'Raft log matched',
        'Health', 'Event log end', 'Projected', 'Projection lag'].map((t) => h('th', { scope: 'col' }, t)))),
      members));
  await load();
  const timer = setInterval(() => {
    if (!el.isConnected || location.hash !== '#/nodes') return clearInterval(timer);
    guarded(load);
  }, 3000);
}
