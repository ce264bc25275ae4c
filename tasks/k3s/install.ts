/**
 * k3s:install, in playbook order: probe every node (read-only) → fetch and
 * verify artefacts once → prep → first server → its token → other servers one
 * at a time → agents → wait for every node to be Ready. A node that fails a
 * phase sits out the later ones.
 */
import { parseCommon, requireInventory, selectNodes } from '../core/args.ts';
import { sha256OfFile } from '../core/digest.ts';
import { reasonOf, UsageError } from '../core/errors.ts';
import { connectionsFor } from '../core/node-command.ts';
import { printSummary, runOnNodes, type NodeTask, type Outcome, type RunContext } from '../core/runner.ts';
import { Secret, sh } from '../core/shell.ts';
import type { Connections } from '../core/connections.ts';
import { loadInventory } from '../inventory/load.ts';
import type { NodeSpec } from '../inventory/types.ts';
import { firstServer, SERVER_TOKEN_PATH } from './config.ts';
import { describeArch } from './artifacts.ts';
import { ensureArtifacts, type K3sArtifacts } from './download.ts';
import { installNodeTask } from './install-node.ts';
import { prepTask } from './prep.ts';
import { K3S_PROBE, parseK3sProbe, type K3sFacts } from './probe.ts';
import { diagnose, waitForReady } from './ready.ts';

const EXTRA = {
  offline: { type: 'boolean', default: false },
  'no-reboot': { type: 'boolean', default: false },
  'ready-timeout': { type: 'string', default: '300' },
  'reboot-timeout': { type: 'string', default: '300' },
} as const;

