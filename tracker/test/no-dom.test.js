// The script loads in node (no DOM) without throwing: it installs nothing and only exports the
// pure rules when `module` exists.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const SOURCE = path.join(__dirname, '..', 'clickport.js');

test('require() in node without a DOM does not throw and exports the pure rules', () => {
  const api = require(SOURCE);
  for (const name of ['classifyLink', 'parsePrefixes', 'isRedirectPath', 'amazonAsin', 'linkText', 'cleanText', 'clickKind', 'scrollDepth', 'customProps', 'newSessionId']) {
    assert.equal(typeof api[name], 'function', name);
  }
});

test('running it as a plain script with no DOM and no module does not throw', () => {
  const context = vm.createContext({});
  vm.runInContext(fs.readFileSync(SOURCE, 'utf8'), context);
  assert.equal(context.clickport, undefined);
});

test('the served (minified) build also runs without a DOM and exports nothing', async () => {
  const { measureTracker } = await import('../scripts/size.mjs');
  const { code } = await measureTracker();
  const sandbox = { module: { exports: {} } };
  vm.runInContext(code, vm.createContext(sandbox));
  assert.deepEqual(sandbox.module.exports, {});
});
