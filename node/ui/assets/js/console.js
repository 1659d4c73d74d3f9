// A session's console: the statement history as cells, and a new cell for pyspark or SQL.
// Text output as text, SQL results (a DataFrame's schema and rows) as tables, errors with
// their traceback. A running cell can be cancelled; Tab asks the driver for completions.

import { get, post } from './api.js';
import { h, fill, stateBadge, guarded, showError, clearError } from './dom.js';
import { watch, debounce } from './stream.js';
import { mayChange } from './login.js';

const DONE = ['available', 'cancelled', 'error'];

/** A statement's output as the page shows it. */
function output(st) {
  const out = st.output;
  if (!out) return h('div', { class: 'out muted' }, st.state === 'cancelled' ? 'cancelled' : `${st.state}…`);
  if (out.status === 'error') {
    const trace = (out.traceback || []).join('');
    return h('div', { class: 'out err' }, h('pre', {}, `${out.ename}: ${out.evalue}\n${trace}`));
  }
  const data = out.data || {};
  const table = data['application/json'];
  if (table && table.schema && Array.isArray(table.schema.fields) && Array.isArray(table.data)) {
    const names = table.schema.fields.map((f) => f.name);
    return h('div', { class: 'out' }, h('table', { class: 'result' },
      h('thead', {}, h('tr', {}, names.map((n) => h('th', { scope: 'col' }, n)))),
      h('tbody', {}, table.data.map((row) => h('tr', {},
        (Array.isArray(row) ? row : names.map((n) => row[n])).map((v) => h('td', {}, v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v))))))));
  }
  const text = data['text/plain'] ?? (table !== undefined ? JSON.stringify(table) : '');
  return h('div', { class: 'out' }, h('pre', {}, text));
}

function cell(st, onCancel) {
  const running = !DONE.includes(st.state);
  return h('section', { class: 'cell', 'data-statement': st.id, 'aria-label': `Statement ${st.id}` },
    h('pre', { class: 'code' }, st.code),
    h('div', { class: 'bar2' }, h('span', {}, `#${st.id}`), stateBadge(st.state),
      running && onCancel ? h('button', { type: 'button', class: 'secondary cancel', onclick: () => onCancel(st.id) }, 'Cancel') : null),
    output(st));
}

export async function consoleView(el, id) {
  const hash = location.hash;
  const alive = () => el.isConnected && location.hash === hash;
  const job = await get(`/api/v1/jobs/${id}`);
  if (job.type !== 'session') {
    location.hash = `#/jobs/${id}`;
    return;
  }
  const state = h('span', { id: 'session-state' }, stateBadge(job.state));
  const history = h('div', { id: 'history', 'aria-live': 'polite' });
  const code = h('textarea', { id: 'code', name: 'code', spellcheck: 'false', 'aria-label': 'Code', rows: 5 });
  const kind = h('select', { id: 'cell-kind', name: 'kind' },
    ['pyspark', 'sql'].map((k) => h('option', { value: k, selected: k === job.kind }, k)));
  const candidates = h('div', { class: 'candidates', id: 'candidates', 'aria-live': 'polite' });
  const run = h('button', { type: 'submit', id: 'run' }, 'Run');

  const cancel = (sid) => guarded(() => post(`/api/v1/jobs/${id}/statements/${sid}/cancel`));
  const load = async () => {
    const list = await get(`/api/v1/jobs/${id}/statements`);
    fill(history, list.statements.map((st) => cell(st, mayChange() ? cancel : null)));
  };
  const follow = async (sid) => {
    while (alive()) {
      const st = await get(`/api/v1/jobs/${id}/statements/${sid}?wait=20s`);
      const shown = history.querySelector(`[data-statement="${sid}"]`);
      const fresh = cell(st, cancel);
      if (shown) shown.replaceWith(fresh); else history.append(fresh);
      if (DONE.includes(st.state)) return;
    }
  };
  const submit = async (e) => {
    e.preventDefault();
    clearError();
    if (!code.value.trim()) return;
    run.disabled = true;
    try {
      const st = await post(`/api/v1/jobs/${id}/statements`, { code: code.value, kind: kind.value });
      history.append(cell(st, cancel));
      code.value = '';
      fill(candidates);
      follow(st.id).catch(showError);
    } catch (err) {
      showError(err);
    } finally {
      run.disabled = false;
      code.focus();
    }
  };
  const complete = async () => {
    const cursor = code.selectionStart;
    const answer = await post(`/sessions/${id}/completion`, { code: code.value, kind: kind.value, cursor });
    const words = answer.candidates || [];
    // The word being completed, as the driver saw it (`spark.ran`): a candidate that
    // extends it adds its rest; any other replaces it.
    const token = (code.value.slice(0, cursor).match(/[\w.]*$/) || [''])[0];
    const insert = (word) => {
      if (word.startsWith(token)) code.setRangeText(word.slice(token.length), cursor, cursor, 'end');
      else code.setRangeText(word, cursor - token.length, cursor, 'end');
      fill(candidates);
      code.focus();
    };
    if (words.length === 1) return insert(words[0]);
    fill(candidates, words.length ? words.slice(0, 50).map((w) => h('button', { type: 'button', class: 'secondary', onclick: () => insert(w) }, w))
      : h('span', { class: 'muted' }, 'no completions'));
  };
  code.addEventListener('keydown', (e) => {
    // Tab completes a word the cursor ends; anywhere else it moves on, as Tab does.
    if (e.key === 'Tab' && !e.shiftKey && /[\w.]$/.test(code.value.slice(0, code.selectionStart))) {
      e.preventDefault();
      guarded(complete);
    } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey || e.shiftKey)) {
      submit(e);
    }
  });
  const form = h('form', { id: 'new-cell', class: 'cell', onsubmit: submit, 'aria-label': 'New statement' },
    code, candidates,
    h('div', { class: 'bar2' }, h('label', { for: 'cell-kind' }, 'Kind', kind), run,
      h('span', { class: 'muted' }, 'Shift+Enter runs; Tab after a word completes it')));
  fill(el,
    h('p', {}, h('a', { href: `#/jobs/${id}` }, `← Job ${id}`)),
    h('h1', {}, `Session ${id} `, state),
    history,
    mayChange() ? form : h('p', { class: 'muted' }, 'Viewers cannot run statements.'));
  await load();
  watch({ job: id }, debounce(() => guarded(async () => {
    const j = await get(`/api/v1/jobs/${id}`);
    fill(state, stateBadge(j.state));
  })));
  if (mayChange()) code.focus();
}
