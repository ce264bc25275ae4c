/**
 * What the benchmarks share: timing a step (progress on stderr, so that stdout
 * holds only run.ts's `name=ratio` lines) and plain OpenSSH to a lab node, the
 * way a user would do the same by hand.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import type { NodeSpec } from '../../tasks/inventory/types.ts';

/** Seconds fn took, printed on stderr as `label: 1.23 s`. */
export async function timed(label: string, fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(`${label}: ${seconds.toFixed(2)} s\n`);
  return seconds;
}

/** ssh options for a lab node: its key and known_hosts, never a prompt. */
export function sshArgs(node: NodeSpec): string[] {
  return ['-i', node.privateKey, '-p', String(node.port), '-o', `UserKnownHostsFile=${node.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];
}

/** Run ssh or scp to completion; stdin from a file when given. */
export function exec(cmd: string, args: string[], stdinFile?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [stdinFile ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    if (stdinFile) createReadStream(stdinFile).pipe(child.stdin!);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

export const onNode = (node: NodeSpec, command: string, stdinFile?: string) => exec('ssh', [...sshArgs(node), `${node.user}@${node.address}`, command], stdinFile);
