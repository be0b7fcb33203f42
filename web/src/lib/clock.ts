// Clock arithmetic on the client. The node sends a `ClockScreen` computed at `server_time_ms`:
// the time left in the current segment and the segments after it. Between messages the
// display counts on its own, corrected by its estimate of the node's clock, so a level change
// happens on every screen at the same moment even if no message arrives.

import { countdown } from './format';

export interface ClockSegment {
  title: string;
  detail: string;
  is_break: boolean;
  duration_ms: number;
}

export interface ClockLike {
  status: string;
  running: boolean;
  remaining_ms: number;
  segments: ClockSegment[];
}

export interface ClockNow {
  /** Index into `segments` of the segment being played now. */
  index: number;
  segment: ClockSegment | null;
  remainingMs: number;
  timeLeft: string;
  /** Every segment has run out. */
  finished: boolean;
  /** "Next: 300/600 ante 600", "Next: Break" or "". */
  next: string;
  /** "Break in 1:04:00" or "" when no break is ahead. */
  nextBreak: string;
}

/**
 * Where the clock is at `nowServerMs` (the node's time) given a view computed at `viewServerMs`.
 * A paused or not-started clock stays where the view left it.
 */
export function clockAt(view: ClockLike, viewServerMs: number, nowServerMs: number): ClockNow {
  const segs = view.segments;
  let index = 0;
  let remaining = view.remaining_ms;
  let finished = view.status === 'finished' || segs.length === 0;
  if (view.running && !finished) {
    remaining -= Math.max(0, nowServerMs - viewServerMs);
    while (remaining <= 0) {
      if (index + 1 >= segs.length) {
        remaining = 0;
        finished = true;
        break;
      }
      index += 1;
      remaining += segs[index].duration_ms;
    }
  }
  remaining = Math.max(0, remaining);
  const after = segs[index + 1];
  const next = after ? (after.is_break ? 'Next: Break' : `Next: ${after.detail}`) : '';
  let nextBreak = '';
  if (!finished) {
    let until = remaining;
    for (let i = index + 1; i < segs.length; i++) {
      if (segs[i].is_break) {
        nextBreak = `Break in ${countdown(until)}`;
        break;
      }
      until += segs[i].duration_ms;
    }
  }
  return {
    index,
    segment: segs[index] ?? null,
    remainingMs: remaining,
    timeLeft: countdown(remaining),
    finished,
    next,
    nextBreak,
  };
}

/**
 * The node's clock minus ours, from a ping answered with the node's time. Assumes the answer
 * was stamped halfway through the round trip, which is as good as it gets without NTP.
 */
export function offsetFromPong(clientSentMs: number, serverMs: number, clientReceivedMs: number): number {
  return serverMs - (clientSentMs + clientReceivedMs) / 2;
}

/**
 * Keeps the best offset estimate: the one from the fastest round trip, since a slow answer
 * says least about when the node stamped it. A one-way message (no round trip) is used only
 * until a ping has been answered.
 */
export class ServerClock {
  offsetMs = 0;
  private bestRtt = Number.POSITIVE_INFINITY;
  private samples = 0;

  /** A message stamped by the node arrived at `receivedMs` (no round trip known). */
  oneWay(serverMs: number, receivedMs: number): void {
    if (this.samples === 0 && Number.isFinite(serverMs)) this.offsetMs = serverMs - receivedMs;
  }

  /** A pong: the best estimate so far wins; old estimates age so a drifting clock is followed. */
  pong(sentMs: number, serverMs: number, receivedMs: number): void {
    const rtt = receivedMs - sentMs;
    if (!Number.isFinite(serverMs) || rtt < 0) return;
    this.bestRtt *= 1.05;
    if (rtt <= this.bestRtt) {
      this.bestRtt = rtt;
      this.offsetMs = offsetFromPong(sentMs, serverMs, receivedMs);
    }
    this.samples += 1;
  }

  /** The node's time now, by our clock. */
  now(clientNowMs: number = Date.now()): number {
    return clientNowMs + this.offsetMs;
  }
}

/** Which item of a rotation every display shows at `nowServerMs` (the node's rule). */
export function rotationIndex(nowServerMs: number, intervalSecs: number, count: number): number {
  if (count <= 0) return 0;
  const interval = Math.max(1, intervalSecs);
  return Math.floor(nowServerMs / 1000 / interval) % count;
}
