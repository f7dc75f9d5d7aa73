// Building DOM nodes safely. Every string child becomes a Text node and every attribute is set
// with setAttribute, so text from visitors (link texts, URLs, paths) can never become markup.
// Nothing in the dashboard uses innerHTML.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = String(value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function byId(id) {
  return document.getElementById(id);
}

// An http(s) URL that may go into an href, or null (javascript:, data:, relative, garbage).
export function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

// A link that leaves the dashboard: new tab, no opener, no referrer.
export function externalLink(url, label = url, props = {}) {
  const href = safeHref(url);
  if (href === null) return h('span', { ...props, title: url }, label);
  return h('a', { ...props, href, target: '_blank', rel: 'noopener noreferrer', title: url },
    label);
}

// Shows a panel's loading / error / ready state (styles and tests read data-state).
export function setState(el, state, message = '') {
  el.dataset.state = state;
  el.setAttribute('aria-busy', state === 'loading' ? 'true' : 'false');
  const note = el.querySelector(':scope > .panel-error');
  if (note) {
    note.textContent = state === 'error' ? message : '';
    note.hidden = state !== 'error';
  }
}
