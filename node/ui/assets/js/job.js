// A job's page: what it is (its specification, with credential-like conf redacted by the
// API), where it stands and why, a timeline of its history (who did what, when, on which
// node and term), its driver's log with a live tail and a search, and kill and delete
// behind a confirmation. The job and the timeline follow the live stream; the log is read
// again every two seconds while the tail is on and the job has not ended.

import { get, post, del } from './api.js';
import { h, fill, time, duration, stateBadge, guarded, showError } from './dom.js';
import { watch, debounce } from './stream.js';
import { mayChange } from './login.js';

const ENDED = ['success', 'dead', 'error', 'killed'];
const LOG_LINES = 1000;

function describe(e) {
  const d = e.data || {};
  const bits = [];
  for (const k of ['state', 'reason', 'exitCode', 'exit_code', 'driverId', 'driver_id', 'appId', 'app_id', 'attempt']) {
    if (d[k] !== undefined && d[k] !== null && typeof d[k] !== 'object') bits.push(`${k}: ${d[k]}`);
  }
  return bits.join(', ');
}

function timelineItem(e) {
  const who = e.actor ? ` by ${e.actor}` : '';
  const where = `node ${e.node}${e.term ? `, term ${e.term}` : ''}`;
  return h('li', {},
    h('span', { class: 'when' }, time(e.at)),
    h('strong', {}, e.type), who, h('span', { class: 'muted' }, ` (${e.origin}, ${where}) `),
    describe(e));
}

function detail(label, value) {
  return [h('dt', {}, label), h('dd', {}, value ?? '')];
}

/** A retried attempt of the job, and how it ended. */
function retriedAttempt(a) {
  const code = a.exitCode !== null && a.exitCode !== undefined ? `, exit code ${a.exitCode}` : '';
  return detail(`Attempt ${a.attempt}`, `${a.outcome}${code}: ${a.reason}`);
}

