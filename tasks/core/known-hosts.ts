/**
 * known_hosts: parse (plain and hashed `|1|salt|hash` entries), match a host,
 * judge a presented key, append a new one. Pure except readKnownHosts/append.
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  line: number;
  patterns: string;
  keyType: string;
  keyBase64: string;
  marker?: string;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
    const [patterns, keyType, keyBase64] = fields;
    if (!patterns || !keyType || !keyBase64) return;
    entries.push({ line: i + 1, patterns, keyType, keyBase64, ...(marker ? { marker } : {}) });
  });
  return entries;
}

/** OpenSSH writes non-default ports as `[host]:port`. */
export function hostToken(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

function matchesPattern(pattern: string, token: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(token).digest('base64') === hash;
  }
  const glob = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return glob.test(token);
}

export function entriesFor(entries: KnownHostEntry[], token: string): KnownHostEntry[] {
  return entries.filter((e) => {
    if (e.marker) return false; // @cert-authority / @revoked: not used by armlab
    const pats = e.patterns.split(',');
    if (pats.some((p) => p.startsWith('!') && matchesPattern(p.slice(1), token))) return false;
    return pats.some((p) => !p.startsWith('!') && matchesPattern(p, token));
  });
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('ascii');
}

export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export type KeyVerdict =
  | { kind: 'match'; entry: KnownHostEntry }
  | { kind: 'unknown' }
  | { kind: 'changed'; entry: KnownHostEntry };

export function judgeHostKey(entries: KnownHostEntry[], token: string, blob: Buffer): KeyVerdict {
  const mine = entriesFor(entries, token);
  const presented = blob.toString('base64');
  const same = mine.find((e) => e.keyBase64 === presented);
  if (same) return { kind: 'match', entry: same };
  const type = keyTypeOf(blob);
  const sameType = mine.find((e) => e.keyType === type) ?? mine[0];
  return sameType ? { kind: 'changed', entry: sameType } : { kind: 'unknown' };
}

/** Host key algorithms to offer, so a host known by one key type is asked for that type. */
export function hostKeyAlgorithmsFor(entries: KnownHostEntry[], token: string): string[] | undefined {
  const types = new Set(entriesFor(entries, token).map((e) => e.keyType));
  if (types.size === 0) return undefined;
  const algos: string[] = [];
  for (const t of types) {
    if (t === 'ssh-rsa') algos.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else algos.push(t);
  }
  return algos;
}

export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export async function appendKnownHost(file: string, token: string, blob: Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await appendFile(file, `${token} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
}
