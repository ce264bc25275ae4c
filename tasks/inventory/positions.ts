/**
 * Maps field paths (`nodes[2].address`) to the 1-based line where they are
 * written, from js-yaml's event stream, so that schema errors can name a line.
 */
import { EVENT_ID, getScalarValue, type Event } from 'js-yaml';

type Frame =
  | { kind: 'map'; path: string; key: string | null; keyOffset: number }
  | { kind: 'seq'; path: string; index: number }
  | { kind: 'other' };

export interface PathLines {
  /** Line of the path, or of its nearest written ancestor. */
  lineOf(path: (string | number)[]): number;
}

export function formatPath(path: readonly (string | number | symbol)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

export function lineStarts(source: string): number[] {
  const starts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') starts.push(i + 1);
  return starts;
}

export function offsetToLine(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

export function indexPaths(source: string, events: Event[]): PathLines {
  const starts = lineStarts(source);
  const lines = new Map<string, number>();
  const frames: Frame[] = [];

  for (const ev of events) {
    if (ev.type === EVENT_ID.DOCUMENT) {
      frames.push({ kind: 'other' });
      continue;
    }
    if (ev.type === EVENT_ID.POP) {
      frames.pop();
      continue;
    }
    const parent = frames.at(-1);
    const offset = ev.type === EVENT_ID.SCALAR ? ev.valueStart : ev.type === EVENT_ID.ALIAS ? ev.anchorStart : ev.start;

    // A mapping alternates key and value events; a key only names the next value.
    if (parent?.kind === 'map' && parent.key === null) {
      parent.key = ev.type === EVENT_ID.SCALAR ? getScalarValue(source, ev) : '?';
      parent.keyOffset = offset;
      if (ev.type === EVENT_ID.MAPPING || ev.type === EVENT_ID.SEQUENCE) frames.push({ kind: 'other' });
      continue;
    }

    let path = '';
    let at = offset;
    if (parent?.kind === 'map') {
      path = parent.path === '' ? (parent.key ?? '') : `${parent.path}.${parent.key}`;
      at = parent.keyOffset >= 0 ? parent.keyOffset : offset;
      parent.key = null;
    } else if (parent?.kind === 'seq') {
      path = `${parent.path}[${parent.index++}]`;
    } else if (parent?.kind === 'other' && frames.length > 1) {
      path = '?';
    }
    if (at >= 0 && !lines.has(path)) lines.set(path, offsetToLine(starts, at));

    if (ev.type === EVENT_ID.MAPPING) frames.push({ kind: 'map', path, key: null, keyOffset: -1 });
    else if (ev.type === EVENT_ID.SEQUENCE) frames.push({ kind: 'seq', path, index: 0 });
  }

  return {
    lineOf(path) {
      for (let n = path.length; n >= 0; n--) {
        const line = lines.get(formatPath(path.slice(0, n)));
        if (line !== undefined) return line;
      }
      return 1;
    },
  };
}
