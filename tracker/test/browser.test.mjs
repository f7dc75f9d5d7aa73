// The installed tracker in a fake browser (test-support/fake-browser.js): pageviews (T2),
// session id (T3), engagement (T4), clicks (T5-T8), transport and public API (T9-T11).
// Every test runs twice: against clickport.js and against the minified build that is served.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { measureTracker, SOURCE } from '../scripts/size.mjs';

const require = createRequire(import.meta.url);
const { loadTracker, anchor, element } = require('../test-support/fake-browser.js');

const builds = {
  source: await readFile(SOURCE, 'utf8'),
  minified: (await measureTracker()).code,
};

const SID = /^[A-Za-z0-9_-]{22}$/;

for (const [build, code] of Object.entries(builds)) {
  const load = (options) => loadTracker(code, options);
  const t = (name, fn) => test(`${build}: ${name}`, fn);

  // ---- T1 install, T2 pageviews, T11 common fields

  t('sends one pageview on load with t, d, u, sid and the referrer', () => {
    const b = load({ url: 'https://example.com/post?x=1', referrer: 'https://google.com/' });
    assert.equal(b.sent.length, 1);
    const [p] = b.sent;
    assert.equal(p.t, 'p');
    assert.equal(p.d, 'example.com');
    assert.equal(p.u, 'https://example.com/post?x=1');
    assert.match(p.sid, SID);
    assert.equal(p.r, 'https://google.com/');
  });

  t('a pageview without referrer has no r field', () => {
    const b = load();
    assert.equal('r' in b.sent[0], false);
  });

  t('posts to the script origin /api/event with fetch keepalive and a JSON string body', () => {
    const b = load();
    const [{ url, init }] = b.fetchCalls;
    assert.equal(url, 'https://cdn.clickport.test/api/event');
    assert.equal(init.method, 'POST');
    assert.equal(init.keepalive, true);
    assert.equal(typeof init.body, 'string'); // a string body is text/plain: no CORS preflight
    assert.equal(init.headers, undefined);
  });

  t('data-api overrides the endpoint', () => {
    const b = load({ scriptAttrs: { src: 'https://cdn.clickport.test/js/clickport.js', 'data-domain': 'example.com', 'data-api': '/stats/event' } });
    assert.equal(b.fetchCalls[0].url, '/stats/event');
  });

  t('without data-domain the page hostname is the domain', () => {
    const b = load({ url: 'https://www.example.com/', scriptAttrs: { src: 'https://example.com/js/clickport.js' } });
    assert.equal(b.sent[0].d, 'www.example.com');
    assert.equal(b.fetchCalls[0].url, 'https://example.com/api/event');
  });

  t('loading the script twice tracks once', () => {
    const b = load();
    b.runAgain();
    assert.equal(b.sent.length, 1);
    b.click(anchor('https://shop.net/'));
    assert.deepEqual(b.types(), ['p', 'c']);
  });

  t('pushState to a new URL is a pageview naming the previous page as referrer', () => {
    const b = load({ url: 'https://example.com/a', referrer: 'https://google.com/' });
    b.window.history.pushState({}, '', '/b');
    assert.deepEqual(b.types(), ['p', 'p']);
    assert.equal(b.sent[1].u, 'https://example.com/b');
    assert.equal(b.sent[1].r, 'https://example.com/a');
    assert.equal(b.sent[1].sid, b.sent[0].sid);
  });

  t('the same URL twice in a row is one pageview', () => {
    const b = load({ url: 'https://example.com/a' });
    b.window.history.pushState({}, '', '/a');
    b.window.history.pushState({}, '', '/b');
    b.window.history.pushState({}, '', '/b');
    assert.deepEqual(b.types(), ['p', 'p']);
  });

  t('a query change through pushState is a pageview', () => {
    const b = load({ url: 'https://example.com/list' });
    b.window.history.pushState({}, '', '/list?page=2');
    assert.equal(b.sent.length, 2);
  });

  t('a hash change is not a pageview', () => {
    const b = load({ url: 'https://example.com/a' });
    b.popTo('/a#section');
    b.window.history.pushState({}, '', '/a#other');
    assert.equal(b.sent.length, 1);
  });

  t('replaceState is a pageview only when the path changes', () => {
    const b = load({ url: 'https://example.com/a' });
    b.window.history.replaceState({}, '', '/a?filter=red');
    b.window.history.replaceState({}, '', '/a');
    assert.equal(b.sent.length, 1);
    b.window.history.replaceState({}, '', '/c');
    assert.deepEqual(b.types(), ['p', 'p']);
    assert.equal(b.sent[1].u, 'https://example.com/c');
  });

  t('popstate is a pageview', () => {
    const b = load({ url: 'https://example.com/a' });
    b.window.history.pushState({}, '', '/b');
    b.popTo('/a');
    assert.deepEqual(b.sent.filter((x) => x.t === 'p').map((x) => x.u), [
      'https://example.com/a', 'https://example.com/b', 'https://example.com/a',
    ]);
  });

  t("the page's own history errors still reach the page, without a pageview", () => {
    const b = load();
    assert.throws(() => b.window.history.pushState({}, '', 'https://other.test/'), /SecurityError/);
    assert.deepEqual(b.types(), ['p']);
  });

  t('a prerendered page counts its pageview when the user opens it', () => {
    const b = load({ prerendering: true, hidden: true, url: 'https://example.com/next' });
    b.window.history.replaceState({}, '', '/next/'); // a router normalising the URL
    assert.equal(b.sent.length, 0);
    b.document.prerendering = false;
    b.document.dispatch('prerenderingchange');
    assert.deepEqual(b.sent.map((x) => [x.t, x.u]), [['p', 'https://example.com/next/']]);
  });

  t('a page restored from the back/forward cache is a new pageview', () => {
    const b = load({ url: 'https://example.com/a', referrer: 'https://google.com/' });
    b.scrollTo(500, 2000);
    b.advance(1000);
    b.setHidden(true);
    b.window.dispatch('pagehide', { persisted: true });
    b.window.dispatch('pageshow', { persisted: false }); // an ordinary load: nothing new
    assert.deepEqual(b.types(), ['p', 'e']);
    b.window.dispatch('pageshow', { persisted: true });
    b.setHidden(false);
    b.advance(2000);
    b.window.dispatch('pagehide');
    assert.deepEqual(b.types(), ['p', 'e', 'p', 'e']);
    assert.equal(b.sent[2].u, 'https://example.com/a');
    assert.equal(b.sent[2].r, 'https://google.com/');
    assert.deepEqual([b.sent[3].sd, b.sent[3].vt], [50, 2000]);
  });

  // ---- T3 session id

  t('creates the session id on the first pageview and stores it as cp_sid', () => {
    const b = load();
    assert.equal(b.sessionStorage.data.get('cp_sid'), b.sent[0].sid);
  });

  t('a tab keeps its session id across page loads', () => {
    const first = load();
    const sid = first.sent[0].sid;
    const second = load({ session: { cp_sid: sid } });
    assert.equal(second.sent[0].sid, sid);
  });

  t('a malformed stored id is replaced', () => {
    const b = load({ session: { cp_sid: 'short' } });
    assert.match(b.sent[0].sid, SID);
    assert.equal(b.sessionStorage.data.get('cp_sid'), b.sent[0].sid);
  });

  t('blocked storage still gives one session id for the page', () => {
    const b = load({ brokenStorage: true, url: 'https://example.com/a' });
    b.window.history.pushState({}, '', '/b');
    assert.equal(b.sent.length, 2);
    assert.match(b.sent[0].sid, SID);
    assert.equal(b.sent[1].sid, b.sent[0].sid);
  });

  // ---- T4 engagement

  t('hiding the page sends scroll depth and visible time once', () => {
    const b = load({ url: 'https://example.com/post' });
    b.scrollTo(1000, 3000); // viewport 1000: scrollable height 2000, so 50 %
    b.advance(3000);
    b.setHidden(true);
    b.window.dispatch('pagehide');
    const e = b.sent.filter((x) => x.t === 'e');
    assert.equal(e.length, 1);
    assert.equal(e[0].sd, 50);
    assert.equal(e[0].vt, 3000);
    assert.equal(e[0].u, 'https://example.com/post');
    assert.equal(e[0].sid, b.sent[0].sid);
  });

  t('pagehide before visibilitychange (the order Chromium uses on leaving) sends one beacon', () => {
    const b = load({ url: 'https://example.com/post' });
    b.advance(400);
    b.window.dispatch('pagehide');
    b.advance(2); // the few ms before the page is hidden must not make a second beacon
    b.setHidden(true);
    assert.deepEqual(b.sent.filter((x) => x.t === 'e').map((x) => x.vt), [400]);
  });

  t('visible time counts from the previous engagement beacon', () => {
    const b = load();
    b.advance(2000);
    b.setHidden(true);
    b.advance(60000); // hidden: not counted
    b.setHidden(false);
    b.advance(500);
    b.window.dispatch('pagehide');
    assert.deepEqual(b.sent.filter((x) => x.t === 'e').map((x) => x.vt), [2000, 500]);
  });

  t('window blur pauses the timer and focus resumes it', () => {
    const b = load();
    b.advance(1000);
    b.window.dispatch('blur');
    b.advance(5000);
    b.window.dispatch('focus');
    b.advance(1000);
    b.window.dispatch('pagehide');
    assert.equal(b.sent.find((x) => x.t === 'e').vt, 2000);
  });

  t('a page loaded hidden counts no time until shown', () => {
    const b = load({ hidden: true });
    b.advance(4000);
    b.setHidden(false);
    b.advance(1500);
    b.window.dispatch('pagehide');
    assert.equal(b.sent.find((x) => x.t === 'e').vt, 1500);
  });

  t('no change since the last engagement beacon sends nothing', () => {
    const b = load({ hidden: true });
    b.window.dispatch('pagehide');
    b.setHidden(true);
    assert.deepEqual(b.types(), ['p']);
  });

  t('a deeper scroll alone is a change', () => {
    const b = load();
    b.advance(100);
    b.setHidden(true);
    b.scrollTo(2000, 3000);
    b.window.dispatch('pagehide');
    assert.deepEqual(b.sent.filter((x) => x.t === 'e').map((x) => [x.sd, x.vt]), [[0, 100], [100, 0]]);
  });

  t('scroll depth only rises', () => {
    const b = load();
    b.scrollTo(1600, 3000);
    b.scrollTo(200, 3000);
    b.advance(10);
    b.window.dispatch('pagehide');
    assert.equal(b.sent.find((x) => x.t === 'e').sd, 80);
  });

  t('a page that cannot scroll reports 0', () => {
    const b = load();
    b.scrollTo(0, 700);
    b.advance(10);
    b.window.dispatch('pagehide');
    assert.equal(b.sent.find((x) => x.t === 'e').sd, 0);
  });

  t('a layout change recomputes the depth (ResizeObserver)', () => {
    const b = load();
    b.scrollTo(500, 1500); // 100 %
    b.resizeTo(1500);
    b.advance(10);
    b.window.history.pushState({}, '', '/next'); // new page: depth starts again at 0
    b.scrollTo(500, 1500);
    b.resizeTo(1250); // content shrank: the same position is now deeper than before
    b.resizeTo(3000);
    b.advance(10);
    b.window.dispatch('pagehide');
    assert.deepEqual(b.sent.filter((x) => x.t === 'e').map((x) => x.sd), [100, 100]);
  });

  t('SPA navigation sends the left page engagement before the new pageview', () => {
    const b = load({ url: 'https://example.com/a' });
    b.scrollTo(500, 2000);
    b.advance(7000);
    b.window.history.pushState({}, '', '/b');
    assert.deepEqual(b.types(), ['p', 'e', 'p']);
    assert.equal(b.sent[1].u, 'https://example.com/a');
    assert.equal(b.sent[1].sd, 50);
    assert.equal(b.sent[1].vt, 7000);
    b.advance(1000);
    b.window.dispatch('pagehide');
    assert.deepEqual([b.sent[3].u, b.sent[3].sd, b.sent[3].vt], ['https://example.com/b', 0, 1000]);
  });

  // ---- T5-T8 clicks

  t('an outbound click sends cu, ct, ck and the page URL', () => {
    const b = load({ url: 'https://example.com/review' });
    const a = anchor('https://www.amazon.com/dp/b0abc12345?tag=x', { text: ' Buy  on Amazon ' });
    const ev = b.click(element('span', 'Buy'), [a]);
    const c = b.sent.find((x) => x.t === 'c');
    assert.deepEqual(
      { t: c.t, d: c.d, u: c.u, cu: c.cu, ct: c.ct, ca: c.ca, ck: c.ck },
      { t: 'c', d: 'example.com', u: 'https://example.com/review', cu: 'https://www.amazon.com/dp/b0abc12345?tag=x', ct: 'Buy on Amazon', ca: 'B0ABC12345', ck: 'primary' });
    assert.equal(c.sid, b.sent[0].sid);
    assert.equal(ev.defaultPrevented, false);
  });

  t('a click on an internal link sends nothing', () => {
    const b = load();
    b.click(anchor('/about', { text: 'About' }));
    b.click(anchor('mailto:a@b.c', { text: 'Mail' }));
    b.click(anchor('#top', { text: 'Top' }));
    b.click(element('div', 'not a link'));
    assert.deepEqual(b.types(), ['p']);
  });

  t('an internal redirect with an asin parameter is outbound', () => {
    const b = load({ url: 'https://www.example.com/post' });
    b.click(anchor('/go/blender?asin=b07xyz1234', { text: 'Check price', pageUrl: 'https://www.example.com/post' }));
    const c = b.sent.find((x) => x.t === 'c');
    assert.equal(c.cu, 'https://www.example.com/go/blender?asin=b07xyz1234');
    assert.equal(c.ca, 'B07XYZ1234');
  });

  t('data-outbound-paths sets the redirect prefixes', () => {
    const b = load({ scriptAttrs: { src: 'https://example.com/js/clickport.js', 'data-domain': 'example.com', 'data-outbound-paths': '/recommends/,/out/' } });
    b.click(anchor('/go/x', { text: 'go' }));
    b.click(anchor('/out/x', { text: 'out' }));
    b.click(anchor('/recommends/y', { text: 'rec' }));
    assert.deepEqual(b.sent.filter((x) => x.t === 'c').map((x) => x.ct), ['out', 'rec']);
  });

  t('a double click on the same link within 1 s is one click', () => {
    const b = load();
    const a = anchor('https://shop.net/', { text: 'Shop' });
    b.click(a, [], { detail: 1 });
    b.advance(300);
    b.click(a, [], { detail: 2 });
    b.advance(699);
    b.click(a);
    assert.equal(b.sent.filter((x) => x.t === 'c').length, 1);
    b.advance(2);
    b.click(a);
    assert.equal(b.sent.filter((x) => x.t === 'c').length, 2);
  });

  t('two different links clicked quickly are two clicks', () => {
    const b = load();
    b.click(anchor('https://shop.net/a', { text: 'A' }));
    b.click(anchor('https://shop.net/a', { text: 'A again' }));
    assert.equal(b.sent.filter((x) => x.t === 'c').length, 2);
  });

  t('middle button (auxclick) is a middle click; other buttons are ignored', () => {
    const b = load();
    b.click(anchor('https://shop.net/1'), [], { type: 'auxclick', button: 1 });
    b.click(anchor('https://shop.net/2'), [], { type: 'auxclick', button: 2 });
    b.click(anchor('https://shop.net/3'), [], { type: 'click', button: 2 });
    const c = b.sent.filter((x) => x.t === 'c');
    assert.deepEqual(c.map((x) => [x.cu, x.ck]), [['https://shop.net/1', 'middle']]);
  });

  t('modifier and keyboard clicks are labelled', () => {
    const b = load();
    b.click(anchor('https://shop.net/1'), [], { metaKey: true });
    b.click(anchor('https://shop.net/2'), [], { detail: 0 });
    assert.deepEqual(b.sent.filter((x) => x.t === 'c').map((x) => x.ck), ['modifier', 'keyboard']);
  });

  t('finds the link through shadow DOM and nested elements', () => {
    const b = load();
    const a = anchor('https://shop.net/', { text: 'Deal' });
    const shadowRoot = { localName: undefined };
    b.click(element('span'), [element('b'), a, shadowRoot, element('product-card')]);
    assert.equal(b.sent.find((x) => x.t === 'c').cu, 'https://shop.net/');
  });

  t('skips an <a> without href and uses the nearest one with href', () => {
    const b = load();
    b.click(anchor(null, { text: 'inner' }), [anchor('https://shop.net/', { text: 'outer' })]);
    assert.equal(b.sent.find((x) => x.t === 'c').ct, 'outer');
  });

  t('SVG anchors are followed through href.baseVal', () => {
    const b = load({ url: 'https://example.com/blog/' });
    b.click(element('path'), [anchor('https://shop.net/logo', { svg: true, text: 'Logo' })]);
    b.click(element('path'), [anchor('/go/x', { svg: true, attrs: { 'aria-label': 'Go' } })]);
    assert.deepEqual(b.sent.filter((x) => x.t === 'c').map((x) => [x.cu, x.ct]), [
      ['https://shop.net/logo', 'Logo'], ['https://example.com/go/x', 'Go']]);
  });

  t('an image-only link uses its alt text', () => {
    const b = load();
    b.click(element('img'), [anchor('https://shop.net/', { imgAlt: 'Blender 3000' })]);
    assert.equal(b.sent.find((x) => x.t === 'c').ct, 'Blender 3000');
  });

  // ---- T9 transport, T10 API

  t('track sends a custom event with name and string props', () => {
    const b = load();
    b.window.clickport.track('signup', { plan: 'pro', seats: 3, none: null });
    const x = b.sent.find((e) => e.t === 'x');
    assert.equal(x.n, 'signup');
    assert.deepEqual(x.p, { plan: 'pro', seats: '3' });
    assert.equal(x.sid, b.sent[0].sid);
  });

  t('track without a name sends nothing', () => {
    const b = load();
    b.window.clickport.track('');
    b.window.clickport.track();
    assert.deepEqual(b.types(), ['p']);
  });

  t('beacon sends any type with the common fields', () => {
    const b = load();
    b.window.clickport.beacon('x', { n: 'raw', p: {} });
    assert.deepEqual(Object.keys(b.sent[1]).sort(), ['d', 'n', 'p', 'sid', 't', 'u', 'via', 'url'].sort());
  });

  t('clickport_ignore=true silences everything', () => {
    const b = load({ local: { clickport_ignore: 'true' } });
    b.click(anchor('https://shop.net/'));
    b.window.clickport.track('signup');
    b.advance(1000);
    b.window.dispatch('pagehide');
    assert.equal(b.sent.length, 0);
    assert.equal(b.sessionStorage.data.size, 0);
  });

  t('the ignore flag is read at send time', () => {
    const b = load();
    b.localStorage.data.set('clickport_ignore', 'true');
    b.click(anchor('https://shop.net/'));
    assert.deepEqual(b.types(), ['p']);
  });

  t('a failing endpoint is not retried and does not reject into the page', async () => {
    let unhandled = 0;
    const onUnhandled = () => { unhandled++; };
    process.on('unhandledRejection', onUnhandled);
    try {
      const b = load({ transport: 'reject' });
      b.click(anchor('https://shop.net/'));
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(b.sent.map((x) => x.via), ['fetch', 'fetch']);
      assert.equal(unhandled, 0);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  t('falls back to sendBeacon when fetch throws or is missing', () => {
    for (const transport of ['throw', 'missing']) {
      const b = load({ transport });
      assert.deepEqual(b.sent.map((x) => [x.via, x.url, x.t]), [['sendBeacon', 'https://cdn.clickport.test/api/event', 'p']], transport);
    }
  });

  t('with no transport at all nothing throws', () => {
    const b = load({ transport: 'none' });
    b.click(anchor('https://shop.net/'));
    b.window.clickport.track('x', { a: 1 });
    b.window.dispatch('pagehide');
    assert.equal(b.sent.length, 0);
  });

  t('listeners never throw into the page', () => {
    const b = load({ brokenStorage: true });
    b.document.dispatch('click', { button: 0, composedPath() { throw new Error('boom'); } });
    b.document.dispatch('click', {}); // no composedPath
    b.window.clickport.track('x', { get bad() { throw new Error('getter'); } });
    b.window.clickport.beacon('x', { n: 'cyclic', p: (() => { const o = {}; o.o = o; return o; })() });
    b.document.scrollingElement = null;
    b.document.documentElement = null;
    b.window.dispatch('scroll');
    b.window.dispatch('pagehide');
  });

  t('works without a currentScript element', () => {
    const b = load({ scriptAttrs: null, url: 'https://example.com/x' });
    assert.equal(b.sent[0].d, 'example.com');
    assert.equal(b.fetchCalls[0].url, 'https://example.com/api/event');
  });
}
