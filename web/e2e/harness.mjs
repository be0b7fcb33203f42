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
