// A small fake of the browser globals the tracker touches, enough to run clickport.js (the
// source or the minified build) in a node vm context and watch the beacons it sends. It is a
// test double: events are dispatched synchronously, time only moves when a test calls advance().
// Kept outside test/ because node --test runs every .js file under test/.
'use strict';
const vm = require('node:vm');

function eventTarget() {
  const listeners = {};
  return {
    listeners,
    addEventListener(type, fn, opts) {
      (listeners[type] = listeners[type] || []).push({ fn, opts });
    },
    dispatch(type, event = {}) {
      for (const l of listeners[type] || []) l.fn(Object.assign({ type }, event));
    },
  };
}

function memoryStorage(broken) {
  const data = new Map();
  const fail = () => { throw new Error('SecurityError: storage is disabled'); };
  return {
    data,
    getItem: (k) => (broken ? fail() : data.has(k) ? data.get(k) : null),
    setItem: (k, v) => (broken ? fail() : data.set(k, String(v))),
  };
}

// An <a> element. href is as written; `svg` makes it an SVG anchor (href.baseVal).
function anchor(href, { text = '', attrs = {}, imgAlt, svg = false, pageUrl = 'https://example.com/' } = {}) {
  const all = Object.assign(href == null ? {} : { href }, attrs);
  const a = {
    localName: 'a',
    getAttribute: (n) => (n in all ? all[n] : null),
    querySelector: (s) => (s === 'img[alt]' && imgAlt != null ? { getAttribute: () => imgAlt } : null),
  };
  if (svg) {
    a.href = { baseVal: href == null ? '' : href };
    a.textContent = text;
  } else {
    a.href = href == null ? '' : new URL(href, pageUrl).href;
    a.innerText = text;
  }
  return a;
}

function element(localName, text = '') {
  return { localName, innerText: text, getAttribute: () => null };
}

/**
 * Builds the globals, runs `code` in them and returns handles for the test.
 * options: url, referrer, hidden, prerendering, scriptAttrs (null = no currentScript), session/local
 * (initial storage entries), brokenStorage, transport: 'ok' | 'reject' | 'throw' | 'none'.
 */
function loadTracker(code, options = {}) {
  const o = Object.assign({
    url: 'https://example.com/',
    referrer: '',
    hidden: false,
    prerendering: false,
    scriptAttrs: { src: 'https://cdn.clickport.test/js/clickport.js', 'data-domain': 'example.com' },
    session: {},
    local: {},
    brokenStorage: false,
    transport: 'ok',
  }, options);

  let clock = 1000;
  let href = o.url;
  const sent = [];
  const fetchCalls = [];
  const resizeCallbacks = [];

  const win = eventTarget();
  const doc = eventTarget();
  const scroller = { scrollTop: 0, scrollHeight: 1000, clientHeight: 1000 };
  const script = o.scriptAttrs && {
    src: o.scriptAttrs.src || '',
    getAttribute: (n) => (n in o.scriptAttrs ? o.scriptAttrs[n] : null),
  };
  const location = {
    get href() { return href; },
    get pathname() { return new URL(href).pathname; },
    get hostname() { return new URL(href).hostname; },
  };
  // Like the real one, history refuses a URL of another origin with a SecurityError.
  const move = (url) => {
    if (url == null) return;
    const next = new URL(url, href);
    if (next.origin !== new URL(href).origin) throw new Error('SecurityError: cross-origin history URL');
    href = next.href;
  };
  const history = {
    pushState(state, title, url) { move(url); },
    replaceState(state, title, url) { move(url); },
  };
  Object.assign(doc, {
    currentScript: script,
    querySelector: () => script,
    hidden: o.hidden,
    prerendering: o.prerendering,
    referrer: o.referrer,
    get baseURI() { return href; },
    scrollingElement: scroller,
    documentElement: scroller,
    body: {},
  });
  const sessionStorage = memoryStorage(o.brokenStorage);
  const localStorage = memoryStorage(o.brokenStorage);
  for (const [k, v] of Object.entries(o.session)) sessionStorage.data.set(k, v);
  for (const [k, v] of Object.entries(o.local)) localStorage.data.set(k, v);

  const navigator = {};
  if (o.transport !== 'none') {
    navigator.sendBeacon = (url, body) => {
      sent.push(Object.assign({ via: 'sendBeacon', url }, JSON.parse(body)));
      return true;
    };
  }

  const sandbox = Object.assign(win, {
    document: doc,
    location,
    history,
    navigator,
    sessionStorage,
    localStorage,
    performance: { now: () => clock },
    URL,
    crypto: globalThis.crypto,
    btoa: globalThis.btoa,
    ResizeObserver: class {
      constructor(cb) { this.cb = cb; }
      observe() { resizeCallbacks.push(this.cb); }
    },
  });
  sandbox.window = sandbox;
  if (o.transport === 'ok' || o.transport === 'reject') {
    sandbox.fetch = (url, init) => {
      fetchCalls.push({ url, init });
      sent.push(Object.assign({ via: 'fetch', url }, JSON.parse(init.body)));
      return o.transport === 'ok' ? Promise.resolve({ ok: true }) : Promise.reject(new TypeError('Failed to fetch'));
    };
  } else if (o.transport === 'throw') {
    sandbox.fetch = () => { throw new TypeError('keepalive not supported'); };
  }

  const context = vm.createContext(sandbox);
  vm.runInContext(code, context);

  return {
    window: sandbox,
    document: doc,
    sessionStorage,
    localStorage,
    sent,
    fetchCalls,
    types: () => sent.map((b) => b.t),
    // Runs the script a second time in the same page (a site that includes the tag twice).
    runAgain() { vm.runInContext(code, context); },
    advance(ms) { clock += ms; },
    scrollTo(top, height = scroller.scrollHeight) {
      scroller.scrollTop = top;
      scroller.scrollHeight = height;
      win.dispatch('scroll');
    },
    resizeTo(height) {
      scroller.scrollHeight = height;
      for (const cb of resizeCallbacks) cb([]);
    },
    setHidden(hidden) {
      doc.hidden = hidden;
      doc.dispatch('visibilitychange');
    },
    // The user follows a full URL change the browser handles itself (back/forward).
    popTo(url) {
      href = new URL(url, href).href;
      win.dispatch('popstate');
    },
    // A click event on `target`, bubbling through `ancestors` (composedPath order).
    click(target, ancestors = [], init = {}) {
      const event = Object.assign({
        button: 0,
        detail: 1,
        defaultPrevented: false,
        composedPath: () => [target, ...ancestors, doc.body, doc, sandbox],
        preventDefault() { event.defaultPrevented = true; },
        stopPropagation() {},
      }, init);
      doc.dispatch(init.type || 'click', event);
      return event;
    },
  };
}

module.exports = { loadTracker, anchor, element };
