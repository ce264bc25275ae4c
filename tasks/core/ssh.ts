/**
 * One SSH connection per node per run, reused for every command. Commands are
 * scripts sent to `bash -s` on stdin (Raspberry Pi OS /bin/sh is dash), under
 * sudo when the login user is not root. Host keys are checked against the
 * inventory's known_hosts file.
 */
import { getCiphers, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { NodeSSH } from 'node-ssh';
import ssh2, { type ClientChannel, type ConnectConfig } from 'ssh2';
import type { NodeSpec } from '../inventory/types.ts';
import { ConnectionError, HostKeyError, RemoteCommandError } from './errors.ts';
import { appendKnownHost, fingerprint, hostKeyAlgorithmsFor, hostToken, judgeHostKey, keyTypeOf, readKnownHosts } from './known-hosts.ts';
import { redact, Secret, sh, type Command } from './shell.ts';
import { authFailure, authMethods, credentialsFor, isAuthRefusal } from './ssh-auth.ts';

export interface SessionOptions {
  acceptNewHostKeys?: boolean;
  /** Called with every command text before it runs (--verbose). */
  onCommand?: (node: string, text: string) => void;
}

export interface RunOptions {
  /** Bytes for the command's stdin after the script (a Secret is never logged). */
  stdin?: string | Buffer | Secret | Readable;
  /** Run as root through sudo (default: the node's `become`). */
  become?: boolean;
  timeoutMs?: number;
  /** Resolve with the exit code instead of throwing on non-zero. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const STDERR_TAIL_BYTES = 4096;

/**
 * chacha20-poly1305 first, as OpenSSH's own client orders it. ssh2 puts AES-GCM first on a machine with AES
 * instructions, which suits this side; but the node decrypts too, and Pis before the Pi 5 have no AES
 * instructions (facts.md, "Transfer costs"): for the gigabytes images:import streams, the Pi's sshd is the
 * bottleneck. Measured on the emulated lab's sshd (OpenSSH 9.2, armhf): 100 MB in 8.1 s with aes128-gcm,
 * 3.0 s with chacha20-poly1305. Left to ssh2's order where this Node has no chacha20.
 */
const CHACHA = 'chacha20-poly1305@openssh.com';
const CIPHERS: Pick<NonNullable<ConnectConfig['algorithms']>, 'cipher'> = getCiphers().includes('chacha20') ? { cipher: { remove: CHACHA, prepend: CHACHA } as never } : {};

/** Wrap a command so that bash reads it whole before anything reads stdin. */
export function framedScript(command: Command): string {
  // bash reads a script from a pipe one byte at a time, and parses the whole
  // `{ … } ; exit` line before running it: the payload after it stays unread
  // until the command itself consumes it, and is never run as script text.
  return `set -euo pipefail\nexport LC_ALL=C\n{\n${command.text}\n} ; exit $?\n`;
}

function describeConnectError(node: NodeSpec, err: Error & { code?: string; level?: string }): string {
  const where = `${node.name} (${node.user}@${node.address}:${node.port})`;
  const check = `check by hand with: ssh -p ${node.port} ${node.user}@${node.address}`;
  const fix = 'or fix its address in the inventory';
  if (err.code === 'ECONNREFUSED') return `${where}: connection refused: the host is up but nothing listens on port ${node.port}; start sshd there (sudo systemctl enable --now ssh) or set the node's port, then ${check}`;
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return `${where}: host unreachable from this machine (no route); is it powered and on this network? ${check}, ${fix}`;
  if (err.code === 'ENOTFOUND') return `${where}: the name ${node.address} does not resolve; use the Pi's IP address, ${fix}`;
  if (/handshake|timed out/i.test(err.message)) return `${where}: no answer within ${node.connectTimeoutMs / 1000}s (host down, or not reachable from here); ping ${node.address}, then ${check}, ${fix}`;
  return `${where}: ${err.message}; ${check}`;
}

/**
 * ssh2's connect, except that a failure of the agent (one that refuses to
 * sign, as a key added with `ssh-add -c` does with no one to confirm) moves on
 * to the next credential, as ssh does, where node-ssh's connect gives up.
 */
function connectClient(agentFailures: string[], config: ConnectConfig, onCipher: (cipher: string) => void): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('handshake', (negotiated) => onCipher(negotiated.cs.cipher));
    const fail = (err: Error) => {
      client.removeAllListeners('ready');
      client.end();
      reject(err);
    };
    const onError = (err: Error & { level?: string }) => (err.level === 'agent' ? agentFailures.push(err.message) : fail(err));
    const onClose = () => fail(Object.assign(new Error('No response from server'), { code: 'ETIMEDOUT' }));
    client.on('error', onError);
    client.once('close', onClose);
    client.once('ready', () => {
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      // Until the Connection listens: an error event without a listener would end the process.
      client.on('error', () => undefined);
      resolve(client);
    });
    client.connect(config);
  });
}

