/**
 * Which credentials armlab offers: the inventory's key file first (as
 * `ssh -i` does), then the keys of the agent at SSH_AUTH_SOCK. A
 * passphrase-protected key file is used through the agent when the agent holds
 * it, otherwise unlocked with a passphrase read from the terminal (never from
 * argv or the environment, never logged), asked once per key file per run.
 * Whatever was tried is named when the host refuses all of it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import ssh2, { type ParsedKey } from 'ssh2';
import type { NodeSpec } from '../inventory/types.ts';
import { ConnectionError } from './errors.ts';
import { fingerprint } from './known-hosts.ts';
import { askHidden } from './tty.ts';

export interface AgentInfo {
  socket: string;
  /** "ED25519 SHA256:… comment" per key the agent holds. */
  keys: string[];
  publicBlobs: Buffer[];
  /** Why the agent could not be asked, when it could not. */
  problem?: string;
}

export interface Credentials {
  agent: AgentInfo | null;
  /** The key file, parsed (unlocked when it was protected). */
  key: ParsedKey | null;
  /** What was found at the key file's path, in words ("key file … (ED25519 SHA256:…)"). */
  keyNote: string;
}

// ssh2 is CommonJS: its classes come off the default export.
const { OpenSSHAgent, utils } = ssh2;
const AGENT_TIMEOUT_MS = 5000;

const describeKey = (k: ParsedKey) => `${k.type.replace(/^ssh-/, '').toUpperCase()} ${fingerprint(k.getPublicSSH())}${k.comment ? ` ${k.comment}` : ''}`;

let agentAnswer: Promise<AgentInfo | null> | null = null;

/** ssh2's agent client, keeping hold of its sockets so that an agent that never answers can be hung up on. */
class ClosableAgent extends OpenSSHAgent {
  private readonly streams: Duplex[] = [];
  override getStream(cb: (err: Error | null | undefined, stream?: Duplex) => void): void {
    super.getStream((err, stream) => {
      if (stream) this.streams.push(stream);
      cb(err, stream);
    });
  }
  hangUp(): void {
    for (const s of this.streams.splice(0)) s.destroy();
  }
}

/** The agent's keys, asked once per run; null when SSH_AUTH_SOCK is not set. */
export function agentInfo(socket = process.env.SSH_AUTH_SOCK): Promise<AgentInfo | null> {
  if (!socket) return Promise.resolve(null);
  if (agentAnswer) return agentAnswer;
  agentAnswer = new Promise((resolve) => {
    if (!existsSync(socket)) return resolve({ socket, keys: [], publicBlobs: [], problem: 'the socket does not exist (a stale SSH_AUTH_SOCK?)' });
    const agent = new ClosableAgent(socket);
    // A hung agent is not used; its socket is closed so that it cannot keep armlab from exiting.
    const timer = setTimeout(() => {
      agent.hangUp();
      resolve({ socket, keys: [], publicBlobs: [], problem: `no answer within ${AGENT_TIMEOUT_MS / 1000}s` });
    }, AGENT_TIMEOUT_MS);
    agent.getIdentities((err, keys) => {
      clearTimeout(timer);
      if (err) return resolve({ socket, keys: [], publicBlobs: [], problem: err.message });
      const parsed = (keys ?? []) as ParsedKey[];
      resolve({ socket, keys: parsed.map(describeKey), publicBlobs: parsed.map((k) => k.getPublicSSH()) });
    });
  });
  return agentAnswer;
}

/** Parse a private key; 'protected' when it needs a passphrase that was not given or was wrong. */
function parsePrivate(text: Buffer, passphrase?: string): ParsedKey | 'protected' | Error {
  const parsed = utils.parseKey(text, passphrase);
  if (parsed instanceof Error) return /encrypted|passphrase|bad decrypt|integrity check/i.test(parsed.message) ? 'protected' : parsed;
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
}

