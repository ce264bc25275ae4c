/**
 * k3s:install on one node: probe, plan (plan.ts), then only the steps that
 * differ: binary, token file, config.yaml, install.sh, restart.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { RemoteCommandError } from '../core/errors.ts';
import type { NodeTask } from '../core/runner.ts';
import type { Connection } from '../core/ssh.ts';
import { Raw, Secret, sh } from '../core/shell.ts';
import type { Inventory, NodeSpec } from '../inventory/types.ts';
import { CONFIG_PATH, configText, digest, INSTALL_RECORD, installEnv, needsToken, renderConfig, TOKEN_FILE } from './config.ts';
import { k3sBuildOf } from './artifacts.ts';
import type { K3sArtifacts } from './download.ts';
import { conflict, hasWork, planNode } from './plan.ts';
import { parseProbe } from '../preflight/probe.ts';
import { K3S_PROBE, parseK3sProbe, type K3sFacts } from './probe.ts';

const INSTALL_SCRIPT_ON_NODE = '/usr/local/lib/armlab/k3s-install.sh';

/** iptables 1.8.0–1.8.4 duplicate rules; k3s then prefers its bundled iptables. */
export function needsBundledIptables(version: string): boolean {
  const m = /^1\.8\.([0-4])$/.exec(version);
  return m !== null;
}

export function nodeConfigText(inv: Inventory, node: NodeSpec, facts: Pick<K3sFacts, 'iptablesVersion'>): string {
  const config = renderConfig(inv, node);
  if (needsBundledIptables(facts.iptablesVersion)) config['prefer-bundled-bin'] = true;
  return configText(config);
}

export interface InstallInputs {
  artifacts: K3sArtifacts;
  installScriptSha256: string;
  /** The cluster token, when it had to be read (null for the first server, which makes it). */
  token: Secret | null;
  /** The token's digest as the first server's probe saw it: enough to find the joiners current. */
  tokenSha256: string | null;
  /** Facts k3s:prep ended with in the same run (re-probed after its reboot): no second probe. */
  known?: Map<string, K3sFacts>;
  /** How long a restarted server may take to be ready before the next server is touched. */
  readyTimeoutMs: number;
}

export function installRecord(inv: Inventory, node: NodeSpec, scriptSha256: string): string {
  return digest(JSON.stringify({ env: installEnv(inv, node), script: scriptSha256 }));
}

/**
 * Restart without blocking on the Type=notify unit (a blocking restart returns
 * only once k3s is ready: never, for an agent that cannot join), then wait,
 * bounded, until the new run has begun (a new invocation): for an agent,
 * active or activating (k3s:ready waits for it to join); for a server, active,
 * i.e. ready, so that servers restart one at a time and keep their quorum.
 * A new run that failed or crashed (auto-restart) fails the node at once.
 */