export class Connection {
  private closed = false;
  private lost: Error | null = null;

  private constructor(
    readonly node: NodeSpec,
    private readonly ssh: NodeSSH,
    private readonly options: SessionOptions,
    /** The cipher the handshake chose (client to server). */
    readonly cipher: string,
  ) {
    ssh.connection?.on('close', () => {
      if (!this.closed) this.lost = new ConnectionError(`${node.name}: connection lost`);
    });
    ssh.connection?.on('error', (err) => {
      this.lost = new ConnectionError(`${node.name}: connection lost (${err.message})`);
    });
  }

  static async open(node: NodeSpec, options: SessionOptions = {}): Promise<Connection> {
    const creds = await credentialsFor(node);
    const entries = await readKnownHosts(node.knownHosts);
    const token = hostToken(node.address, node.port);
    let refusal: HostKeyError | null = null;
    let newKey: Buffer | null = null;
    const algorithms = hostKeyAlgorithmsFor(entries, token);

    const ssh = new NodeSSH();
    const agentFailures: string[] = [];
    let cipher = '';
    try {
      ssh.connection = await connectClient(agentFailures, {
        host: node.address,
        port: node.port,
        username: node.user,
        authHandler: authMethods(node, creds) as never,
        readyTimeout: node.connectTimeoutMs,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        algorithms: { ...CIPHERS, ...(algorithms ? { serverHostKey: algorithms as never } : {}) },
        hostVerifier: (key: Buffer) => {
          const verdict = judgeHostKey(entries, token, key);
          if (verdict.kind === 'match') return true;
          if (verdict.kind === 'changed') {
            refusal = new HostKeyError(
              `${node.name} (${token}): host key has CHANGED: ${node.knownHosts}:${verdict.entry.line} holds a ${verdict.entry.keyType} key, ` +
                `the host presented ${keyTypeOf(key)} ${fingerprint(key)}. Refusing to connect. If the host was reinstalled, ` +
                `remove the old entry (ssh-keygen -R '${token}' -f ${node.knownHosts}) and re-run with --accept-new-host-keys.`,
            );
            return false;
          }
          if (!options.acceptNewHostKeys) {
            refusal = new HostKeyError(
              `${node.name} (${token}): host key ${keyTypeOf(key)} ${fingerprint(key)} is not in ${node.knownHosts}. ` +
                `Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then re-run with --accept-new-host-keys.`,
            );
            return false;
          }
          newKey = key;
          return true;
        },
      }, (c) => (cipher = c));
    } catch (err) {
      ssh.dispose();
      if (refusal) throw refusal;
      if (isAuthRefusal(err as Error)) throw new ConnectionError(authFailure(node, creds, agentFailures));
      throw new ConnectionError(describeConnectError(node, err as Error));
    }
    if (newKey) await appendKnownHost(node.knownHosts, token, newKey);
    return new Connection(node, ssh, options, cipher);
  }

