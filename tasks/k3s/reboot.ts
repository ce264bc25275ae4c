/** Reboot a node and wait, bounded, until it answers from a new boot. */
import { ConnectionError } from '../core/errors.ts';
import { sh } from '../core/shell.ts';
import type { Connections } from '../core/connections.ts';
import type { Connection } from '../core/ssh.ts';
import type { NodeSpec } from '../inventory/types.ts';

/** Changes on every boot: boot_id on a Pi, PID 1's start time in a container. */
export const BOOT_ID = sh`echo "$(cat /proc/sys/kernel/random/boot_id) $(cut -d' ' -f22 /proc/1/stat)"`;

export async function rebootAndWait(
  node: NodeSpec,
  conn: Connection,
  connections: Connections,
  timeoutMs: number,
  progress: (msg: string) => void,
): Promise<Connection> {
  const before = (await conn.run(BOOT_ID)).stdout.trim();
  // Detached, so that this command returns before the connection drops.
  await conn.run(sh`setsid -f sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 < /dev/null`);
  await connections.forget(node);
  const started = Date.now();
  let last = 'no answer yet';
  while (Date.now() - started < timeoutMs) {
    await new Promise((r) => setTimeout(r, 2000));
    progress(`waiting for ${node.name} to come back from reboot (${Math.round((Date.now() - started) / 1000)}s, ${last})`);
    try {
      const next = await connections.get(node);
      const now = (await next.run(BOOT_ID)).stdout.trim();
      if (now && now !== before) return next;
      last = 'still the old boot';
      await connections.forget(node);
    } catch (err) {
      last = (err as Error).message.split('\n')[0] ?? 'unreachable';
      await connections.forget(node);
    }
  }
  throw new ConnectionError(`${node.name} did not come back within ${timeoutMs / 1000}s after reboot (${last}); check its console`);
}
