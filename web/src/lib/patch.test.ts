import { describe, expect, it } from 'vitest';
import { applyPatch, PatchError, type PatchOp } from './patch';

// Patches as the node makes them (crates/pvm-core/src/patch.rs builds the same cases).
describe('applyPatch: the live feed updates', () => {
  it('replaces one member deep in an array of objects', () => {
    const old = { entries: [{ id: 1, chips: 10 }, { id: 2, chips: 20 }], name: 'x' };
    const ops: PatchOp[] = [{ op: 'replace', path: '/entries/1/chips', value: 25 }];
    expect(applyPatch(old, ops)).toEqual({ entries: [{ id: 1, chips: 10 }, { id: 2, chips: 25 }], name: 'x' });
  });

  it('copies only the changed path and never changes the old view', () => {
    const old = { entries: [{ id: 1 }, { id: 2 }], venue: { name: 'v' } };
    const frozen = JSON.parse(JSON.stringify(old));
    const out = applyPatch(old, [{ op: 'replace', path: '/entries/0/id', value: 9 }]) as typeof old;
    expect(old).toEqual(frozen);
    expect(out).not.toBe(old);
    expect(out.entries).not.toBe(old.entries);
    expect(out.entries[1]).toBe(old.entries[1]);
    expect(out.venue).toBe(old.venue);
  });

  it('inserts into and removes from the middle of arrays, and appends with -', () => {
    expect(applyPatch([1, 2, 3], [{ op: 'add', path: '/1', value: 9 }])).toEqual([1, 9, 2, 3]);
    expect(applyPatch([1, 2, 3], [{ op: 'remove', path: '/1' }])).toEqual([1, 3]);
    expect(applyPatch([1], [{ op: 'add', path: '/-', value: 2 }])).toEqual([1, 2]);
    expect(applyPatch([1, 2, 3], [{ op: 'add', path: '/3', value: 4 }])).toEqual([1, 2, 3, 4]);
  });

  it('applies operations in order: repeated removals at one index shift the rest', () => {
    const ops: PatchOp[] = [
      { op: 'remove', path: '/list/1' },
      { op: 'remove', path: '/list/1' },
      { op: 'add', path: '/list/1', value: 'z' },
    ];
    expect(applyPatch({ list: ['a', 'b', 'c', 'd'] }, ops)).toEqual({ list: ['a', 'z', 'd'] });
  });

  it('moves one element with a remove and an add', () => {
    const ops: PatchOp[] = [
      { op: 'remove', path: '/0' },
      { op: 'add', path: '/2', value: 'a' },
    ];
    expect(applyPatch(['a', 'b', 'c'], ops)).toEqual(['b', 'c', 'a']);
  });

  it('adds, removes and nulls object members', () => {
    const ops: PatchOp[] = [
      { op: 'remove', path: '/a' },
      { op: 'add', path: '/c', value: 3 },
      { op: 'replace', path: '/b', value: null },
    ];
    expect(applyPatch({ a: 1, b: 2 }, ops)).toEqual({ b: null, c: 3 });
  });

  it('unescapes ~1 and ~0 in keys', () => {
    const ops: PatchOp[] = [
      { op: 'replace', path: '/a~1b', value: 2 },
      { op: 'replace', path: '/c~0d', value: 2 },
    ];
    expect(applyPatch({ 'a/b': 1, 'c~d': 1 }, ops)).toEqual({ 'a/b': 2, 'c~d': 2 });
  });

  it('replaces the whole document at the empty path', () => {
    expect(applyPatch({ a: 1 }, [{ op: 'replace', path: '', value: [1] }])).toEqual([1]);
  });

  it('refuses a patch made for another document', () => {
    expect(() => applyPatch({ a: [] }, [{ op: 'replace', path: '/a/3', value: 1 }])).toThrow(PatchError);
    expect(() => applyPatch({ a: 1 }, [{ op: 'remove', path: '/b' }])).toThrow(PatchError);
    expect(() => applyPatch({ a: 1 }, [{ op: 'replace', path: '/a/b', value: 1 }])).toThrow(PatchError);
    expect(() => applyPatch([1], [{ op: 'remove', path: '/01' }])).toThrow(PatchError);
    expect(() => applyPatch({}, [{ op: 'add', path: 'a', value: 1 }])).toThrow(PatchError);
  });
});
