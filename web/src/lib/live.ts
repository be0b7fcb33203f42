// The node's live feed over one WebSocket: snapshots then updates per topic, resumable with
// `since=`. Reconnects on its own with a growing delay and tells its owner what happened, so
// a page can say "reconnected" instead of silently showing old data. Updates carry either the
// whole view (`data`) or a JSON Patch against the previous one (`patch`); owners always get
// the whole view.

import { ServerClock } from './clock';
import { applyPatch, type PatchOp } from './patch';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export interface LiveMessage {
  type: string;
  topic?: string;
  seq?: number;
  server_time_ms?: number;
  client_time_ms?: number;
  kinds?: string[];
  data?: unknown;
  patch?: PatchOp[];
  code?: string;
  message?: string;
}

export interface LiveHandlers {
  data(topic: string, data: unknown, msg: LiveMessage): void;
  state?(state: LiveState, detail: { resumedFrom?: number; attempt: number }): void;
  error?(msg: LiveMessage): void;
}

/** Seconds of silence after which the socket is presumed dead (the node sends time every 10 s). */
const SILENCE_MS = 25_000;
const PING_MS = 15_000;

export class Live {
  readonly clock = new ServerClock();
  seq = 0;
  private ws: WebSocket | null = null;
  private topics: Set<string>;
  private attempt = 0;
  private stopped = false;
  private timers: ReturnType<typeof setTimeout>[] = [];
  private lastHeard = 0;
  private everLive = false;
  /** Each topic's view as last handed to the owner: what the next patch applies to. */
  private views = new Map<string, unknown>();
  /** Topics whose fresh snapshot was asked for; their patches are ignored until it comes. */
  private resyncing = new Set<string>();

  constructor(topics: string[], private handlers: LiveHandlers) {
    this.topics = new Set(topics);
  }

  start(): void {
    this.stopped = false;
    this.open();
    this.timers.push(
      setInterval(() => {
        if (this.ws?.readyState === WebSocket.OPEN) {
          if (Date.now() - this.lastHeard > SILENCE_MS) {
            this.ws.close();
            return;
          }
          this.send({ type: 'ping', client_time_ms: Date.now() });
        }
      }, PING_MS),
    );
  }

  stop(): void {
    this.stopped = true;
    this.timers.forEach((t) => clearInterval(t));
    this.timers = [];
    this.ws?.close();
    this.ws = null;
  }

  /** Adds topics; their snapshots follow on the open socket. */
  subscribe(topics: string[]): void {
    const added = topics.filter((t) => !this.topics.has(t));
    added.forEach((t) => this.topics.add(t));
    if (added.length) this.send({ type: 'subscribe', topics: added });
  }

  unsubscribe(topics: string[]): void {
    const gone = topics.filter((t) => this.topics.delete(t));
    gone.forEach((t) => this.views.delete(t));
    if (gone.length) this.send({ type: 'unsubscribe', topics: gone });
  }

  /** Drops the socket as if the network had (tests and the "reconnect" button use it). */
  drop(): void {
    this.ws?.close();
  }

  private send(v: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(v));
  }

  private open(): void {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const asked = new Set(this.topics);
    const params = new URLSearchParams({ topics: [...asked].join(',') });
    const resuming = this.everLive && this.seq > 0;
    if (resuming) params.set('since', String(this.seq));
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/ws?${params}`);
    this.ws = ws;
    // Every opening sends each topic's snapshot again: patches only follow those.
    this.views.clear();
    this.resyncing.clear();
    this.handlers.state?.(this.everLive ? 'reconnecting' : 'connecting', { attempt: this.attempt });
    ws.onopen = () => {
      this.lastHeard = Date.now();
      // Topics added while the socket was connecting were not in its URL.
      const late = [...this.topics].filter((t) => !asked.has(t));
      if (late.length) this.send({ type: 'subscribe', topics: late });
      this.send({ type: 'ping', client_time_ms: Date.now() });
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let msg: LiveMessage;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.handle(msg, resuming);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.attempt += 1;
      this.handlers.state?.('reconnecting', { attempt: this.attempt });
      // Quick first retries (a node restart takes a second), then no faster than every 5 s.
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5));
      this.timers.push(setTimeout(() => this.open(), delay));
    };
  }

  /** The topic's new view, or undefined if a patch did not fit (a fresh snapshot is asked for). */
  private viewOf(topic: string, msg: LiveMessage): unknown {
    if (msg.patch === undefined) {
      this.views.set(topic, msg.data);
      if (msg.type === 'snapshot') this.resyncing.delete(topic);
      return msg.data;
    }
    if (this.resyncing.has(topic)) return undefined;
    try {
      if (!this.views.has(topic)) throw new Error('a patch before its snapshot');
      const view = applyPatch(this.views.get(topic), msg.patch);
      this.views.set(topic, view);
      return view;
    } catch {
      // Out of step with the node (should not happen): start the topic afresh.
      this.views.delete(topic);
      this.resyncing.add(topic);
      this.send({ type: 'unsubscribe', topics: [topic] });
      this.send({ type: 'subscribe', topics: [topic] });
      return undefined;
    }
  }

  private handle(msg: LiveMessage, resuming: boolean): void {
    const now = Date.now();
    switch (msg.type) {
      case 'hello': {
        if (msg.server_time_ms !== undefined) this.clock.oneWay(msg.server_time_ms, now);
        const from = this.seq;
        this.attempt = 0;
        this.handlers.state?.('live', resuming ? { resumedFrom: from, attempt: 0 } : { attempt: 0 });
        this.everLive = true;
        if (msg.seq !== undefined) this.seq = Math.max(this.seq, msg.seq);
        break;
      }
      case 'snapshot':
      case 'update': {
        if (!msg.topic) break;
        const data = this.viewOf(msg.topic, msg);
        if (data === undefined) break;
        if (msg.seq !== undefined) this.seq = Math.max(this.seq, msg.seq);
        if (msg.server_time_ms !== undefined) this.clock.oneWay(msg.server_time_ms, now);
        this.handlers.data(msg.topic, data, msg);
        break;
      }
      case 'time':
        if (msg.server_time_ms !== undefined) this.clock.oneWay(msg.server_time_ms, now);
        break;
      case 'pong':
        if (msg.client_time_ms != null && msg.server_time_ms !== undefined) {
          this.clock.pong(msg.client_time_ms, msg.server_time_ms, now);
        }
        break;
      case 'error':
        this.handlers.error?.(msg);
        break;
      default:
        // `event` replays are covered by the snapshots that follow them.
        break;
    }
  }
}
