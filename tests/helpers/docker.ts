/**
 * A Docker Engine for tests (tasks/lab/engine.ts: its own data root and socket,
 * in a network namespace with only loopback), named `armlab-d…` per run, its
 * owner recorded so that an engine whose test process died is swept.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startOwnEngine, stopOwnEngine } from '../../tasks/lab/engine.ts';
import { madeJustNow } from './sweep.ts';

export interface TestEngine {
  docker: Docker;
  host: string;
  dir: string;
  /** The engine's network namespace (loopback only). */
  netns: string;
  stop(): Promise<void>;
}

async function stopEngineAt(dir: string, netns: string, fallbackPid = 0): Promise<void> {
  await stopOwnEngine(dir, netns, fallbackPid);
  await rm(dir, { recursive: true, force: true });
}

/** Engines whose test process died without stopping them: stopped by their recorded PID. */
async function sweepOrphans(): Promise<void> {
  for (const entry of await readdir('/tmp')) {
    const id = /^armlab-d([0-9a-f]{5})$/.exec(entry)?.[1];
    if (!id) continue;
    const owner = Number(await readFile(join('/tmp', entry, 'owner.pid'), 'utf8').catch(() => '0'));
    if (owner && owner !== process.pid && existsSync(`/proc/${owner}`)) continue;
    if (!owner && (await madeJustNow(join('/tmp', entry)))) continue;
    await stopEngineAt(join('/tmp', entry), `armlab-d${id}`);
  }
}

export async function startEngine(): Promise<TestEngine> {
  await sweepOrphans();
  const id = randomBytes(3).toString('hex').slice(0, 5);
  const dir = `/tmp/armlab-d${id}`;
  const netns = `armlab-d${id}`;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  const engine = await startOwnEngine(dir, netns).catch(async (err: Error) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    docker: new Docker({ socketPath: join(dir, 'docker.sock') }),
    host: engine.host,
    dir,
    netns,
    stop: () => stopEngineAt(dir, netns, engine.pid),
  };
}
