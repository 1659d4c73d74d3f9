// Small helpers to build the pages: elements from plain data (text is always text, never
// HTML), `key=value` lines, times and durations, the shared error banner.

/** An element `tag` with `attrs` (`on*` are listeners) and `children` (strings or nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces `el`'s content with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** `key=value` lines as an object; a line without `=` is an error naming `label` and it. */
export function keyValues(label, text) {
  const out = {};
  for (const [i, line] of text.split('\n').entries()) {
    const l = line.trim();
    if (!l) continue;
    const at = l.indexOf('=');
    if (at < 1) throw new Error(`${label} line ${i + 1} is not key=value: ${l}`);
    out[l.slice(0, at).trim()] = l.slice(at + 1).trim();
  }
  return out;
}

export function time(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString();
}

export function duration(fromMs, toMs) {
  if (!fromMs) return '';
  let s = Math.max(0, Math.round(((toMs || Date.now()) - fromMs) / 1000));
  const parts = [];
  for (const [unit, size] of [['h', 3600], ['m', 60]]) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  parts.push(`${s}s`);
  return parts.join(' ');
}

export function stateBadge(state) {
  return h('span', { class: `state state-${state}` }, state);
}

const banner = () => document.getElementById('error');

/** Shows the API's message (or any error's) in the banner, never a blank page. */
export function showError(e) {
  const el = banner();
  el.textContent = e && e.message ? e.message : String(e);
  el.hidden = false;
}

export function clearError() {
  const el = banner();
  el.hidden = true;
  el.textContent = '';
}

/** Runs `work`, showing its failure in the banner. */
export async function guarded(work) {
  try {
    return await work();
  } catch (e) {
    showError(e);
    return undefined;
  }
}