function seconds(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} takes a number of seconds, got "${String(value)}"`);
  return n * 1000;
}

const probeTask: NodeTask<K3sFacts> = {
  id: 'k3s:probe',
  async run(_node, conn) {
    const facts = parseK3sProbe((await conn.run(K3S_PROBE)).stdout);
    return { status: 'unchanged', reason: `${describeArch(facts.kernelArch, facts.arch)} (k3s for ${facts.arch}), ${facts.version ? `k3s ${facts.version}` : 'no k3s'}${facts.unit ? ` (${facts.unit} ${facts.active[facts.unit] || 'inactive'})` : ''}`, data: facts };
  },
};

export async function k3sInstallCommand(argv: string[], onlyPrep = false): Promise<number> {
  const { common, values } = parseCommon(argv, EXTRA);
  const readyTimeoutMs = seconds(values['ready-timeout'], 'ready-timeout');
  const rebootTimeoutMs = seconds(values['reboot-timeout'], 'reboot-timeout');
  const inventory = await loadInventory(requireInventory(common));
  const selected = selectNodes(inventory, common.limit).filter((n) => n.role !== 'builder');
  const connections = connectionsFor(common);
  const ctx: RunContext = { inventory, connections, check: common.check, verbose: common.verbose, parallel: common.parallel };
  const outcomes: Outcome[] = [];
  const failed = new Set<string>();
  let diagnosis = '';
  const phase = async <D>(task: NodeTask<D>, nodes: NodeSpec[], parallel = ctx.parallel) => {
    const live = nodes.filter((n) => !failed.has(n.name));
    const report = await runOnNodes(task, live, { ...ctx, parallel });
    for (const o of report.outcomes) if (o.status === 'failed') failed.add(o.node);
    outcomes.push(...report.outcomes);
    return report;
  };

  try {
    if (onlyPrep) {
      await phase(prepTask({ noReboot: values['no-reboot'] === true, rebootTimeoutMs }), selected);
      return finish();
    }
    // Read-only first: which architectures, so that artefacts are fetched and
    // verified before any node is changed (or rebooted).
    const probe = await phase(probeTask, selected);
    const arches = [...probe.data.values()].map((f) => f.arch);
    let artifacts: K3sArtifacts;
    try {
      artifacts = await ensureArtifacts(inventory.k3s.version, inventory.k3s.mirror, arches, {
        offline: values.offline === true,
        log: (m) => process.stdout.write(`${m}\n`),
      });
    } catch (err) {
      outcomes.push({ node: '-', task: 'k3s:artifacts', status: 'failed', reason: reasonOf(err) });
      return finish();
    }
    const prep = await phase(prepTask({ noReboot: values['no-reboot'] === true, rebootTimeoutMs, known: probe.data }), selected);
    const installScriptSha256 = await sha256OfFile(artifacts.installScript);
    let token: Secret | null = null;
    let tokenSha256: string | null = null;
    const task = installNodeTask(() => ({ artifacts, installScriptSha256, token, tokenSha256, known: prep.data, readyTimeoutMs }));

    const first = firstServer(inventory);
    const servers = selected.filter((n) => n.role === 'server');
    const agents = selected.filter((n) => n.role === 'agent');
    const firstRun = servers.some((s) => s.name === first.name) ? await phase(task, [first]) : null;

    const joiners = selected.filter((n) => n.name !== first.name);
    // The probe's token digest holds while the first server was left as it was;
    // joiners that already hold that token need no secret read at all.
    const firstUntouched = firstRun?.outcomes.every((o) => o.status === 'unchanged') ?? false;
    tokenSha256 = firstUntouched ? probe.data.get(first.name)?.serverTokenSha256 || null : null;
    const joinersCurrent = tokenSha256 !== null && joiners.every((j) => probe.data.get(j.name)?.tokenSha256 === tokenSha256);
    if (joiners.length > 0 && !failed.has(first.name) && !joinersCurrent) {
      try {
        token = await readToken(connections, first, ctx.check ? 1 : Math.max(1, Math.ceil(readyTimeoutMs / 2000)));
      } catch (err) {
        if (!ctx.check) {
          for (const n of joiners) {
            failed.add(n.name);
            outcomes.push({ node: n.name, task: 'k3s:install', status: 'failed', reason: `no cluster token from ${first.name}: ${reasonOf(err)}` });
          }
        }
      }
    }
    // Servers one at a time (an upgrade keeps a quorum), then agents.
    await phase(task, servers.filter((n) => n.name !== first.name), 1);
    await phase(task, agents);

    const ready = selected.filter((n) => !failed.has(n.name));
    if (!ctx.check && ready.length > 0 && !failed.has(first.name)) {
      const server = await connections.get(first);
      process.stdout.write(`waiting for ${ready.map((n) => n.name).join(', ')} to be Ready\n`);
      const { late } = await waitForReady(server, ready, artifacts.tag, readyTimeoutMs, (m) => process.stdout.write(`${m}\n`));
      for (const n of ready) {
        const why = late.get(n.name);
        outcomes.push({ node: n.name, task: 'k3s:ready', status: why ? 'failed' : 'unchanged', reason: why ? `not Ready after ${readyTimeoutMs / 1000}s: ${why}` : `Ready (${artifacts.tag})` });
      }
      if (late.size > 0) diagnosis = await diagnose(late, ready, connections);
    }
    return finish();
  } finally {
    await connections.closeAll();
  }

  function finish(): number {
    return printSummary(onlyPrep ? 'k3s:prep' : 'k3s:install', outcomes, diagnosis);
  }
}

/** The server makes its token once it runs: poll for it on the node, bounded. */
async function readToken(connections: Connections, server: NodeSpec, tries: number): Promise<Secret> {
  const conn = await connections.get(server);
  const r = await conn.run(sh`for i in $(seq 1 ${tries}); do if [ -s ${SERVER_TOKEN_PATH} ]; then head -n1 ${SERVER_TOKEN_PATH}; exit 0; fi; sleep 2; done; echo "no ${SERVER_TOKEN_PATH} after ${tries * 2}s" >&2; exit 1`);
  return new Secret(r.stdout.trim());
}
