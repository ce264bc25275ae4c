/**
 * nightly:install / nightly:uninstall [--check] [--unit-dir DIR]: the
 * nightly's service and timer on the machine that runs armlab. Probe first:
 * unit files already as rendered and the timer enabled change nothing.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommon, requireInventory } from '../core/args.ts';
import { noteChange } from '../core/changes.ts';
import { PrerequisiteError, RefusalError } from '../core/errors.ts';
import { $ } from '../core/local.ts';
import { loadInventory } from '../inventory/load.ts';
import { nightlyPaths } from './paths.ts';
import { KEPT_ENVIRONMENT, renderUnits, unitBase, type UnitFile } from './units.ts';

const EXTRA = { 'unit-dir': { type: 'string' } } as const;
const CHECKOUT = resolve(fileURLToPath(new URL('../../', import.meta.url)));

const say = (m: string) => process.stdout.write(`${m}\n`);

async function systemctl(args: string[]): Promise<string> {
  const out = await $`systemctl ${args}`.nothrow();
  if (out.exitCode !== 0) throw new RefusalError(`systemctl ${args.join(' ')} failed: ${(out.stderr || out.stdout).trim()}`);
  return out.stdout.trim();
}

function requireSystemd(task: string): void {
  if (!existsSync('/run/systemd/system')) {
    throw new PrerequisiteError(`${task}: this machine does not run systemd (no /run/systemd/system), so a timer cannot run here; --check prints the units to install elsewhere`);
  }
}

/** systemd-analyze verify on the rendered units, in a scratch folder: a unit systemd would refuse is never installed. */
async function verifyUnits(units: UnitFile[], scratch: string): Promise<void> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  try {
    for (const u of units) await writeFile(join(scratch, u.name), u.text);
    const out = await $({ cwd: scratch })`systemd-analyze verify --man=no ${units.map((u) => u.name)}`.nothrow();
    if (out.exitCode !== 0) throw new RefusalError(`the nightly's units do not pass systemd-analyze verify:\n${(out.stderr || out.stdout).trim()}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function context(argv: string[]) {
  const { common, values } = parseCommon(argv, EXTRA);
  const inventoryPath = resolve(requireInventory(common));
  const inventory = await loadInventory(inventoryPath);
  const unitDir = typeof values['unit-dir'] === 'string' ? values['unit-dir'] : '/etc/systemd/system';
  const paths = nightlyPaths(inventory, inventoryPath);
  const environment = Object.fromEntries(KEPT_ENVIRONMENT.filter((k) => process.env[k]).map((k) => [k, process.env[k]!]));
  const units = renderUnits({ inventory, inventoryPath, checkout: CHECKOUT, node: process.execPath, home: homedir(), report: paths.report, environment });
  return { common, inventory, unitDir, units, paths };
}

export async function nightlyInstallCommand(argv: string[]): Promise<number> {
  const { common, inventory, unitDir, units, paths } = await context(argv);
  const timer = `${unitBase(inventory.cluster)}.timer`;
  if (common.check) {
    for (const u of units) process.stdout.write(`# ${join(unitDir, u.name)}\n${u.text}\n`);
    return 0;
  }
  requireSystemd('nightly:install');
  await verifyUnits(units, join(paths.state, 'units-verify'));
  const changed: string[] = [];
  await mkdir(unitDir, { recursive: true });
  for (const u of units) {
    const file = join(unitDir, u.name);
    if ((await readFile(file, 'utf8').catch(() => null)) === u.text) continue;
    await writeFile(`${file}.armlab-tmp`, u.text, { mode: 0o644 });
    await rename(`${file}.armlab-tmp`, file);
    changed.push(file);
  }
  // A failure unit left from an inventory that no longer sets nightly.onFailure.
  const staleFailure = join(unitDir, `${unitBase(inventory.cluster)}-failure.service`);
  if (!units.some((u) => u.name.endsWith('-failure.service')) && existsSync(staleFailure)) {
    await rm(staleFailure);
    changed.push(`${staleFailure} (removed)`);
  }
  if (changed.length) await systemctl(['daemon-reload']);
  const enabled = (await $`systemctl is-enabled ${timer}`.nothrow()).stdout.trim() === 'enabled';
  const active = (await $`systemctl is-active ${timer}`.nothrow()).stdout.trim() === 'active';
  if (!enabled || !active) await systemctl(['enable', '--now', timer]);
  // A running timer keeps its old schedule until restarted.
  else if (changed.length) await systemctl(['restart', timer]);
  const next = await systemctl(['list-timers', '--all', '--no-pager', timer]).catch(() => '');
  if (!changed.length && enabled && active) say(`unchanged: ${timer} installed and enabled (${units.map((u) => u.name).join(', ')} as rendered)`);
  else {
    noteChange(`nightly units ${units.map((u) => u.name).join(', ')}`);
    say(`changed: ${changed.length ? `wrote ${changed.join(', ')}; ` : ''}${timer} enabled and started`);
  }
  if (next) say(next);
  say(`logs: journalctl -u ${unitBase(inventory.cluster)}.service`);
  return 0;
}

export async function nightlyUninstallCommand(argv: string[]): Promise<number> {
  const { common, inventory, unitDir, units } = await context(argv);
  const base = unitBase(inventory.cluster);
  const files = [`${base}.service`, `${base}.timer`, `${base}-failure.service`].map((n) => join(unitDir, n)).filter((f) => existsSync(f));
  if (!files.length) {
    say(`unchanged: no nightly units for ${inventory.cluster} in ${unitDir}`);
    return 0;
  }
  if (common.check) {
    say(`would stop and disable ${base}.timer and remove ${files.join(', ')}`);
    return 0;
  }
  requireSystemd('nightly:uninstall');
  // A nightly running now is left to finish: stopping a oneshot mid-import would leave a node half-done.
  await $`systemctl disable --now ${`${base}.timer`}`.nothrow();
  for (const f of files) await rm(f, { force: true });
  await systemctl(['daemon-reload']);
  noteChange(`removed nightly units ${units.map((u) => u.name).join(', ')}`);
  say(`changed: ${base}.timer stopped and disabled; removed ${files.join(', ')}`);
  return 0;
}
