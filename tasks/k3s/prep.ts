/**
 * k3s:prep: what a Pi needs before k3s, each step probed first: the memory
 * cgroup flags on the kernel command line (then one reboot, unless
 * --no-reboot), swap off for good, iptables-legacy where iptables is too old.
 */
import type { NodeTask } from '../core/runner.ts';
import { sh, type Command } from '../core/shell.ts';
import { versionLess } from '../preflight/evaluate.ts';
import { rebootPending, withCgroupFlags } from './cmdline.ts';
import { K3S_PROBE, parseK3sProbe, type K3sFacts } from './probe.ts';
import { rebootAndWait } from './reboot.ts';

export interface PrepOptions {
  noReboot: boolean;
  rebootTimeoutMs: number;
  /** Facts from a read-only probe earlier in the same run: no second probe (each costs seconds on a Pi). */
  known?: Map<string, K3sFacts>;
}

/** Pure: the non-reboot steps a node needs, as [what, command] pairs. */
export function prepSteps(facts: K3sFacts): [string, Command][] {
  const steps: [string, Command][] = [];
  if (facts.swapKb > 0) steps.push([`turn off swap (${Math.round(facts.swapKb / 1024)} MB)`, sh`swapoff -a`]);
  if (facts.fstabSwap > 0) {
    steps.push([
      `comment out ${facts.fstabSwap} swap line(s) in /etc/fstab`,
      sh`sed -i -E '/^[^#]/{/^[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]/s/^/# armlab: no swap for k3s: /}' /etc/fstab`,
    ]);
  }
  if (facts.dphysSwapfile && facts.dphysSwapfile !== 'disabled' && facts.dphysSwapfile !== 'masked') {
    // dphys-swapfile turns swap back on at every boot unless it is removed and disabled.
    steps.push(['disable dphys-swapfile', sh`dphys-swapfile swapoff || true; dphys-swapfile uninstall || true; systemctl disable --now dphys-swapfile`]);
  }
  if (facts.iptablesVersion && versionLess(facts.iptablesVersion, '1.6.2') && !facts.iptablesAlternative.includes('legacy')) {
    steps.push([
      `switch iptables ${facts.iptablesVersion} to iptables-legacy`,
      sh`update-alternatives --set iptables /usr/sbin/iptables-legacy; update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy`,
    ]);
  }
  return steps;
}

export function prepTask(opts: PrepOptions): NodeTask<K3sFacts> {
  return {
    id: 'k3s:prep',
    appliesTo: (n) => n.role !== 'builder',
    async run(node, conn, ctx, progress) {
      let facts = opts.known?.get(node.name) ?? parseK3sProbe((await conn.run(K3S_PROBE)).stdout);
      const done: string[] = [];
      const would: string[] = [];
      let rebootNeeded = false;

      if (facts.cmdlineFile) {
        const next = withCgroupFlags(facts.cmdline);
        if (!next.changed && rebootPending(true, facts.procCmdline, facts.memcg)) {
          if (ctx.check) would.push('reboot (the cgroup flags are set but not yet booted)');
          else {
            done.push('the cgroup flags are set but not yet booted');
            rebootNeeded = true;
          }
        }
        if (next.changed) {
          const what = `add cgroup flags to ${facts.cmdlineFile}`;
          if (ctx.check) would.push(`${what} and reboot`);
          else {
            const mode = (await conn.run(sh`stat -c %a ${facts.cmdlineFile}`)).stdout.trim();
            await conn.writeFile(facts.cmdlineFile, `${next.line}\n`, parseInt(mode, 8));
            done.push(what);
            rebootNeeded = true;
          }
        }
      }
      for (const [what, command] of prepSteps(facts)) {
        if (ctx.check) would.push(what);
        else {
          await conn.run(command);
          done.push(what);
        }
      }
      if (rebootNeeded) {
        if (opts.noReboot) done.push('reboot deferred (--no-reboot): the cgroup flags take effect at the next boot, and the next k3s:prep reboots if the memory cgroup is still off');
        else {
          progress('rebooting');
          const back = await rebootAndWait(node, conn, ctx.connections, opts.rebootTimeoutMs, progress);
          facts = parseK3sProbe((await back.run(K3S_PROBE)).stdout);
          done.push('rebooted');
        }
      }
      if (would.length) return { status: 'would change', reason: `would ${would.join('; ')}`, data: facts };
      if (done.length) return { status: 'changed', reason: done.join('; '), data: facts };
      const note = facts.cmdlineFile ? `${facts.cmdlineFile} has the cgroup flags` : 'no cmdline.txt (not a Pi?)';
      return { status: 'unchanged', reason: `prepared: ${note}, swap off`, data: facts };
    },
  };
}
