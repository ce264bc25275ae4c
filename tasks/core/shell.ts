/**
 * The one quoting layer for remote commands. Every `${}` in a `sh` template is
 * POSIX single-quoted (arrays per element), so no interpolated value can change
 * the shape of a command. POSIX quoting rather than bash `$'…'` because the
 * same text must survive dash (Raspberry Pi OS /bin/sh) when nested in `sh -c`.
 */

const knownSecrets = new Set<string>();

/** Replace every secret value this process has seen with `***` (logs, stderr tails). */
export function redact(text: string): string {
  let out = text;
  for (const secret of knownSecrets) out = out.split(secret).join('***');
  return out;
}

/** A value that must never appear in argv, a log line or an error message. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    if (value.length >= 4) knownSecrets.add(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
}

/** Raw shell text, inserted unquoted: only for fragments built by this module. */
export class Raw {
  constructor(readonly text: string) {}
}

export type ShellValue = string | number | Raw | readonly (string | number)[];

/** A command ready to send: its text (safe to log: it holds no secret). */
export interface Command {
  readonly text: string;
}

export function quote(value: string | number): string {
  const s = String(value);
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function render(value: ShellValue | Secret | Command): string {
  if (value instanceof Secret) {
    // Secrets travel on stdin (see Connection.writeFile); refusing here keeps
    // them out of argv and out of the command text that --verbose prints.
    throw new TypeError('a Secret cannot be interpolated into a command; pass it on stdin');
  }
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return value.map((v) => quote(v)).join(' ');
  if (typeof value === 'object' && value !== null && 'text' in value) return value.text;
  if (typeof value === 'string' || typeof value === 'number') return quote(value);
  throw new TypeError(`cannot quote a ${typeof value} into a command`);
}

/** Tagged template: sh`rm -f ${path}` → `rm -f '/a b'`. Nested commands embed as is. */
export function sh(strings: TemplateStringsArray, ...values: (ShellValue | Command)[]): Command {
  let text = strings[0] ?? '';
  values.forEach((v, i) => {
    text += render(v) + (strings[i + 1] ?? '');
  });
  return { text };
}

/** Join commands into one script, one per line. */
export function script(...commands: Command[]): Command {
  return { text: commands.map((c) => c.text).join('\n') };
}
