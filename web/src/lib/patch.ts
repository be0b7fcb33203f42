// Applies the live feed's updates: RFC 6902 JSON Patch, the `add`, `remove` and `replace`
// operations the node sends (see docs/live-protocol.md). The result is a new document that
// shares every untouched branch with the old one, and every container on a changed path is a
// fresh copy: Svelte sees a new object where something changed, and a view already handed to
// a page is never changed under it.

export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'replace'; path: string; value: unknown };

export class PatchError extends Error {}

type Container = Record<string, unknown> | unknown[];

function tokens(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`bad JSON Pointer ${JSON.stringify(path)}`);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function index(token: string, len: number, path: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= len) {
    throw new PatchError(`nothing at ${path}`);
  }
  return Number(token);
}

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

function copy(c: Container): Container {
  return Array.isArray(c) ? c.slice() : { ...c };
}

function child(c: Container, token: string, path: string): unknown {
  if (Array.isArray(c)) return c[index(token, c.length, path)];
  if (!Object.prototype.hasOwnProperty.call(c, token)) throw new PatchError(`nothing at ${path}`);
  return c[token];
}

function setChild(c: Container, token: string, v: unknown, path: string): void {
  if (Array.isArray(c)) c[index(token, c.length, path)] = v;
  else c[token] = v;
}

function applyOne(doc: unknown, op: PatchOp): unknown {
  const path = tokens(op.path);
  if (path.length === 0) {
    if (op.op === 'remove') throw new PatchError('cannot remove the whole document');
    return op.value;
  }
  if (!isContainer(doc)) throw new PatchError(`nothing at ${op.path}`);
  const root = copy(doc);
  let parent: Container = root;
  for (const token of path.slice(0, -1)) {
    const next = child(parent, token, op.path);
    if (!isContainer(next)) throw new PatchError(`nothing at ${op.path}`);
    const fresh = copy(next);
    setChild(parent, token, fresh, op.path);
    parent = fresh;
  }
  const last = path[path.length - 1];
  if (Array.isArray(parent)) {
    if (op.op === 'add') {
      const at = last === '-' ? parent.length : index(last, parent.length + 1, op.path);
      parent.splice(at, 0, op.value);
    } else {
      const at = index(last, parent.length, op.path);
      if (op.op === 'remove') parent.splice(at, 1);
      else parent[at] = op.value;
    }
  } else {
    const has = Object.prototype.hasOwnProperty.call(parent, last);
    if (op.op !== 'add' && !has) throw new PatchError(`nothing at ${op.path}`);
    if (op.op === 'remove') delete parent[last];
    else parent[last] = op.value;
  }
  return root;
}

/** `doc` with `ops` applied in order; throws `PatchError` if they were not made for it. */
export function applyPatch(doc: unknown, ops: PatchOp[]): unknown {
  return ops.reduce(applyOne, doc);
}
