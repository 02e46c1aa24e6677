// The bundle budget: the JavaScript a first visit downloads (the entry chunk and everything it
// imports statically; lazily loaded pages are not counted) must stay under 250 KB gzipped per
// app. Reads each app's Vite manifest, prints the figures, and fails the build over budget.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET = 250 * 1024;
const root = new URL('..', import.meta.url).pathname;
let failed = false;

for (const app of ['dashboard', 'portal']) {
  const dist = join(root, app, 'dist');
  const manifest = JSON.parse(readFileSync(join(dist, '.vite', 'manifest.json'), 'utf8'));
  const entry = Object.values(manifest).find((chunk) => chunk.isEntry);
  const seen = new Set();
  const visit = (key) => {
    if (seen.has(key)) return;
    seen.add(key);
    for (const dep of manifest[key]?.imports ?? []) visit(dep);
  };
  visit(Object.keys(manifest).find((key) => manifest[key] === entry));
  let raw = 0;
  let gzip = 0;
  for (const key of seen) {
    const file = manifest[key].file;
    if (!file.endsWith('.js')) continue;
    const bytes = readFileSync(join(dist, file));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  const verdict = gzip <= BUDGET ? 'ok' : 'OVER BUDGET';
  console.log(`${app}: initial JavaScript ${kb(gzip)} gzipped (${kb(raw)} raw, ${seen.size} chunks); budget ${kb(BUDGET)}: ${verdict}`);
  if (gzip > BUDGET) failed = true;
}
process.exit(failed ? 1 : 0);
