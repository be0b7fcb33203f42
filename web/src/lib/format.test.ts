import { describe, expect, it } from 'vitest';
import { countdown, grouped, money, moneyIn, ordinal, parseChips, parseMoney } from './format';

describe('countdown matches the node (pvm-core format::countdown)', () => {
  it('rounds up to the whole second so a level shows its full length for its first second', () => {
    expect(countdown(1_200_000)).toBe('20:00');
    expect(countdown(1_199_001)).toBe('20:00');
    expect(countdown(1_199_000)).toBe('19:59');
  });
  it('reaches 0:00 exactly at the end and never goes negative', () => {
    expect(countdown(1)).toBe('0:01');
    expect(countdown(0)).toBe('0:00');
    expect(countdown(-5000)).toBe('0:00');
  });
  it('shows hours from an hour up', () => {
    expect(countdown(3_600_000)).toBe('1:00:00');
    expect(countdown(3_723_000)).toBe('1:02:03');
    expect(countdown(3_599_000)).toBe('59:59');
  });
});

describe('amounts', () => {
  it('groups thousands with commas', () => {
    expect(grouped(0)).toBe('0');
    expect(grouped(999)).toBe('999');
    expect(grouped(1000)).toBe('1,000');
    expect(grouped(1_250_000)).toBe('1,250,000');
  });
  it('shows whole units without decimals and cents with two', () => {
    expect(money(125_000)).toBe('1,250');
    expect(money(125_050)).toBe('1,250.50');
    expect(money(5)).toBe('0.05');
    expect(money(-250)).toBe('-2.50');
  });
  it('puts the well-known symbol in front, else the code after', () => {
    expect(moneyIn(400_000, 'EUR')).toBe('€4,000');
    expect(moneyIn(-150, 'GBP')).toBe('-£1.50');
    expect(moneyIn(100_000, 'CHF')).toBe('1,000 CHF');
  });
  it('parses typed money exactly, without floating point error', () => {
    expect(parseMoney('0.29')).toBe(29);
    expect(parseMoney('1,250.5')).toBe(125_050);
    expect(parseMoney('€20')).toBe(2000);
    expect(parseMoney(' 100 ')).toBe(10_000);
    expect(parseMoney('1.234')).toBeNull();
    expect(parseMoney('-5')).toBeNull();
    expect(parseMoney('ten')).toBeNull();
  });
  it('parses chip counts with or without separators', () => {
    expect(parseChips('25,000')).toBe(25_000);
    expect(parseChips('25000')).toBe(25_000);
    expect(parseChips('2.5k')).toBeNull();
  });
  it('writes English ordinals, teens included', () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(ordinal)).toEqual([
      '1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '101st', '111th',
    ]);
  });
});