async function restartNoBlock(conn: Connection, nodeName: string, service: string, untilReady: boolean, timeoutMs: number): Promise<void> {
  const show = sh`systemctl show -p InvocationID -p ActiveState -p SubState ${service}`;
  const state = async () => parseProbe((await conn.run(show, { allowFailure: true })).stdout);
  const before = (await state()).InvocationID ?? '';
  await conn.run(sh`systemctl restart --no-block ${service}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await state();
    const started = (s.InvocationID ?? '') !== '' && s.InvocationID !== before;
    const crashed = started && (s.ActiveState === 'failed' || s.SubState === 'auto-restart');
    if (started && !crashed && (s.ActiveState === 'active' || (!untilReady && s.ActiveState === 'activating'))) return;
    if (crashed || Date.now() > deadline) {
      const journal = await conn.run(sh`journalctl -u ${service} -n 15 --no-pager 2>&1 || true`, { allowFailure: true });
      const what = crashed ? `${service} failed to start (${s.ActiveState}/${s.SubState})` : `${service} is ${s.ActiveState || 'unknown'}/${s.SubState || 'unknown'} after ${timeoutMs / 1000}s${untilReady ? ', not ready' : ''}`;
      throw new RemoteCommandError(nodeName, `systemctl restart --no-block ${service}`, 3, journal.stdout, what);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function installNodeTask(inputs: () => InstallInputs): NodeTask<K3sFacts> {
  return {
    id: 'k3s:install',
    appliesTo: (n) => n.role !== 'builder',
    async run(node, conn, ctx, progress) {
      const { artifacts, installScriptSha256, token, tokenSha256, known, readyTimeoutMs } = inputs();
      const inv = ctx.inventory;
      const facts = known?.get(node.name) ?? parseK3sProbe((await conn.run(K3S_PROBE)).stdout);
      const clash = conflict(node, facts);
      if (clash) return { status: 'failed', reason: clash, data: facts };
      const art = artifacts.byArch.get(facts.arch);
      if (!art) throw new Error(`${node.name}: no k3s artefact was fetched for ${facts.arch}`);
      const config = nodeConfigText(inv, node, facts);
      const tokenText = needsToken(inv, node) && token ? `${token.reveal()}\n` : null;
      const wantTokenSha256 = needsToken(inv, node) ? (tokenText !== null ? digest(tokenText) : tokenSha256) : null;
      if (needsToken(inv, node) && wantTokenSha256 === null && !ctx.check) throw new Error(`${node.name}: the cluster token is not available (the first server did not produce it)`);
      const record = installRecord(inv, node, installScriptSha256);
      const plan = planNode(node, facts, {
        tag: artifacts.tag,
        binarySha256: art.sha256,
        configSha256: digest(config),
        // In --check mode on a new cluster there is no token yet: it will be written.
        tokenSha256: wantTokenSha256 ?? (needsToken(inv, node) ? 'not yet known' : null),
        installRecord: record,
      });
      if (!hasWork(plan)) return { status: 'unchanged', reason: plan.reasons.join('; '), data: facts };
      if (ctx.check) return { status: 'would change', reason: `would ${plan.reasons.join('; ')}`, data: facts };

      let built: string | null = null;
      if (plan.uploadBinary) {
        progress(`uploading k3s ${artifacts.tag} (${art.arch})`);
        await conn.writeFile('/usr/local/bin/k3s', createReadStream(art.binaryPath), 0o755);
        const landed = (await conn.run(sh`sha256sum /usr/local/bin/k3s | cut -d' ' -f1`)).stdout.trim();
        if (landed !== art.sha256) throw new Error(`${node.name}: uploaded k3s has sha256 ${landed}, expected ${art.sha256}`);
        // Run it once: it must execute here, and it names its build (said as the node says it).
        const says = await conn.run(sh`/usr/local/bin/k3s --version`, { allowFailure: true });
        if (says.code !== 0) throw new Error(`${node.name}: the uploaded k3s ${artifacts.tag} (${art.arch}) does not run there: ${(says.stderr || says.stdout).trim().split('\n')[0] ?? `exit ${says.code}`}`);
        built = k3sBuildOf(says.stdout);
      }
      if (plan.writeToken) {
        if (tokenText === null) throw new Error(`${node.name}: the cluster token file must be written but the token was not read`);
        await conn.writeFile(TOKEN_FILE, new Secret(tokenText), 0o600);
      }
      if (plan.writeConfig) await conn.writeFile(CONFIG_PATH, config, 0o600);

      if (plan.runInstall) {
        progress(`running install.sh (${plan.service})`);
        await conn.writeFile(INSTALL_SCRIPT_ON_NODE, await readFile(artifacts.installScript), 0o755);
        // Exported by the shell (builtins), so the values never appear in argv.
        const exports = Object.entries(installEnv(inv, node)).map(([k, v]) => sh`export ${new Raw(k)}=${v}`.text).join('\n');
        await conn.run(sh`${new Raw(exports)}\nsh ${INSTALL_SCRIPT_ON_NODE}`);
        await conn.writeFile(INSTALL_RECORD, `${record}\n`, 0o600);
      }
      // install.sh ran with INSTALL_K3S_SKIP_START and notices no config or token change: (re)start here, without
      // blocking on the Type=notify unit (a restart returns only once k3s is ready); k3s:ready waits, bounded.
      progress(`starting ${plan.service}`);
      await restartNoBlock(conn, node.name, plan.service, node.role === 'server', node.role === 'server' ? readyTimeoutMs : 30_000);
      return { status: 'changed', reason: [...plan.reasons, ...(built ? [`k3s --version: ${built}`] : [])].join('; '), data: facts };
    },
  };
}