/**
 * The public half of a protected key, to match it with the agent's keys: an
 * OpenSSH-format key file carries it unencrypted (PROTOCOL.key: magic, cipher,
 * kdf, kdf options, key count, then the public keys); a PEM key does not, so
 * its .pub file beside it is read.
 */
async function publicBlobOf(path: string, text: Buffer): Promise<Buffer | null> {
  const inFile = openSshPublicBlob(text);
  if (inFile) return inFile;
  const pubText = await readFile(`${path}.pub`).catch(() => null);
  if (!pubText) return null;
  const parsed = utils.parseKey(pubText);
  if (parsed instanceof Error) return null;
  return (Array.isArray(parsed) ? parsed[0]! : parsed).getPublicSSH();
}

const OPENSSH_MAGIC = Buffer.from('openssh-key-v1\0');

export function openSshPublicBlob(text: Buffer): Buffer | null {
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(text.toString('latin1'));
  if (!body) return null;
  const raw = Buffer.from(body[1]!.replace(/\s+/g, ''), 'base64');
  if (!raw.subarray(0, OPENSSH_MAGIC.length).equals(OPENSSH_MAGIC)) return null;
  let at = OPENSSH_MAGIC.length;
  const readString = (): Buffer | null => {
    if (at + 4 > raw.length) return null;
    const len = raw.readUInt32BE(at);
    if (at + 4 + len > raw.length) return null;
    const value = raw.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    return value;
  };
  for (let i = 0; i < 3; i++) if (!readString()) return null; // cipher, kdf name, kdf options
  if (at + 4 > raw.length || raw.readUInt32BE(at) < 1) return null;
  at += 4;
  return readString();
}

const unlocked = new Map<string, Promise<ParsedKey | null>>();
const MAX_PASSPHRASE_TRIES = 3;

/** Ask for a protected key's passphrase on the terminal, once per key file per run (parallel nodes share one prompt). */
function unlockOnTerminal(path: string, text: Buffer): Promise<ParsedKey | null> {
  let pending = unlocked.get(path);
  if (!pending) {
    pending = (async () => {
      for (let attempt = 1; attempt <= MAX_PASSPHRASE_TRIES; attempt++) {
        const passphrase = await askHidden(`Enter passphrase for key ${path}: `);
        if (passphrase === null) return null;
        const key = parsePrivate(text, passphrase);
        if (key !== 'protected' && !(key instanceof Error)) return key;
        process.stderr.write(attempt < MAX_PASSPHRASE_TRIES ? 'Bad passphrase, try again.\n' : 'Bad passphrase.\n');
      }
      return null;
    })();
    unlocked.set(path, pending);
  }
  return pending;
}

/** Everything armlab can offer for this node; throws when there is nothing to offer. */
export async function credentialsFor(node: NodeSpec): Promise<Credentials> {
  const agent = await agentInfo();
  const usableAgent = agent && !agent.problem && agent.keys.length > 0 ? agent : null;
  const text = await readFile(node.privateKey).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : err));
  let key: ParsedKey | null = null;
  let keyNote = '';
  if (text === null) keyNote = `key file ${node.privateKey} (does not exist)`;
  else if (text instanceof Error) keyNote = `key file ${node.privateKey} (unreadable: ${text.message})`;
  else {
    const parsed = parsePrivate(text);
    if (parsed !== 'protected' && !(parsed instanceof Error) && !parsed.isPrivateKey()) {
      throw new ConnectionError(`${node.name}: ${node.privateKey} is a public key; set connection.privateKey in the inventory to the private key beside it`);
    }
    if (parsed instanceof Error) throw new ConnectionError(`${node.name}: ${node.privateKey} is not a private key armlab can read (${parsed.message}); set connection.privateKey in the inventory to an OpenSSH or PEM private key`);
    if (parsed !== 'protected') key = parsed;
    else {
      const pub = await publicBlobOf(node.privateKey, text);
      const inAgent = pub !== null && (usableAgent?.publicBlobs.some((b) => b.equals(pub)) ?? false);
      // The agent holds it already: no reason to ask for the passphrase.
      if (!inAgent && process.stdin.isTTY) key = await unlockOnTerminal(node.privateKey, text);
      if (inAgent) keyNote = `key file ${node.privateKey} (passphrase-protected; used through the agent, which holds it)`;
      else if (key) keyNote = '';
      else keyNote = `key file ${node.privateKey} (passphrase-protected, ${process.stdin.isTTY ? 'not unlocked' : 'and no terminal to ask for its passphrase'})`;
    }
  }
  if (key) keyNote = `key file ${node.privateKey} (${describeKey(key)})`;
  if (!key && !usableAgent) throw new ConnectionError(`${node.name}: no SSH key to offer: ${[agentNote(agent), keyNote].join('; ')}. ${NEXT_STEP}`);
  return { agent: usableAgent, key, keyNote };
}

