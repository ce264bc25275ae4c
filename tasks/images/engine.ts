/**
 * The Docker Engine that builds: DOCKER_HOST (or the default socket) on this
 * machine, or the inventory's builder node over SSH. It must never pull.
 */
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import type { NodeSpec } from '../inventory/types.ts';

export function localEngine(dockerHost = process.env.DOCKER_HOST): Docker {
  if (!dockerHost) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (dockerHost.startsWith('unix://')) return new Docker({ socketPath: dockerHost.slice('unix://'.length) });
  // tcp:// and ssh:// are understood by docker-modem from the environment.
  return new Docker();
}

/** Docker over SSH to the builder node (docker-modem's ssh protocol, key from the inventory). */
export function builderEngine(node: NodeSpec): Docker {
  return new Docker({
    protocol: 'ssh',
    host: node.address,
    port: node.port,
    username: node.user,
    sshOptions: { privateKey: readFileSync(node.privateKey) },
  } as Docker.DockerOptions);
}

export interface BuildEvent {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
  id?: string;
}

/** Follow a BuildKit build stream (dockerode decodes its protobuf trace into log lines). */
export function followBuild(engine: Docker, stream: NodeJS.ReadableStream, onEvent: (e: BuildEvent) => void): Promise<BuildEvent[]> {
  const follow = (engine as unknown as { followProgress: (s: NodeJS.ReadableStream, done: (err: Error | null, out: BuildEvent[]) => void, progress: (e: BuildEvent) => void) => void }).followProgress;
  return new Promise((resolve, reject) => follow.call(engine, stream, (err, out) => (err ? reject(err) : resolve(out)), onEvent));
}
