import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Live } from './live';

// A stand-in for the browser's WebSocket: the test plays the node's side of one socket. The
// real node's side is covered by the Rust tests and the Playwright e2e; this pins the client's
// handling of patches.
class FakeSocket {
  static OPEN = 1;
  static last: FakeSocket | null = null;
  readyState = 1;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  send(text: string): void {
    this.sent.push(JSON.parse(text));
  }
  close(): void {
    this.readyState = 3;
  }
  deliver(msg: unknown): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

describe('Live: updates carrying patches', () => {
  beforeEach(() => {
    vi.stubGlobal('WebSocket', FakeSocket);
    vi.stubGlobal('location', { protocol: 'http:', host: 'node.test' });
  });
  afterEach(() => vi.unstubAllGlobals());

  function open(topics: string[]) {
    const seen: { topic: string; data: unknown }[] = [];
    const live = new Live(topics, { data: (topic, data) => seen.push({ topic, data }) });
    live.start();
    const ws = FakeSocket.last!;
    ws.deliver({ type: 'hello', seq: 7, server_time_ms: 1 });
    return { live, ws, seen };
  }

  it('hands its owner the whole view after each patch', () => {
    const { live, ws, seen } = open(['cash']);
    ws.deliver({ type: 'snapshot', topic: 'cash', seq: 7, server_time_ms: 1, data: { list: ['a', 'b'], n: 1 } });
    ws.deliver({
      type: 'update', topic: 'cash', seq: 8, server_time_ms: 2, kinds: ['k'],
      patch: [{ op: 'add', path: '/list/1', value: 'z' }, { op: 'replace', path: '/n', value: 2 }],
    });
    ws.deliver({ type: 'update', topic: 'cash', seq: 9, server_time_ms: 3, kinds: ['k'], patch: [{ op: 'remove', path: '/list/0' }] });
    expect(seen.map((s) => s.data)).toEqual([
      { list: ['a', 'b'], n: 1 },
      { list: ['a', 'z', 'b'], n: 2 },
      { list: ['z', 'b'], n: 2 },
    ]);
    expect(live.seq).toBe(9);
    live.stop();
  });

  it('takes a full update as the new base for the next patch', () => {
    const { live, ws, seen } = open(['venue']);
    ws.deliver({ type: 'snapshot', topic: 'venue', seq: 7, data: { name: 'a' } });
    ws.deliver({ type: 'update', topic: 'venue', seq: 8, kinds: ['k'], data: { name: 'b', logo: null } });
    ws.deliver({ type: 'update', topic: 'venue', seq: 9, kinds: ['k'], patch: [{ op: 'replace', path: '/logo', value: 'x' }] });
    expect(seen[seen.length - 1].data).toEqual({ name: 'b', logo: 'x' });
    live.stop();
  });

  it('asks for a fresh snapshot when a patch does not fit, and ignores patches until it comes', () => {
    const { live, ws, seen } = open(['displays']);
    ws.deliver({ type: 'snapshot', topic: 'displays', seq: 7, data: { screens: [] } });
    ws.deliver({ type: 'update', topic: 'displays', seq: 8, kinds: ['k'], patch: [{ op: 'remove', path: '/screens/4' }] });
    ws.deliver({ type: 'update', topic: 'displays', seq: 9, kinds: ['k'], patch: [{ op: 'add', path: '/screens/0', value: 1 }] });
    expect(seen).toHaveLength(1);
    const asks = ws.sent.filter((m) => (m as { type: string }).type !== 'ping');
    expect(asks).toEqual([
      { type: 'unsubscribe', topics: ['displays'] },
      { type: 'subscribe', topics: ['displays'] },
    ]);
    ws.deliver({ type: 'snapshot', topic: 'displays', seq: 9, data: { screens: [1] } });
    ws.deliver({ type: 'update', topic: 'displays', seq: 10, kinds: ['k'], patch: [{ op: 'add', path: '/screens/-', value: 2 }] });
    expect(seen[seen.length - 1].data).toEqual({ screens: [1, 2] });
    live.stop();
  });
});
