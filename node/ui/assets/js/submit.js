// The forms that start a batch or a session (`POST /api/v1/batches`, `/api/v1/sessions`):
// the fields of Livy's body a person fills in by hand, conf as `key=value` lines.

import { get, post } from './api.js';
import { h, keyValues, showError, clearError } from './dom.js';

function field(id, label, attrs = {}) {
  const input = h(attrs.rows ? 'textarea' : 'input', { id, name: id, ...attrs });
  return h('label', { for: id }, label, input);
}

async function clusters(select) {
  try {
    const list = await get('/api/v1/clusters');
    for (const c of list.clusters) select.append(h('option', { value: c.name }, c.name));
  } catch (e) {
    showError(e);
  }
}

export function submitForms() {
  const cluster = (id) => {
    const s = h('select', { id, name: 'cluster' }, h('option', { value: '' }, 'default'));
    clusters(s);
    return h('label', { for: id }, 'Cluster', s);
  };
  const batch = h('form', { class: 'stack', id: 'submit-batch', 'aria-label': 'Submit a batch',
    onsubmit: async (e) => {
      e.preventDefault();
      clearError();
      const f = new FormData(batch);
      try {
        const body = { file: f.get('file').trim(), conf: keyValues('conf', f.get('conf')) };
        if (f.get('name').trim()) body.name = f.get('name').trim();
        if (f.get('className').trim()) body.className = f.get('className').trim();
        if (f.get('args').trim()) body.args = f.get('args').trim().split(/\s+/);
        if (f.get('cluster')) body.cluster = f.get('cluster');
        const job = await post('/api/v1/batches', body);
        location.hash = `#/jobs/${job.id}`;
      } catch (err) {
        showError(err);
      }
    } },
    field('file', 'Application file (.py or jar)', { required: true, placeholder: '/path/app.py or s3a://…' }),
    field('name', 'Name'),
    field('className', 'Main class (jars)'),
    field('args', 'Arguments (space-separated)'),
    field('conf', 'Spark conf (key=value per line)', { rows: 3 }),
    cluster('batch-cluster'),
    h('button', { type: 'submit' }, 'Submit batch'));
  const session = h('form', { class: 'inline', id: 'start-session', 'aria-label': 'Start a session',
    onsubmit: async (e) => {
      e.preventDefault();
      clearError();
      const f = new FormData(session);
      try {
        const body = { kind: f.get('kind') };
        if (f.get('cluster')) body.cluster = f.get('cluster');
        const job = await post('/api/v1/sessions', body);
        location.hash = `#/jobs/${job.id}/console`;
      } catch (err) {
        showError(err);
      }
    } },
    h('label', { for: 'session-kind' }, 'Session kind',
      h('select', { id: 'session-kind', name: 'kind' },
        h('option', { value: 'pyspark' }, 'pyspark'), h('option', { value: 'sql' }, 'sql'))),
    cluster('session-cluster'),
    h('button', { type: 'submit' }, 'Start session'));
  return h('details', { class: 'submit' },
    h('summary', {}, 'Run something'),
    h('h2', {}, 'A batch'), batch,
    h('h2', {}, 'A session'), session);
}
