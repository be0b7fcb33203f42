// Prints the gzipped size of what a browser downloads to show the display page and the
// console's first screen: the HTML, and every script and stylesheet it loads up front
// (entry, preloaded chunks, CSS). Run after `npm run build`. With --check, exits 1 when a
// budget is exceeded.
import { readFileSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const BUDGETS = { 'display.html': 60 * 1024, 'index.html': 200 * 1024 };
const check = process.argv.includes('--check');

function firstLoad(page) {
  const html = readFileSync(join(dist, page), 'utf8');
  const files = new Set([page]);
  for (const m of html.matchAll(/(?:src|href)="\/([^"]+\.(?:js|css))"/g)) files.add(m[1]);
  // Chunks imported statically by the entry are fetched before anything shows; follow them.
  const queue = [...files].filter((f) => f.endsWith('.js'));
  while (queue.length) {
    const f = queue.pop();
    const js = readFileSync(join(dist, f), 'utf8');
    for (const m of js.matchAll(/(?:^|[;\s])import\s*(?:[\w${},\s*]+from\s*)?["']\.\/([^"']+\.js)["']/g)) {
      const dep = join(dirname(f), m[1]);
      if (!files.has(dep)) {
        files.add(dep);
        queue.push(dep);
      }
    }
  }
  return [...files].map((f) => {
    const raw = readFileSync(join(dist, f));
    return { file: f, raw: raw.length, gz: gzipSync(raw, { level: 9 }).length };
  });
}

if (!existsSync(join(dist, 'index.html'))) {
  console.error('web/dist is missing: run `npm run build` first');
  process.exit(2);
}
let over = false;
for (const [page, label] of [['display.html', 'display page'], ['index.html', 'console first load']]) {
  const files = firstLoad(page);
  const gz = files.reduce((s, f) => s + f.gz, 0);
  const raw = files.reduce((s, f) => s + f.raw, 0);
  const budget = BUDGETS[page];
  console.log(`${label}: ${(gz / 1024).toFixed(1)} KiB gzipped (${(raw / 1024).toFixed(1)} KiB raw), budget ${budget / 1024} KiB${gz > budget ? '  OVER BUDGET' : ''}`);
  for (const f of files) console.log(`  ${f.file.padEnd(40)} ${(f.gz / 1024).toFixed(1).padStart(6)} KiB gz`);
  if (gz > budget) over = true;
}
if (check && over) process.exit(1);
