// The REST API as the UI calls it: same origin, the session cookie, `X-Requested-By` on
// every request (the node refuses a change by cookie without it), and an error that carries
// the API's own message.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls `method path` with a JSON `body`; resolves to the parsed answer. */
export async function api(method, path, body, headers = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { 'X-Requested-By': 'kindling-ui', Accept: 'application/json', ...headers },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the node: ${e.message}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const msg = (data && data.msg) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, msg);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const del = (path) => api('DELETE', path);

/** `path` with the query `params` whose values are not empty. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
