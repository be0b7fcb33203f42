// What the console knows: the signed-in user, the live topics' latest data, the link state
// and the messages shown to the floor. One object, so every page reads the same truth.

import { Live, type LiveState } from '../lib/live';
import { ApiError } from './api';

export interface Toast {
  id: number;
  kind: 'error' | 'ok' | 'info';
  text: string;
}

const LOST = 'Connection to the node lost.';

class Store {
  user: { username: string; display_name: string; role: string } | null = $state(null);
  topics: Record<string, unknown> = $state({});
  received: Record<string, number> = $state({});
  link: LiveState = $state('connecting');
  toasts: Toast[] = $state([]);
  now = $state(Date.now());
  live: Live | null = null;
  private nextToast = 1;

  connect(): void {
    if (this.live) return;
    this.live = new Live(['venue', 'tournaments', 'cash', 'displays'], {
      data: (topic, data, msg) => {
        this.topics[topic] = data;
        this.received[topic] = msg.server_time_ms ?? Date.now();
      },
      state: (s, detail) => {
        const was = this.link;
        this.link = s;
        if (s === 'live' && detail.resumedFrom !== undefined && was !== 'live') {
          this.toasts = this.toasts.filter((t) => !t.text.startsWith(LOST));
          this.toast('info', `Reconnected: resumed after update #${detail.resumedFrom}.`);
        } else if (s === 'reconnecting' && was === 'live') {
          this.toast('error', `${LOST} Reconnecting…`);
        }
      },
      error: (m) => this.toast('error', m.message ?? 'The live feed reported an error.'),
    });
    this.live.start();
    setInterval(() => (this.now = this.live ? this.live.clock.now() : Date.now()), 250);
  }

  watch(topic: string): void {
    this.live?.subscribe([topic]);
  }

  toast(kind: Toast['kind'], text: string): void {
    const id = this.nextToast++;
    // Keep the newest few: a run of confirmations must not cover the page.
    this.toasts = [...this.toasts.filter((t) => t.kind === 'error').slice(-2), ...this.toasts.filter((t) => t.kind !== 'error').slice(-1), { id, kind, text }];
    setTimeout(() => this.dismiss(id), kind === 'error' ? 8000 : 2500);
  }

  dismiss(id: number): void {
    this.toasts = this.toasts.filter((t) => t.id !== id);
  }

  /** Runs an action; a refusal shows the node's own message. Returns null when it failed. */
  async run<T>(action: () => Promise<T>, done?: string): Promise<T | null> {
    try {
      const r = await action();
      if (done) this.toast('ok', done);
      return r;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.user = null;
      this.toast('error', e instanceof Error ? e.message : String(e));
      return null;
    }
  }
}

export const store = new Store();

/** The current hash route, e.g. `#/t/<id>/players` → ['t', '<id>', 'players']. */
class Route {
  parts: string[] = $state(parse());
  constructor() {
    addEventListener('hashchange', () => (this.parts = parse()));
  }
}
function parse(): string[] {
  return location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
}
export const route = new Route();
