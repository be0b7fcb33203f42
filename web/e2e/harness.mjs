// Starts a real pvm-node on a free loopback port with a temporary data directory, and a real
// headless Chromium (Debian's, through playwright-core: no browser is ever downloaded).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');
export const shots = join(repo, 'test-output', 'web');

export function nodeBinary() {
  if (process.env.PVM_NODE_BIN) return process.env.PVM_NODE_BIN;
  const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, 'target');
  return join(target, 'debug', 'pvm-node');
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** A pvm-node process; `restart()` stops it and starts it again on the same port and data. */
export class Node {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'pvm-e2e-'));
    this.config = join(this.dir, 'node.toml');
    // No SNTP and no mDNS: the test must not depend on the network around it.
    writeFileSync(this.config, '[time]\nntp_servers = []\n\n[mdns]\nenabled = false\n');
    this.output = '';
  }

  async start(port) {
    this.port = port ?? this.port ?? (await freePort());
    this.url = `http://127.0.0.1:${this.port}`;
    const bin = nodeBinary();
    if (!existsSync(bin)) throw new Error(`pvm-node binary not found at ${bin}: build it first (cargo build -p pvm-node)`);
    this.proc = spawn(bin, ['--config', this.config, '--data-dir', join(this.dir, 'data'), '--listen', `127.0.0.1:${this.port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout.on('data', (b) => (this.output += b));
    this.proc.stderr.on('data', (b) => (this.output += b));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`pvm-node exited:\n${this.output}`);
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`pvm-node did not answer within 20 s:\n${this.output}`);
  }

  setupCode() {
    const m = /setup code:\s*(\S+)/.exec(this.output);
    return m ? m[1] : null;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  async restart() {
    await this.stop();
    await this.start(this.port);
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.PVM_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

export function ensureShots() {
  mkdirSync(shots, { recursive: true });
}

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };
export const TV = { viewport: { width: 1920, height: 1080 }, deviceScaleFactor: 1 };
export const TABLET = { viewport: { width: 1024, height: 768 }, deviceScaleFactor: 1 };

/**
 * What a screen-reader or low-vision user would trip over on the page as it stands: form
 * controls, buttons and links without an accessible name, a positive tabindex (which breaks
 * the reading order), and text whose contrast with its background is below WCAG AA (4.5:1,
 * or 3:1 for large text). Disabled controls are exempt, as WCAG allows. Returns one line per
 * problem.
 */
export function a11yProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const st = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && st.display !== 'none';
    };
    const short = (el) => el.outerHTML.replace(/\s+/g, ' ').slice(0, 140);
    const nameOf = (el) => {
      const labelled = el.getAttribute('aria-labelledby');
      const parts = [
        el.getAttribute('aria-label'),
        labelled ? labelled.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' ') : '',
        el.labels ? [...el.labels].map((l) => l.textContent).join(' ') : '',
        el.matches('button, a, [role=radio], [role=tab]') ? el.textContent : '',
        el.getAttribute('title'),
        el.matches('input[type=submit], input[type=button]') ? el.value : '',
      ];
      return parts.filter(Boolean).join(' ').trim();
    };
    for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href], [role=radio]')) {
      if (!visible(el) && el.type !== 'file') continue;
      if (!nameOf(el)) problems.push(`no accessible name: ${short(el)}`);
    }
    for (const el of document.querySelectorAll('[tabindex]')) {
      if (Number(el.getAttribute('tabindex')) > 0) problems.push(`positive tabindex: ${short(el)}`);
    }

    const rgba = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return [0, 0, 0, 0];
      const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top, bottom) => {
      const a = top[3];
      return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
    };
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = rgba(getComputedStyle(e).backgroundColor);
        if (c[3] > 0) layers.push(c);
        if (c[3] >= 1) break;
      }
      let bg = [255, 255, 255, 1];
      for (const c of layers.reverse()) bg = over(c, bg);
      return bg;
    };
    const lum = (c) => {
      const [r, g, b] = c.slice(0, 3).map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const opacity = (el) => {
      let o = 1;
      for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
      return o;
    };
    const seen = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || seen.has(el) || !n.textContent.trim() || !visible(el)) continue;
      seen.add(el);
      if (el.closest('button:disabled, option, svg, [aria-hidden=true]')) continue;
      const st = getComputedStyle(el);
      const bg = background(el);
      const fg = over(rgba(st.color).map((v, i) => (i === 3 ? v * opacity(el) : v)), bg);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const px = parseFloat(st.fontSize);
      const large = px >= 24 || (px >= 18.66 && Number(st.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}:1 for "${n.textContent.trim().slice(0, 40)}" in ${short(el)}`);
    }
    return problems;
  });
}

/**
 * Tabs through the page from the top and returns what took the focus, in order, with where it
 * is: enough to check that the keyboard reaches every control in reading order.
 */
export async function tabOrder(page, max = 80) {
  // A fresh load puts the keyboard's starting point at the top of the document.
  await page.reload();
  await page.getByRole('heading').first().waitFor();
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const r = el.getBoundingClientRect();
      // The section links at the bottom (a sidebar on wide screens) come last in the page.
      const region = el.closest('header, main, nav.bottom')?.tagName.toLowerCase() ?? 'other';
      const outline = getComputedStyle(el).outlineStyle;
      return { tag: el.tagName.toLowerCase(), name: (el.getAttribute('aria-label') || el.textContent || el.getAttribute('name') || '').trim().slice(0, 40), y: r.top + window.scrollY, region, outline, html: el.outerHTML.slice(0, 80) };
    });
    if (!f) break;
    if (seen.length && seen[0].html === f.html && seen[0].y === f.y) break;
    seen.push(f);
  }
  return seen;
}
