#!/usr/bin/env -S node --import tsx
/**
 * armlab <task> [--inventory FILE] [--limit n1,n2] [--check] [--verbose]
 * One entry for every task; the top-level handler turns errors into messages
 * and exit codes (2: bad usage or inventory, 1: a task failed).
 */
import { dump } from 'js-yaml';
import { parseCommon, requireInventory } from './core/args.ts';
import { HostKeyError, ProblemsError, PrerequisiteError, RefusalError, UsageError } from './core/errors.ts';
import { runNodeCommand } from './core/node-command.ts';
import { redact } from './core/shell.ts';
import { loadInventory } from './inventory/load.ts';
import { LAB_USAGE, labDownCommand, labStatusCommand, labUpCommand } from './lab/commands.ts';
import { preflightTask, renderPreflightTable } from './preflight/preflight.ts';
import { k3sInstallCommand } from './k3s/install.ts';
import { kubeconfigCommand } from './k3s/kubeconfig.ts';
import { renderCommand } from './k3s/render.ts';
import { imagesBuildCommand } from './images/command.ts';
import { imagesImportCommand } from './import/command.ts';
import { deployCommand } from './deploy/command.ts';
import { k3sUninstallCommand } from './k3s/uninstall.ts';

type Command = { summary: string; run: (argv: string[]) => Promise<number> };

const COMMANDS: Record<string, Command> = {
  'inventory:check': {
    summary: 'validate an inventory without connecting and print it normalized',
    async run(argv) {
      const { common } = parseCommon(argv);
      const inventory = await loadInventory(requireInventory(common));
      process.stdout.write(dump(inventory, { lineWidth: 200 }));
      process.stdout.write(`${common.inventory}: ok (${inventory.nodes.length} nodes)\n`);
      return 0;
    },
  },
  preflight: {
    summary: 'read-only checks of every node (arch, hard-float, cgroups, swap, iptables, disk, clock, vxlan)',
    run: (argv) => runNodeCommand(preflightTask, parseCommon(argv).common, (nodes, r) => renderPreflightTable(nodes, r.data)),
  },
  'k3s:prep': { summary: 'Pi preparation: cgroup flags (and one reboot), swap off, iptables-legacy where needed', run: (argv) => k3sInstallCommand(argv, true) },
  'k3s:install': { summary: 'install or upgrade k3s (no traefik, no servicelb): servers, then agents; wait for Ready', run: (argv) => k3sInstallCommand(argv) },
  'k3s:uninstall': { summary: 'run the uninstall script per role and report what is left', run: k3sUninstallCommand },
  kubeconfig: { summary: "merge the cluster's kubeconfig into ~/.kube/config (or --kubeconfig PATH)", run: kubeconfigCommand },
  render: { summary: 'print every file armlab would write per node, secrets redacted, without connecting', run: renderCommand },
  'images:build': { summary: 'build the armv7 images (BuildKit, linux/arm/v7), verify, export to the cache, record in the lock file', run: imagesBuildCommand },
  'images:import': { summary: 'stream the built images into every node\'s containerd (k8s.io), skip what is there, pin, purge wrong-platform copies', run: imagesImportCommand },
  'cni:deploy': { summary: 'meshnet CNI manifests into k3s\'s auto-deploy folder on the first server, wait for the rollout, check every node\'s CNI config', run: (argv) => deployCommand('cni', argv) },
  'topo:deploy': { summary: 'k8s-topo manifests into k3s\'s auto-deploy folder on the first server, wait for the rollout', run: (argv) => deployCommand('topo', argv) },
  'lab:up': { summary: 'start an emulated Pi lab and write its inventory', run: labUpCommand },
  'lab:status': { summary: 'show the lab hosts', run: labStatusCommand },
  'lab:down': { summary: 'remove everything lab:up created', run: labDownCommand },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
  return `usage: armlab <task> [--inventory FILE] [--limit n1,n2] [--check] [--verbose] [--accept-new-host-keys] [--parallel N]\n\ntasks:\n${lines.join('\n')}\n\nlab:\n  ${LAB_USAGE.split('\n').join('\n  ')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown task "${name}"; tasks: ${Object.keys(COMMANDS).join(', ')}`);
  return command.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof ProblemsError) {
    const file = err.problems[0]?.file ?? 'the file';
    process.stderr.write(`${err.message}\n${err.problems.length} problem${err.problems.length > 1 ? 's' : ''} in ${file}\n`);
    process.exitCode = 2;
  } else if (err instanceof UsageError) {
    process.stderr.write(`armlab: ${err.message}\n(run armlab --help for usage)\n`);
    process.exitCode = 2;
  } else if (err instanceof PrerequisiteError || err instanceof HostKeyError || err instanceof RefusalError) {
    process.stderr.write(`armlab: ${redact(err.message)}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`armlab: ${redact(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
    process.exitCode = 1;
  }
}
