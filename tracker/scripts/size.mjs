// Size gate for the tracker (T1: under 2 KB gzipped). Minifies clickport.js with the pinned
// terser, gzips it at level 9, prints raw/min/gzip bytes, writes dist/clickport.min.js (what a
// server serves) and exits 1 when the gzip size is over the budget. `measureTracker()` is the
// same logic without side effects, for the tests.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';

export const BUDGET_GZIP_BYTES = 2048;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SOURCE = join(root, 'clickport.js');
export const DIST = join(root, 'dist', 'clickport.min.js');

// ES2017 output keeps the file parseable by the oldest browsers the tracker targets.
// CLICKPORT_BUNDLE removes the node-only `module.exports` block from the served file.
export const TERSER_OPTIONS = {
  ecma: 2017,
  compress: { passes: 3, global_defs: { CLICKPORT_BUNDLE: true } },
  mangle: true,
  format: { comments: false },
};

export async function measureTracker(source = SOURCE) {
  const raw = await readFile(source, 'utf8');
  const { code } = await minify(raw, TERSER_OPTIONS);
  const gzip = gzipSync(Buffer.from(code), { level: 9 });
  return {
    code,
    rawBytes: Buffer.byteLength(raw),
    minBytes: Buffer.byteLength(code),
    gzipBytes: gzip.length,
  };
}

async function main() {
  const m = await measureTracker();
  await mkdir(dirname(DIST), { recursive: true });
  await writeFile(DIST, m.code);
  console.log(`clickport.js  raw ${m.rawBytes} B  min ${m.minBytes} B  gzip ${m.gzipBytes} B  (budget ${BUDGET_GZIP_BYTES} B gzip)`);
  if (m.gzipBytes > BUDGET_GZIP_BYTES) {
    console.error(`over budget by ${m.gzipBytes - BUDGET_GZIP_BYTES} B`);
    process.exit(1);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
