/**
 * The Docker Engine that builds: DOCKER_HOST (or the default socket) on this
 * machine, or the inventory's builder node over SSH. It must never pull.
 */
import Docker from 'dockerode';
import type { NodeSpec } from '../inventory/types.ts';
import { credentialsFor, authMethods } from '../core/ssh-auth.ts';
import { fingerprint, hostToken, judgeHostKey, readKnownHosts } from '../core/known-hosts.ts';

export function localEngine(dockerHost = process.env.DOCKER_HOST): Docker {
  if (!dockerHost) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (dockerHost.startsWith('unix://')) return new Docker({ socketPath: dockerHost.slice('unix://'.length) });
  // tcp:// and ssh:// are understood by docker-modem from the environment.
  return new Docker();
}

/**
 * Docker over SSH to the builder node (docker-modem runs `docker system
 * dial-stdio` there), with the key from the inventory and the host key pinned
 * in known_hosts as for every other connection.
 */
export async function builderEngine(node: NodeSpec): Promise<Docker> {
  const creds = await credentialsFor(node);
  const entries = await readKnownHosts(node.knownHosts);
  const token = hostToken(node.address, node.port);
  return new Docker({
    protocol: 'ssh',
    host: node.address,
    port: node.port,
    username: node.user,
    sshOptions: {
      authHandler: authMethods(node, creds),
      readyTimeout: node.connectTimeoutMs,
      hostVerifier: (key: Buffer) => {
        const verdict = judgeHostKey(entries, token, key);
        if (verdict.kind !== 'match') {
          process.stderr.write(`armlab: builder ${node.name} (${token}): host key ${fingerprint(key)} is ${verdict.kind === 'changed' ? 'CHANGED from' : 'not in'} ${node.knownHosts}; run preflight (with --accept-new-host-keys for a new host) first\n`);
        }
        return verdict.kind === 'match';
      },
    },
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

/** What the build engine natively runs: $BUILDPLATFORM, for build-machine (toolchain) recipes. */
export interface EnginePlatform {
  /** e.g. linux/amd64 */
  platform: string;
  architecture: string;
  variant?: string;
  /** Debian's name for it, for debootstrap. */
  debianArch: string;
  /** What an ELF built for it says (as floatAbiOf names machines). */
  elfMachine: string;
}

/** Pure: from the engine's Go architecture name (`docker version` Arch). */
export function enginePlatformOf(goArch: string): EnginePlatform {
  const known: Record<string, EnginePlatform> = {
    amd64: { platform: 'linux/amd64', architecture: 'amd64', debianArch: 'amd64', elfMachine: 'x86-64' },
    arm64: { platform: 'linux/arm64', architecture: 'arm64', debianArch: 'arm64', elfMachine: 'aarch64' },
    arm: { platform: 'linux/arm/v7', architecture: 'arm', variant: 'v7', debianArch: 'armhf', elfMachine: 'arm' },
  };
  const found = known[goArch];
  if (!found) throw new Error(`the build engine runs on "${goArch}"; armlab knows amd64, arm64 and arm build machines`);
  return found;
}
