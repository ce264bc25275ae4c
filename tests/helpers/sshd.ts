/**
 * An sshd of this machine's (openssh-server) inside a test network namespace,
 * on 127.0.0.1, with its own host key, one authorized client key and a fixed
 * environment for sessions; stopped by PID. Used as the inventory's builder
 * node: Docker over SSH reaches the test dockerd through it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../tasks/core/local.ts';

export interface TestSshd {
  port: number;
  clientKey: string;
  knownHosts: string;
  stop(): Promise<void>;
}

/** sshd in `netns`, files under `dir`; connect from inside the same netns. */
export async function startSshd(netns: string, dir: string, sessionEnv: Record<string, string>): Promise<TestSshd> {
  const port = 22022;
  await mkdir(dir, { recursive: true });
  await mkdir('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'host_key');
  const clientKey = join(dir, 'client_key');
  await run`ssh-keygen -q -t ed25519 -N ${''} -f ${hostKey}`;
  await run`ssh-keygen -q -t ed25519 -N ${''} -f ${clientKey}`;
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`));
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${(await readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')}\n`);
  const env = Object.entries(sessionEnv).map(([k, v]) => `${k}=${v}`).join(' ');
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'UsePAM no', 'StrictModes no',
      `PidFile ${join(dir, 'sshd.pid')}`, ...(env ? [`SetEnv ${env}`] : []), '',
    ].join('\n'),
  );
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, '/usr/sbin/sshd', '-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore', detached: true });
  const pid = child.pid ?? 0;
  const stop = async () => {
    if (pid && existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGTERM');
  };
  const deadline = Date.now() + 15_000;
  while (!(await run`nsenter ${`--net=/run/netns/${netns}`} bash -c ${`exec 3<>/dev/tcp/127.0.0.1/${port}`}`.then(() => true, () => false))) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error('sshd did not start listening');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, clientKey, knownHosts, stop };
}