export async function jobView(el, id) {
  const hash = location.hash;
  const alive = () => el.isConnected && location.hash === hash;
  const details = h('dl', { class: 'grid', id: 'job-details' });
  const actions = h('div', { class: 'actions' });
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const spec = h('pre', { id: 'job-spec' });
  const log = h('pre', { class: 'log', id: 'job-log', tabindex: 0, 'aria-label': 'Driver log' });
  const logInfo = h('span', { class: 'muted' });
  const search = h('input', { id: 'log-search', type: 'search', placeholder: 'lines containing…' });
  const tail = h('input', { id: 'log-tail', type: 'checkbox', checked: true });
  let job = null;
  let lines = [];

  const renderLog = () => {
    const needle = search.value;
    const shown = needle ? lines.filter((l) => l.includes(needle)) : lines;
    fill(log, shown.map((l) => {
      if (!needle) return `${l}\n`;
      const at = l.indexOf(needle);
      return h('span', {}, l.slice(0, at), h('mark', {}, needle), l.slice(at + needle.length), '\n');
    }));
    if (tail.checked && !needle) log.scrollTop = log.scrollHeight;
  };
  const loadLog = async () => {
    const l = await get(`/api/v1/jobs/${id}/log?size=${LOG_LINES}`);
    lines = l.log || [];
    logInfo.textContent = l.total ? `lines ${l.from + 1}-${l.from + lines.length} of ${l.total}` : 'no output yet';
    renderLog();
  };
  const loadJob = async () => {
    job = await get(`/api/v1/jobs/${id}`);
    fill(details,
      detail('State', [stateBadge(job.state), job.killRequested && !ENDED.includes(job.state) ? ' (kill requested)' : '']),
      job.reason ? detail('Reason', job.reason) : null,
      detail('Kind', job.kind ? `${job.type} (${job.kind})` : job.type),
      detail('Owner', job.owner), job.proxyUser ? detail('Runs as', job.proxyUser) : null,
      detail('Cluster', job.cluster),
      detail('Queue', job.priority ? `${job.queue}, priority ${job.priority}` : job.queue),
      job.file ? detail('Application', job.file) : null,
      detail('Attempt', job.restartPolicy ? `${job.attempt} of ${job.restartPolicy.maxAttempts}` : job.attempt),
      job.retryAt ? detail('Next attempt', time(job.retryAt)) : null,
      ...(job.retried || []).map(retriedAttempt),
      job.driverId ? detail('Driver', job.driverId) : null,
      job.appId ? detail('Application id', job.appId) : null,
      job.sparkUiUrl ? detail('Spark UI', h('a', { href: job.sparkUiUrl, rel: 'noopener' }, job.sparkUiUrl)) : null,
      job.exitCode !== null && job.exitCode !== undefined ? detail('Exit code', job.exitCode) : null,
      detail('Submitted', time(job.submittedAt)),
      job.startedAt ? detail('Started', time(job.startedAt)) : null,
      job.finishedAt ? detail('Finished', time(job.finishedAt)) : null,
      job.startedAt ? detail('Duration', duration(job.startedAt, job.finishedAt)) : null,
      job.type === 'session' ? detail('Statements', job.statements) : null);
    const ended = ENDED.includes(job.state);
    fill(actions,
      job.type === 'session' && !ended ? h('a', { class: 'button', href: `#/jobs/${id}/console`, id: 'open-console' }, 'Open console') : null,
      mayChange() && !ended ? h('button', { type: 'button', class: 'danger', id: 'kill', onclick: kill }, 'Kill') : null,
      mayChange() && !job.deleted ? h('button', { type: 'button', class: 'secondary', id: 'delete', onclick: remove }, 'Delete') : null);
  };
  const loadEvents = async () => {
    const history = await get(`/api/v1/jobs/${id}/events`);
    const events = history.events || [];
    fill(timeline, events.map(timelineItem));
    const submitted = events.find((e) => e.type === 'JobSubmitted');
    if (submitted) spec.textContent = JSON.stringify(submitted.data.spec ?? submitted.data, null, 2);
  };
  async function kill() {
    if (!confirm(`Kill job ${id}? Its driver is stopped.`)) return;
    await guarded(async () => {
      await post(`/api/v1/jobs/${id}/kill`);
      await loadJob();
    });
  }
  async function remove() {
    if (!confirm(`Delete job ${id}? It is stopped and leaves Livy's lists.`)) return;
    await guarded(async () => {
      await del(`/${job.type === 'session' ? 'sessions' : 'batches'}/${id}`);
      location.hash = '#/jobs';
    });
  }

  search.addEventListener('input', renderLog);
  fill(el,
    h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
    h('h1', { id: 'job-title' }, `Job ${id}`),
    details, actions,
    h('h2', {}, 'Log'),
    h('div', { class: 'filters' },
      h('label', { for: 'log-search' }, 'Search', search),
      h('label', { for: 'log-tail', class: 'inline' }, h('span', {}, 'Follow'), tail),
      logInfo),
    log,
    h('h2', {}, 'Timeline'), timeline,
    h('h2', {}, 'Specification'), spec);
  await loadJob();
  document.getElementById('job-title').textContent = `Job ${id}${job.name ? `: ${job.name}` : ''}`;
  await Promise.all([loadEvents(), loadLog().catch(showError)]);
  watch({ job: id }, debounce(() => guarded(async () => {
    await loadJob();
    await loadEvents();
  })));
  const timer = setInterval(() => {
    if (!alive()) return clearInterval(timer);
    if (tail.checked && job && !ENDED.includes(job.state)) guarded(loadLog);
  }, 2000);
  // One last read once it has ended, for the lines written at the end.
  const settle = setInterval(() => {
    if (!alive()) return clearInterval(settle);
    if (job && ENDED.includes(job.state)) {
      clearInterval(settle);
      guarded(loadLog);
    }
  }, 1000);
}