const NEXT_STEP =
  'Set connection.privateKey in the inventory to a key the Pis accept, or load your key into ssh-agent (eval "$(ssh-agent)"; ssh-add KEY) and run armlab in that shell, so SSH_AUTH_SOCK is set';

export function agentNote(agent: AgentInfo | null): string {
  if (!agent) return 'no agent (SSH_AUTH_SOCK is not set)';
  if (agent.problem) return `the agent at ${agent.socket} could not be asked: ${agent.problem}`;
  if (agent.keys.length === 0) return `the agent at ${agent.socket} (holds no keys)`;
  return `the agent at ${agent.socket} (${agent.keys.join(', ')})`;
}

/**
 * ssh2's authHandler: the inventory's key file first (as `ssh -i` offers it first), then
 * the agent's keys. sshd counts every refused key against MaxAuthTries (6 by default),
 * so an agent holding many keys must not use them up before the key the inventory names.
 */
export function authMethods(node: NodeSpec, creds: Credentials): ({ type: 'agent'; username: string; agent: string } | { type: 'publickey'; username: string; key: ParsedKey })[] {
  return [
    ...(creds.key ? [{ type: 'publickey' as const, username: node.user, key: creds.key }] : []),
    ...(creds.agent ? [{ type: 'agent' as const, username: node.user, agent: creds.agent.socket }] : []),
  ];
}

/** ssh2's error for a host that refused every credential (or hung up after too many). */
export const isAuthRefusal = (err: Error & { level?: string }) => err.level === 'client-authentication' || /Too many authentication failures/i.test(err.message);

/** The message for a host that refused every credential: what was tried, and how to check. */
export function authFailure(node: NodeSpec, creds: Credentials, agentFailures: readonly string[] = []): string {
  const agentPart = agentNote(creds.agent) + (agentFailures.length ? `, which failed: ${[...new Set(agentFailures)].join('; ')}` : '');
  const tried = [creds.keyNote, agentPart].filter(Boolean).join(' and ');
  return (
    `${node.name} (${node.user}@${node.address}:${node.port}): authentication failed; tried ${tried}. ` +
    `None is in ~${node.user}/.ssh/authorized_keys there: check with ssh -p ${node.port} -i ${node.privateKey} ${node.user}@${node.address}, ` +
    `and add your public key with ssh-copy-id -p ${node.port} -i ${node.privateKey} ${node.user}@${node.address}`
  );
}

/**
 * Ask for every protected key's passphrase before the progress display starts
 * (it would draw over the prompt). Problems are left to each node's connection,
 * which reports them in its row.
 */
export async function unlockKeysFirst(nodes: readonly NodeSpec[]): Promise<void> {
  if (!process.stdin.isTTY) return;
  const seen = new Set<string>();
  for (const node of nodes) {
    if (seen.has(node.privateKey)) continue;
    seen.add(node.privateKey);
    await credentialsFor(node).catch(() => undefined);
  }
}
