import { describe, expect, it } from 'vitest';
import { clockAt, offsetFromPong, rotationIndex, ServerClock, type ClockLike } from './clock';
import { displayTopic, HDMI_DISPLAY_ID } from './topics';

const MIN = 60_000;
const segs = [
  { title: 'Level 1', detail: '100/200', is_break: false, duration_ms: 20 * MIN },
  { title: 'Level 2', detail: '200/400 ante 400', is_break: false, duration_ms: 20 * MIN },
  { title: 'Break', detail: 'colour up the 25s', is_break: true, duration_ms: 10 * MIN },
  { title: 'Level 3', detail: '300/600 ante 600', is_break: false, duration_ms: 20 * MIN },
];
const running = (remaining_ms: number): ClockLike => ({ status: 'running', running: true, remaining_ms, segments: segs });
const T0 = 1_700_000_000_000;

describe('clockAt: counting down locally from the node view', () => {
  it('counts down by the time passed on the node clock', () => {
    const c = clockAt(running(12 * MIN), T0, T0 + 4_000);
    expect(c.index).toBe(0);
    expect(c.remainingMs).toBe(12 * MIN - 4_000);
    expect(c.timeLeft).toBe('11:56');
  });

  it('moves into the next level when the current one runs out, carrying the overshoot', () => {
    const c = clockAt(running(1_000), T0, T0 + 3_000);
    expect(c.index).toBe(1);
    expect(c.segment?.title).toBe('Level 2');
    expect(c.remainingMs).toBe(20 * MIN - 2_000);
    expect(c.next).toBe('Next: Break');
  });

  it('skips several segments when a display was asleep for a long time', () => {
    // 1 s left of level 1, then 20 min level 2, then into the break by 5 min.
    const c = clockAt(running(1_000), T0, T0 + 1_000 + 20 * MIN + 5 * MIN);
    expect(c.segment?.title).toBe('Break');
    expect(c.remainingMs).toBe(5 * MIN);
    expect(c.next).toBe('Next: 300/600 ante 600');
    expect(c.nextBreak).toBe('');
  });

  it('says how long until the next break, counting the levels in between', () => {
    const c = clockAt(running(5 * MIN), T0, T0);
    expect(c.nextBreak).toBe('Break in 25:00');
  });

  it('stops at 0:00 and says finished after the last segment', () => {
    const c = clockAt(running(MIN), T0, T0 + 200 * MIN);
    expect(c.finished).toBe(true);
    expect(c.index).toBe(3);
    expect(c.timeLeft).toBe('0:00');
  });

  it('keeps a paused clock where the node left it however much time passes', () => {
    const paused: ClockLike = { status: 'paused', running: false, remaining_ms: 7 * MIN + 500, segments: segs };
    const c = clockAt(paused, T0, T0 + 60 * MIN);
    expect(c.index).toBe(0);
    expect(c.timeLeft).toBe('7:01');
  });

  it('ignores a view from the future (node time jumped back) instead of counting up', () => {
    const c = clockAt(running(10 * MIN), T0, T0 - 5_000);
    expect(c.remainingMs).toBe(10 * MIN);
  });
});

describe('server clock offset', () => {
  it('assumes the pong was stamped halfway through the round trip', () => {
    expect(offsetFromPong(1000, 5100, 1200)).toBe(4000);
  });

  it('prefers the estimate from the fastest round trip', () => {
    const c = new ServerClock();
    c.pong(0, 10_050, 100); // rtt 100 → offset 10000
    c.pong(1000, 11_900, 1800); // rtt 800, worse → ignored
    expect(c.offsetMs).toBe(10_000);
    c.pong(2000, 12_010, 2020); // rtt 20 → offset 10000
    expect(c.offsetMs).toBe(10_000);
    expect(c.now(5000)).toBe(15_000);
  });

  it('uses one-way stamps only until a round trip has been measured', () => {
    const c = new ServerClock();
    c.oneWay(9_000, 1_000);
    expect(c.offsetMs).toBe(8_000);
    c.pong(1_000, 11_010, 1_020);
    c.oneWay(50_000, 1_000);
    expect(c.offsetMs).toBe(10_000);
  });
});

describe('rotation and display topics', () => {
  it('shows the same rotation item on every display at the same node time', () => {
    expect(rotationIndex(0, 15, 3)).toBe(0);
    expect(rotationIndex(14_999, 15, 3)).toBe(0);
    expect(rotationIndex(15_000, 15, 3)).toBe(1);
    expect(rotationIndex(45_000, 15, 3)).toBe(0);
    expect(rotationIndex(45_000, 15, 0)).toBe(0);
  });

  it('maps display paths to live topics', () => {
    const id = '0192f0a0-1111-7222-8333-444455556666';
    expect(displayTopic('/display/hdmi')).toBe(`display/${HDMI_DISPLAY_ID}`);
    expect(displayTopic(`/display/${id}`)).toBe(`screen/${id}`);
    expect(displayTopic(`/display/d/${id}/`)).toBe(`display/${id}`);
    expect(displayTopic('/display/nope')).toBeNull();
    expect(displayTopic('/tournaments')).toBeNull();
  });
});