  /** Run a command; throws RemoteCommandError on a non-zero exit unless allowFailure. */
  async run(command: Command, opts: RunOptions = {}): Promise<RunResult> {
    if (this.lost) throw this.lost;
    const client = this.ssh.connection;
    if (!client) throw new ConnectionError(`${this.node.name}: not connected`);
    const become = (opts.become ?? this.node.become) && this.node.user !== 'root';
    const entry = become ? 'sudo -n -- bash -s' : 'bash -s';
    const shown = redact(command.text);
    this.options.onCommand?.(this.node.name, command.text);
    const timeoutMs = opts.timeoutMs ?? this.node.commandTimeoutMs;
    const input = opts.stdin;
    // A stream may fail (a missing file) before the channel is open: listen from the start.
    let inputFailed: Error | null = null;
    let onInputFailure: (e: Error) => void = (e) => {
      inputFailed = e;
    };
    const streamed = input !== undefined && !(input instanceof Secret) && typeof input !== 'string' && !Buffer.isBuffer(input) ? input : null;
    streamed?.once('error', (e: Error) => onInputFailure(e));

    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      client.exec(entry, (err, ch) => (err ? reject(new ConnectionError(`${this.node.name}: cannot open a channel (${err.message})`)) : resolve(ch)));
    });

    return await new Promise<RunResult>((resolve, reject) => {
      const out: Buffer[] = [];
      let err = Buffer.alloc(0);
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.removeListener('close', onLost);
        fn();
      };
      const onLost = () =>
        finish(() => reject(new RemoteCommandError(this.node.name, shown, null, redact(err.toString()), 'connection lost while it ran')));
      client.once('close', onLost);
      const timer = setTimeout(() => {
        finish(() => reject(new RemoteCommandError(this.node.name, shown, null, redact(err.toString()), `timed out after ${timeoutMs / 1000}s`)));
        try {
          channel.signal('KILL');
        } catch {
          /* the channel may already be gone */
        }
        channel.close();
      }, timeoutMs);

      channel.on('data', (chunk: Buffer) => out.push(chunk));
      channel.stderr.on('data', (chunk: Buffer) => {
        err = Buffer.concat([err, chunk]);
        if (err.length > STDERR_TAIL_BYTES * 4) err = err.subarray(err.length - STDERR_TAIL_BYTES);
      });
      // Set once the input failed after the script was sent: the command is failed, but reported only once
      // its remote side has ended, so that what it was writing (writeFile's temp file) is there to clean up.
      let inputFailure: RemoteCommandError | null = null;
      channel.on('close', (code: number | null, signal?: string) => {
        finish(() => {
          if (inputFailure) return reject(inputFailure);
          const stdout = Buffer.concat(out).toString();
          const stderr = redact(err.subarray(Math.max(0, err.length - STDERR_TAIL_BYTES)).toString());
          if (code === null || code === undefined) {
            reject(new RemoteCommandError(this.node.name, shown, null, stderr, signal ? `killed by ${signal}` : 'ended without an exit status'));
          } else if (code !== 0 && !opts.allowFailure) {
            reject(new RemoteCommandError(this.node.name, shown, code, stderr));
          } else {
            resolve({ code, stdout, stderr });
          }
        });
      });

      // pipe() does not pass a source's error on: fail the command instead of hanging until the timeout.
      const failedInput = (e: Error) => new RemoteCommandError(this.node.name, shown, null, '', `its input failed: ${e.message}`);
      // Before the script is sent nothing runs remotely: fail at once.
      if (inputFailed) {
        finish(() => reject(failedInput(inputFailed!)));
        channel.close();
        return;
      }
      // After: stop the command (KILL where sshd takes signals, and end of input for what still reads it) and
      // fail when its channel closes; the command timeout still bounds the wait.
      onInputFailure = (e) => {
        inputFailure = failedInput(e);
        try {
          channel.signal('KILL');
        } catch {
          /* the channel may already be gone */
        }
        channel.end();
      };
      channel.write(framedScript(command));
      if (input === undefined) channel.end();
      else if (input instanceof Secret) channel.end(input.reveal());
      else if (typeof input === 'string' || Buffer.isBuffer(input)) channel.end(input);
      else streamed?.pipe(channel);
    });
  }

  /**
   * Write a file atomically, content on stdin (a Secret never reaches argv).
   * Two commands: stream into a 0600 temp file beside the target, then set the
   * mode and rename. A transfer that fails or is cut off never reaches the
   * target path: at worst a `.armlab.*` temp file is left beside it.
   */
  async writeFile(path: string, content: string | Buffer | Secret | Readable, mode = 0o600): Promise<void> {
    const octal = mode.toString(8).padStart(4, '0');
    const tmp = `${posix.dirname(path)}/.armlab.${randomBytes(6).toString('hex')}`;
    try {
      await this.run(sh`mkdir -p ${posix.dirname(path)}; (umask 077 && cat > ${tmp})`, { stdin: content });
      await this.run(sh`chmod ${octal} ${tmp} && mv -f ${tmp} ${path}`);
    } catch (err) {
      await this.run(sh`rm -f ${tmp}`, { allowFailure: true }).catch(() => undefined);
      throw err;
    }
  }

  /** True once the connection dropped (keepalive, reboot): it cannot run commands any more. */
  get isLost(): boolean {
    return this.lost !== null;
  }

  close(): void {
    this.closed = true;
    this.ssh.dispose();
  }
}
