// The outbound-link rules (T5-T7), driven by the case table in link-cases.json.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { classifyLink, parsePrefixes, isRedirectPath, amazonAsin } = require('../clickport.js');
const { cases } = require('./link-cases.json');

for (const c of cases) {
  test(`${c.rule}: ${JSON.stringify(c.href)} on ${c.page}`, () => {
    const info = classifyLink(c.href, c.page, parsePrefixes(c.outbound_paths));
    assert.equal(Boolean(info), c.outbound, 'outbound');
    assert.equal(info ? info.ca || null : null, c.asin, 'asin');
  });
}

test('the click URL is absolute, resolved against the page', () => {
  assert.equal(classifyLink('/go/x?a=1#b', 'https://example.com/post', ['/go']).cu, 'https://example.com/go/x?a=1#b');
});

test('links resolve against the document base URL when it differs from the page', () => {
  const info = classifyLink('go/x', 'https://example.com/blog/post', parsePrefixes(null), 'https://example.com/');
  assert.equal(info.cu, 'https://example.com/go/x');
});

test('the click URL is cut at 2048 characters', () => {
  const info = classifyLink('https://shop.net/?q=' + 'x'.repeat(5000), 'https://example.com/', []);
  assert.equal(info.cu.length, 2048);
  assert.ok(info.cu.startsWith('https://shop.net/?q=xxx'));
});

test('an outbound click without ASIN carries no ca value', () => {
  assert.equal(classifyLink('https://shop.net/', 'https://example.com/', []).ca, undefined);
});

test('default redirect prefix is /go/', () => {
  assert.deepEqual(parsePrefixes(null), ['/go']);
  assert.deepEqual(parsePrefixes(undefined), ['/go']);
});

test('prefix list is normalised to bases without trailing slash', () => {
  assert.deepEqual(parsePrefixes('/go/,/recommends/, out ,/a//,,/'), ['/go', '/recommends', '/out', '/a']);
  assert.deepEqual(parsePrefixes(''), []);
});

test('a redirect base matches itself and its subpaths only', () => {
  assert.equal(isRedirectPath('/go', ['/go']), true);
  assert.equal(isRedirectPath('/go/', ['/go']), true);
  assert.equal(isRedirectPath('/go/a/b', ['/go']), true);
  assert.equal(isRedirectPath('/gopher', ['/go']), false);
  assert.equal(isRedirectPath('/x/go/', ['/go']), false);
  assert.equal(isRedirectPath('/go/x', []), false);
});

test('ASIN needs a host containing amazon', () => {
  assert.equal(amazonAsin(new URL('https://www.amazon.fr/dp/B07XYZ1234')), 'B07XYZ1234');
  assert.equal(amazonAsin(new URL('https://www.amazon.com/gp/product/B07XYZ1234/')), 'B07XYZ1234');
  assert.equal(amazonAsin(new URL('https://ebay.com/dp/B07XYZ1234')), undefined);
});
