// The admins' form that registers a cluster or changes one (`POST /api/v1/clusters`,
// `PUT /api/v1/clusters/{name}`): its type, connection and Spark conf as `key=value` lines,
// credentials by file path (a path in the node's credentials directory, never a secret), and
// its capacity.

import { api } from './api.js';
import { h, keyValues, showError, clearError } from './dom.js';

const TYPES = ['standalone', 'kubernetes', 'yarn', 'local'];
const CREDENTIALS = ['', 'none', 'tokenFile', 'kubeconfig', 'clientCertificate', 'keytab'];

function lines(map) {
  return Object.entries(map || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

function field(id, label, input) {
  return h('label', { for: id }, label, input);
}

/** The form, empty for a new cluster or filled from `cluster` to change it; `done` runs
 * after the node accepted it. */
export function clusterForm(cluster, done) {
  const editing = Boolean(cluster);
  const c = cluster || { connection: {}, sparkConf: {}, capacity: {} };
  const name = h('input', { id: 'cluster-name', name: 'name', required: true, value: c.name || '', readonly: editing });
  const type = h('select', { id: 'cluster-type', name: 'type' },
    TYPES.map((t) => h('option', { value: t, selected: t === c.type }, t)));
  const connection = h('textarea', { id: 'cluster-connection', name: 'connection', rows: 3 });
  connection.value = lines(c.connection);
  const credType = h('select', { id: 'cluster-credentials', name: 'credentials' },
    CREDENTIALS.map((t) => h('option', { value: t }, t || (editing ? 'keep as is' : 'none'))));
  const credPath = h('input', { id: 'cluster-credentials-path', name: 'credentialsPath', placeholder: '/etc/kindling/credentials/…' });
  const conf = h('textarea', { id: 'cluster-conf', name: 'sparkConf', rows: 2 });
  conf.value = lines(c.sparkConf);
  const cap = c.capacity || {};
  const number = (id, value) => h('input', { id, name: id, type: 'number', min: 1, value: value ?? '' });
  const maxDrivers = number('cluster-max-drivers', cap.maxDrivers);
  const maxCores = number('cluster-max-cores', cap.maxDriverCores);
  const maxMemory = h('input', { id: 'cluster-max-memory', name: 'maxDriverMemory', value: cap.maxDriverMemory || '', placeholder: 'e.g. 64g' });
  const form = h('form', { class: 'stack', id: 'cluster-form', 'aria-label': editing ? `Change cluster ${c.name}` : 'Register a cluster',
    onsubmit: async (e) => {
      e.preventDefault();
      clearError();
      try {
        const body = {
          name: name.value.trim(), type: type.value,
          connection: keyValues('connection', connection.value),
          sparkConf: keyValues('Spark conf', conf.value),
          capacity: {},
        };
        if (maxDrivers.value) body.capacity.maxDrivers = Number(maxDrivers.value);
        if (maxCores.value) body.capacity.maxDriverCores = Number(maxCores.value);
        if (maxMemory.value.trim()) body.capacity.maxDriverMemory = maxMemory.value.trim();
        if (credType.value) {
          body.credentials = { type: credType.value };
          if (credPath.value.trim()) body.credentials.path = credPath.value.trim();
        }
        if (editing) await api('PUT', `/api/v1/clusters/${encodeURIComponent(c.name)}`, body);
        else await api('POST', '/api/v1/clusters', body);
        done();
      } catch (err) {
        showError(err);
      }
    } },
    field('cluster-name', 'Name', name),
    field('cluster-type', 'Type', type),
    field('cluster-connection', 'Connection (key=value per line, e.g. restUrl=http://master:6066)', connection),
    field('cluster-credentials', 'Credentials', credType),
    field('cluster-credentials-path', 'Credentials file', credPath),
    field('cluster-conf', 'Spark conf (key=value per line)', conf),
    h('div', { class: 'filters' },
      field('cluster-max-drivers', 'Max drivers', maxDrivers),
      field('cluster-max-cores', 'Max driver cores', maxCores),
      field('cluster-max-memory', 'Max driver memory', maxMemory)),
    h('button', { type: 'submit' }, editing ? 'Save changes' : 'Register cluster'));
  return form;
}
