// T1 size budget: the minified, gzipped (level 9) tracker stays under 2 KB. Same logic as
// `npm run size` (scripts/size.mjs).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');

test('the minified tracker is under 2048 bytes gzipped', async () => {
  const { measureTracker, BUDGET_GZIP_BYTES } = await import('../scripts/size.mjs');
  const m = await measureTracker();
  assert.equal(BUDGET_GZIP_BYTES, 2048);
  assert.ok(m.gzipBytes < BUDGET_GZIP_BYTES, `gzip ${m.gzipBytes} B is over the ${BUDGET_GZIP_BYTES} B budget`);
  assert.ok(m.minBytes < m.rawBytes);
});

test('source and build are ES2017: no optional chaining, nullish coalescing or object spread', async () => {
  const { measureTracker, SOURCE } = await import('../scripts/size.mjs');
  const { code } = await measureTracker();
  const acorn = require('acorn');
  acorn.parse(require('node:fs').readFileSync(SOURCE, 'utf8'), { ecmaVersion: 2017 });
  acorn.parse(code, { ecmaVersion: 2017 });
});
