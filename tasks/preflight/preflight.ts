/**
 * preflight (read-only): can armlab serve each node? One probe per node,
 * judged by evaluate.ts, printed as a table; soft-float and non-armhf
 * userlands are refused with the reason.
 */
import type { NodeTask } from '../core/runner.ts';
import { renderTable } from '../core/table.ts';
import type { NodeSpec } from '../inventory/types.ts';
import { evaluate, verdict, type Check } from './evaluate.ts';
import { parseProbe, PROBE } from './probe.ts';

export const preflightTask: NodeTask<Check[]> = {
  id: 'preflight',
  async run(node, conn, _ctx, progress) {
    progress('probing');
    const sentAt = Date.now();
    const { stdout } = await conn.run(PROBE);
    const receivedAt = Date.now();
    const checks = evaluate(node, parseProbe(stdout), { sentAt, receivedAt });
    const v = verdict(checks);
    return { status: v.ok ? 'unchanged' : 'failed', reason: v.reason, data: checks };
  },
};

const COLUMNS = ['arch', 'float', 'model', 'os', 'memory cgroup', 'swap', 'iptables', 'disk', 'clock', 'vxlan'];

export function renderPreflightTable(nodes: NodeSpec[], data: Map<string, Check[]>): string {
  const rows = nodes.map((n) => {
    const checks = data.get(n.name);
    if (!checks) return [n.name, n.role, ...COLUMNS.map(() => '-'), 'unreachable'];
    const cell = (name: string) => {
      const c = checks.find((x) => x.name === name);
      return c ? `${c.value}${c.level === 'fail' ? ' ✗' : c.level === 'warn' ? ' !' : ''}` : '-';
    };
    const fails = checks.some((c) => c.level === 'fail');
    return [n.name, n.role, ...COLUMNS.map(cell), fails ? 'REFUSED' : 'ready'];
  });
  return renderTable(['NODE', 'ROLE', 'ARCH', 'FLOAT', 'MODEL', 'OS', 'MEMCG', 'SWAP', 'IPTABLES', 'FREE', 'CLOCK', 'VXLAN', 'VERDICT'], rows);
}
