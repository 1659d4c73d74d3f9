// The live stream (`/api/v1/stream`): one EventSource per view, with the view's filter. The
// browser reconnects by itself with `Last-Event-ID`, so nothing is missed; the view is
// told of each change and re-reads what it shows (a page, a job), never one row at a time.

let current = null;

/** Calls `onChange(event)` for each job or cluster change matching `filter`, until the next
 * `watch` (a view replaces the previous one's stream). */
export function watch(filter, onChange) {
  stop();
  const q = new URLSearchParams(filter || {}).toString();
  const source = new EventSource(q ? `/api/v1/stream?${q}` : '/api/v1/stream');
  const handle = (e) => {
    try {
      onChange(JSON.parse(e.data));
    } catch {
      // A message the view cannot read changes nothing it shows.
    }
  };
  source.addEventListener('job', handle);
  source.addEventListener('cluster', handle);
  current = source;
}

export function stop() {
  if (current) current.close();
  current = null;
}

/** A function that runs `work` at most once per `ms`, the last call winning. */
export function debounce(work, ms = 300) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(work, ms);
  };
}
