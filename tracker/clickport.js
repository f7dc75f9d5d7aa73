/*
 * Clickport tracker (spec T1-T11): pageviews, a per-tab session id, engagement (scroll depth
 * and visible time) and automatic outbound-link clicks, posted as text/plain JSON beacons.
 *
 * Guarantees: no dependencies; plain ES2017 (no `?.`, `??` or object spread, so it parses in
 * every browser that has fetch keepalive); every entry point from the page (listeners, the
 * history wrappers, the public API) runs inside try/catch, so it never throws into the page;
 * it never calls preventDefault and never waits on the network, so a navigation is never
 * delayed; a beacon that fails is dropped, never retried. The pure rules at the top are
 * exported to node for the tests; the browser part installs itself only when `document` exists.
 */
(function () {
  'use strict';

  // ---- Pure rules (exported for tests) --------------------------------------------------

  // One leading "www." does not make another site (T5); URL hostnames are already lower case.
  function siteHost(host) {
    return host.replace(/^www\./, '');
  }

  // data-outbound-paths="/go/,/recommends/" -> ['/go', '/recommends'] (T6). An absent attribute
  // means the default '/go/'; an empty one means none. Empty and '/' entries are dropped, since
  // they would make every page of the site "outbound".
  function parsePrefixes(attr) {
    return (attr == null ? '/go/' : attr).split(',').map(function (p) {
      return p.trim().replace(/^\/*/, '/').replace(/\/+$/, '');
    }).filter(Boolean);
  }

  // A path is an internal redirect when it is a base exactly or continues it with '/':
  // '/go' and '/go/x' are, '/gopher' and '/going' are not. Case-sensitive, like URL paths.
  function isRedirectPath(path, bases) {
    return bases.some(function (b) {
      return path == b || path.indexOf(b + '/') == 0;
    });
  }

  var ASIN = /^[a-z0-9]{10}$/i;

  // T7: the 10-character code after /dp/ or /gp/product/ on a host containing "amazon".
  function amazonAsin(u) {
    var m = /amazon/.test(u.hostname) && /\/(?:dp|gp\/product)\/([a-z0-9]{10})(?![a-z0-9])/i.exec(u.pathname);
    return m ? m[1].toUpperCase() : undefined;
  }

  // T5-T7: {cu, ca} when `href` (as written in the link, resolved against `base`, default the
  // page) is an outbound click from `page`; undefined otherwise.
  function classifyLink(href, page, bases, base) {
    try {
      if (href == null || /^\s*(#|$)/.test(href)) return;
      var u = new URL(href, base || page), a;
      if (!/^https?:$/.test(u.protocol)) return;
      if (siteHost(u.hostname) != siteHost(new URL(page).hostname)) a = amazonAsin(u);
      else if (isRedirectPath(u.pathname, bases)) {
        a = u.searchParams.get('asin');
        // Only a well-formed ASIN is sent, so a junk parameter cannot get the click rejected.
        a = ASIN.test(a) ? a.toUpperCase() : undefined;
      } else return;
      return { cu: u.href.slice(0, 2048), ca: a };
    } catch (e) {}
  }

  // Whitespace collapsed, trimmed, at most 200 characters (code points, never half an emoji).
  function cleanText(s) {
    return s ? Array.from(String(s).replace(/\s+/g, ' ').trim()).slice(0, 200).join('').trim() : '';
  }

  // T8: the visible text, else aria-label, title, then the first img[alt].
  function linkText(a) {
    var img = a.querySelector && a.querySelector('img[alt]');
    return [
      a.innerText != null ? a.innerText : a.textContent,
      a.getAttribute('aria-label'),
      a.getAttribute('title'),
      img && img.getAttribute('alt')
    ].map(cleanText).find(Boolean) || '';
  }

  // T8: middle button, then a held modifier (so ctrl+Enter is 'modifier'), then keyboard.
  // Alt is not a modifier here: alt+click downloads, it does not open a tab.
  function clickKind(e) {
    return e.button == 1 ? 'middle'
      : e.ctrlKey || e.metaKey || e.shiftKey ? 'modifier'
      : e.detail === 0 ? 'keyboard' : 'primary';
  }

  // T4: scroll position / scrollable height as 0-100; 0 when the page cannot scroll.
  function scrollDepth(top, height, view) {
    var h = height - view;
    return h > 0 ? Math.max(0, Math.min(100, Math.round(top / h * 100))) : 0;
  }

  // T11: a flat object of strings with at most 30 keys; null and undefined values are left out.
  function customProps(props) {
    var p = {};
    Object.keys(Object(props)).slice(0, 30).forEach(function (k) {
      if (props[k] != null) p[k] = String(props[k]);
    });
    return p;
  }

  // T3: 128 random bits as 22 characters of base64url.
  function newSessionId() {
    return btoa(String.fromCharCode.apply(0, crypto.getRandomValues(new Uint8Array(16))))
      .slice(0, 22).replace(/\+/g, '-').replace(/\//g, '_');
  }

  // ---- Browser part ---------------------------------------------------------------------

  function safe(f) {
    return function (a, b) {
      try { return f(a, b); } catch (e) {}
    };
  }

  function install() {
    var w = window, d = document, H = history;
    if (w.clickport) return; // loaded twice: the first copy already tracks
    var s = d.currentScript || d.querySelector('script[data-domain]'),
      attr = function (n) { return s && s.getAttribute('data-' + n); },
      domain = attr('domain') || location.hostname,
      endpoint = attr('api') || new URL(s && s.src || '', location.href).origin + '/api/event',
      bases = parsePrefixes(attr('outbound-paths')),
      now = function () { return performance.now(); },
      sid, pageUrl, pageKey, pagePath, depth, sentDepth, visibleMs, since, lastLink, lastClickAt;

    function on(target, type, f, opts) {
      target.addEventListener(type, safe(f), opts);
    }

    function sessionId() {
      if (!sid) {
        try { sid = sessionStorage.getItem('cp_sid'); } catch (e) {}
        if (!/^[\w-]{16,64}$/.test(sid)) {
          sid = newSessionId();
          // Storage can be blocked; the id then lives as long as this page.
          try { sessionStorage.setItem('cp_sid', sid); } catch (e) {}
        }
      }
      return sid;
    }

    function ignored() {
      try { return localStorage.getItem('clickport_ignore') == 'true'; } catch (e) {}
    }

    // T9. A string body is sent as text/plain;charset=UTF-8 by both fetch and sendBeacon, a
    // CORS-safelisted type, so there is no preflight. A rejected fetch is dropped, not retried.
    function beacon(type, payload) {
      if (ignored()) return;
      var body = JSON.stringify(Object.assign({ d: domain, u: location.href, sid: sessionId() }, payload, { t: type }));
      try {
        fetch(endpoint, { method: 'POST', keepalive: true, body: body }).catch(function () {});
      } catch (e) {
        navigator.sendBeacon(endpoint, body);
      }
    }

    // ---- Engagement (T4)
    function pause() {
      if (since) { visibleMs += now() - since; since = 0; }
    }
    function resume() {
      if (!since && !d.hidden) since = now();
    }
    function measure() {
      var e = d.scrollingElement || d.documentElement,
        v = scrollDepth(e.scrollTop, e.scrollHeight, e.clientHeight);
      if (v > depth) depth = v;
    }
    // Sends the page's engagement when it changed since the page's previous engagement beacon.
    function leave() {
      var vt = Math.round(visibleMs + (since ? now() - since : 0));
      if (pageUrl && (vt || depth > sentDepth)) {
        beacon('e', { u: pageUrl, sd: depth, vt: vt });
        sentDepth = depth;
        visibleMs = 0;
        if (since) since = now();
      }
    }

    // ---- Pageviews (T2). The hash is not part of a page, so in-page anchors are not pageviews.
    function pageview() {
      var h = location.href, key = h.split('#')[0], r = pageUrl || d.referrer;
      // A prerendered page the user never opens is no pageview: it counts on activation.
      if (key == pageKey || d.prerendering) return;
      leave();
      pageUrl = h;
      pageKey = key;
      pagePath = location.pathname;
      depth = sentDepth = visibleMs = 0;
      if (since) since = now();
      // A client-side navigation names the previous page as referrer, as a full load would.
      beacon('p', r ? { r: r } : {});
    }

    // ---- Outbound clicks (T5-T8)
    function onClick(e) {
      if (e.button != (e.type == 'click' ? 0 : 1)) return;
      var path = e.composedPath(), i = 0, n, raw, info, t;
      for (; (n = path[i]); i++) {
        // SVG anchors: href is an SVGAnimatedString whose baseVal holds href or xlink:href.
        raw = n.localName == 'a' && (n.href && n.href.baseVal != null ? n.href.baseVal : n.getAttribute('href'));
        if (raw) break;
      }
      info = n && classifyLink(raw, location.href, bases, d.baseURI);
      if (!info) return;
      t = now();
      if (n == lastLink && t - lastClickAt < 1000) return; // a double click is one click
      lastLink = n;
      lastClickAt = t;
      info.ct = linkText(n);
      info.ck = clickKind(e);
      beacon('c', info);
    }

    ['pushState', 'replaceState'].forEach(function (m) {
      var orig = H[m];
      H[m] = function () {
        var r = orig.apply(this, arguments); // the page's own errors stay the page's
        try {
          if (m == 'pushState' || location.pathname != pagePath) pageview();
        } catch (e) {}
        return r;
      };
    });
    on(w, 'popstate', pageview);
    on(d, 'click', onClick, true);
    on(d, 'auxclick', onClick, true);
    on(w, 'scroll', measure, { passive: true });
    on(d, 'visibilitychange', function () {
      if (d.hidden) { pause(); leave(); } else resume();
    });
    on(w, 'blur', pause);
    on(w, 'focus', resume);
    // Leaving stops the timer too: Chromium fires pagehide before visibilitychange, and a
    // still-running timer would make a second beacon of the few ms in between.
    on(w, 'pagehide', function () { pause(); leave(); });
    on(d, 'prerenderingchange', pageview);
    // Back/forward from the bfcache shows the page again without a load: a new pageview,
    // whose engagement starts afresh (the previous one was sent on pagehide).
    on(w, 'pageshow', function (e) {
      if (e.persisted) {
        pageKey = pageUrl = 0;
        pageview();
        measure();
        resume();
      }
    });
    w.clickport = { beacon: safe(beacon), track: safe(function (name, props) {
      if (name) beacon('x', { n: String(name), p: customProps(props) });
    }) };

    resume();
    pageview();
    measure();
    try { new ResizeObserver(safe(measure)).observe(d.body || d.documentElement); } catch (e) {}
  }

  if (typeof document != 'undefined') safe(install)();

  // Node (the tests) gets the pure rules. The served build drops this block: scripts/size.mjs
  // defines CLICKPORT_BUNDLE, so the browser never pays bytes for it.
  if (typeof CLICKPORT_BUNDLE == 'undefined' && typeof module != 'undefined' && module.exports) {
    module.exports = {
      siteHost: siteHost,
      parsePrefixes: parsePrefixes,
      isRedirectPath: isRedirectPath,
      amazonAsin: amazonAsin,
      classifyLink: classifyLink,
      cleanText: cleanText,
      linkText: linkText,
      clickKind: clickKind,
      scrollDepth: scrollDepth,
      customProps: customProps,
      newSessionId: newSessionId
    };
  }
})();
