// Link text and click kind of the click payload (T8), plus the other pure helpers.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { linkText, cleanText, clickKind, scrollDepth, customProps, newSessionId } = require('../clickport.js');

// A minimal <a>: innerText is what the browser renders, attributes and an optional <img alt>.
function anchor({ text = '', attrs = {}, imgAlt, svg = false } = {}) {
  const a = {
    getAttribute: (n) => (n in attrs ? attrs[n] : null),
    querySelector: (sel) => (sel === 'img[alt]' && imgAlt != null ? { getAttribute: () => imgAlt } : null),
  };
  if (svg) a.textContent = text; // SVG elements have no innerText
  else a.innerText = text;
  return a;
}

test('link text collapses whitespace and trims', () => {
  assert.equal(linkText(anchor({ text: '  Buy\n\n  the \t blender\u00a0 now  ' })), 'Buy the blender now');
});

test('link text is cut at 200 characters', () => {
  const t = linkText(anchor({ text: 'word '.repeat(100) }));
  assert.equal(t.length, 199); // 200 characters, of which the last was a space, trimmed
  assert.ok(t.startsWith('word word'));
  assert.equal(linkText(anchor({ text: 'x'.repeat(500) })).length, 200);
});

test('the 200-character cut never splits an emoji', () => {
  const t = cleanText('x'.repeat(199) + '\u{1F600}\u{1F600}');
  assert.equal(Array.from(t).length, 200);
  assert.ok(t.endsWith('\u{1F600}'));
});

test('empty text falls back to aria-label', () => {
  assert.equal(linkText(anchor({ text: ' \n ', attrs: { 'aria-label': ' Shop  now ', title: 'T' }, imgAlt: 'I' })), 'Shop now');
});

test('then to title', () => {
  assert.equal(linkText(anchor({ attrs: { 'aria-label': '  ', title: 'Blender 3000' }, imgAlt: 'I' })), 'Blender 3000');
});

test('then to the first img alt', () => {
  assert.equal(linkText(anchor({ imgAlt: '  Product   photo ' })), 'Product photo');
});

test('visible text wins over the fallbacks', () => {
  assert.equal(linkText(anchor({ text: 'Buy', attrs: { 'aria-label': 'A', title: 'T' }, imgAlt: 'I' })), 'Buy');
});

test('no text anywhere gives an empty string', () => {
  assert.equal(linkText(anchor({ imgAlt: '' })), '');
});

test('fallback text is capped at 200 too', () => {
  assert.equal(linkText(anchor({ attrs: { title: 'y'.repeat(300) } })).length, 200);
});

test('SVG anchors use textContent', () => {
  assert.equal(linkText(anchor({ text: ' Logo ', svg: true })), 'Logo');
});

test('click kind: primary', () => {
  assert.equal(clickKind({ type: 'click', button: 0, detail: 1 }), 'primary');
});

test('click kind: middle button', () => {
  assert.equal(clickKind({ type: 'auxclick', button: 1, detail: 1 }), 'middle');
  assert.equal(clickKind({ type: 'auxclick', button: 1, detail: 1, ctrlKey: true }), 'middle');
});

test('click kind: ctrl, cmd or shift held is modifier', () => {
  for (const k of ['ctrlKey', 'metaKey', 'shiftKey']) {
    assert.equal(clickKind({ type: 'click', button: 0, detail: 1, [k]: true }), 'modifier', k);
  }
  assert.equal(clickKind({ type: 'click', button: 0, detail: 0, ctrlKey: true }), 'modifier', 'ctrl+Enter');
});

test('click kind: alt is not a modifier', () => {
  assert.equal(clickKind({ type: 'click', button: 0, detail: 1, altKey: true }), 'primary');
});

test('click kind: detail 0 is keyboard', () => {
  assert.equal(clickKind({ type: 'click', button: 0, detail: 0 }), 'keyboard');
});

test('scroll depth is position over scrollable height, 0-100', () => {
  assert.equal(scrollDepth(0, 3000, 1000), 0);
  assert.equal(scrollDepth(1000, 3000, 1000), 50);
  assert.equal(scrollDepth(2000, 3000, 1000), 100);
  assert.equal(scrollDepth(2500, 3000, 1000), 100);
  assert.equal(scrollDepth(-40, 3000, 1000), 0); // iOS rubber-band
  assert.equal(scrollDepth(333, 3000, 1000), 17);
});

test('a page that cannot scroll has depth 0', () => {
  assert.equal(scrollDepth(0, 800, 1000), 0);
  assert.equal(scrollDepth(0, 1000, 1000), 0);
});

test('custom props become a flat object of at most 30 strings', () => {
  const props = {};
  for (let i = 0; i < 40; i++) props['k' + i] = i;
  const p = customProps(props);
  assert.equal(Object.keys(p).length, 30);
  assert.equal(p.k0, '0');
  assert.deepEqual(customProps({ a: 1, b: true, c: null, d: undefined, e: 'x' }), { a: '1', b: 'true', e: 'x' });
  assert.deepEqual(customProps(undefined), {});
});

test('session id: 22 URL-safe characters, fresh every time', () => {
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const id = newSessionId();
    assert.match(id, /^[A-Za-z0-9_-]{22}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 200);
});
