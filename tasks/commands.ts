/**
 * The task registry: every task's name, one-line summary and entry point.
 * A task's modules load only when it runs, so a short command starts fast.
 */
import { parseCommon, requireInventory } from './core/args.ts';

export type Command = { summary: string; run: (argv: string[]) => Promise<number> };

const BOOTSTRAP_STEPS = ['preflight', 'k3s:install', 'kubeconfig', 'images:build', 'images:import', 'cni:deploy', 'topo:deploy'];

export const COMMANDS: Record<string, Command> = {
  'inventory:check': {
    summary: 'validate an inventory without connecting and print it normalized',
    async run(argv) {
      const { common } = parseCommon(argv);
      const { loadInventory } = await import('./inventory/load.ts');
      const { dump } = await import('js-yaml');
      const inventory = await loadInventory(requireInventory(common));
      process.stdout.write(dump(inventory, { lineWidth: 200 }));
      process.stdout.write(`${common.inventory}: ok (${inventory.nodes.length} nodes)\n`);
      return 0;
    },
  },
  preflight: {
    summary: 'read-only checks of every node (arch, hard-float, cgroups, swap, iptables, disk, clock, vxlan)',
    async run(argv) {
      const { runNodeCommand } = await import('./core/node-command.ts');
      const { preflightTask, renderPreflightTable } = await import('./preflight/preflight.ts');
      return runNodeCommand(preflightTask, parseCommon(argv).common, (nodes, r) => renderPreflightTable(nodes, r.data));
    },
  },
  'k3s:prep': { summary: 'Pi preparation: cgroup flags (and one reboot), swap off, iptables-legacy where needed', run: async (argv) => (await import('./k3s/install.ts')).k3sInstallCommand(argv, true) },
  'k3s:install': { summary: 'install or upgrade k3s (no traefik, no servicelb): servers, then agents; wait for Ready', run: async (argv) => (await import('./k3s/install.ts')).k3sInstallCommand(argv) },
  'k3s:uninstall': { summary: 'run the uninstall script per role and report what is left', run: async (argv) => (await import('./k3s/uninstall.ts')).k3sUninstallCommand(argv) },
  kubeconfig: { summary: "merge the cluster's kubeconfig into ~/.kube/config (or --kubeconfig PATH)", run: async (argv) => (await import('./k3s/kubeconfig.ts')).kubeconfigCommand(argv) },
  render: { summary: 'print every file armlab would write per node, secrets redacted, without connecting', run: async (argv) => (await import('./k3s/render.ts')).renderCommand(argv) },
  'images:build': { summary: 'build the armv7 images (BuildKit, linux/arm/v7), verify, export to the cache, record in the lock file', run: async (argv) => (await import('./images/command.ts')).imagesBuildCommand(argv) },
  'images:import': { summary: 'stream the built images into every node\'s containerd (k8s.io), skip what is there, pin, purge wrong-platform copies', run: async (argv) => (await import('./import/command.ts')).imagesImportCommand(argv) },
  'cni:deploy': { summary: 'meshnet CNI manifests into k3s\'s auto-deploy folder on the first server, wait for the rollout, check every node\'s CNI config', run: async (argv) => (await import('./deploy/command.ts')).deployCommand('cni', argv) },
  'topo:deploy': { summary: 'k8s-topo manifests into k3s\'s auto-deploy folder on the first server, wait for the rollout', run: async (argv) => (await import('./deploy/command.ts')).deployCommand('topo', argv) },
  bootstrap: {
    summary: BOOTSTRAP_STEPS.join(' -> ') + ', stopping at the first failure; --from TASK resumes',
    run: async (argv) =>
      (await import('./bootstrap.ts')).bootstrapCommand(
        argv,
        BOOTSTRAP_STEPS.map((name) => ({ name, run: (a) => COMMANDS[name]!.run(a) })),
        // The later steps' modules (the schema validator is the slow one) load while the first steps wait on the network.
        () => Promise.all([import('./deploy/command.ts'), import('./import/command.ts'), import('./images/command.ts')]),
      ),
  },
  nightly: { summary: 'resolve upstream, rebuild what moved (and what is built on it), smoke-run, roll out or back, report; --check: resolve and decide only', run: async (argv) => (await import('./nightly/command.ts')).nightlyCommand(argv) },
  'images:rollback': { summary: 'put a kept build of one image (--image NAME [--to BUILD]) back on every node and roll its workloads', run: async (argv) => (await import('./nightly/rollback.ts')).imagesRollbackCommand(argv) },
  'nightly:install': { summary: "install the nightly's systemd service and timer on this machine (--check prints them)", run: async (argv) => (await import('./nightly/install.ts')).nightlyInstallCommand(argv) },
  'nightly:uninstall': { summary: "stop and remove the nightly's systemd units", run: async (argv) => (await import('./nightly/install.ts')).nightlyUninstallCommand(argv) },
  status: { summary: 'per node: k3s version and readiness, images present, CNI config, meshnet and k8s-topo pods (read-only)', run: (argv) => import('./status.ts').then((m) => m.statusCommand(argv)) },
  'lab:up': { summary: 'start an emulated Pi lab and write its inventory', run: async (argv) => (await import('./lab/commands.ts')).labUpCommand(argv) },
  'lab:status': { summary: 'show the lab hosts', run: async (argv) => (await import('./lab/commands.ts')).labStatusCommand(argv) },
  'lab:down': { summary: 'remove everything lab:up created', run: async (argv) => (await import('./lab/commands.ts')).labDownCommand(argv) },
};
