/**
 * Pure: the nightly's systemd units, rendered from templates/nightly/ for one
 * inventory. Names carry the cluster, so several inventories can each have
 * their own timer on one machine.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Inventory } from '../inventory/types.ts';

export interface UnitContext {
  inventory: Inventory;
  /** Absolute path of the inventory file (the service runs from anywhere). */
  inventoryPath: string;
  /** The armlab checkout the service runs. */
  checkout: string;
  /** The Node binary the service runs armlab with. */
  node: string;
  home: string;
  /** Where the night's JSON report goes (for the failure command's environment). */
  report: string;
  /** Settings of armlab's found in the installing shell (ARMLAB_CACHE …), kept for the night: it must find the same cache. */
  environment: Record<string, string>;
}

/** The environment variables that decide where armlab's caches, lock and engine are. */
export const KEPT_ENVIRONMENT = ['ARMLAB_CACHE', 'ARMLAB_IMAGES_CACHE', 'ARMLAB_IMAGES_LOCK', 'ARMLAB_DEBIAN_MIRROR', 'XDG_CACHE_HOME', 'DOCKER_HOST'];

export interface UnitFile {
  name: string;
  text: string;
}

export const unitBase = (cluster: string) => `armlab-nightly-${cluster}`;

/** "03:00" → "*-*-* 03:00:00"; anything else is an OnCalendar expression already. */
export function onCalendarOf(schedule: string): string {
  const m = /^(\d{1,2}):(\d{2})$/.exec(schedule.trim());
  return m ? `*-*-* ${m[1]!.padStart(2, '0')}:${m[2]}:00` : schedule.trim();
}

/**
 * One word of an Exec line: systemd splits on spaces, unquotes, expands
 * %-specifiers and $VARIABLES, so all of that is quoted away.
 */
export function execWord(s: string): string {
  if (/\n/.test(s)) throw new Error(`a systemd Exec argument cannot hold a newline: ${JSON.stringify(s)}`);
  const escaped = s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? escaped : `"${escaped}"`;
}

/** An Environment= assignment: quoted as a whole, %-specifiers escaped ($ is not expanded there). */
export function envAssignment(name: string, value: string): string {
  if (/\n/.test(value)) throw new Error(`a systemd Environment value cannot hold a newline: ${JSON.stringify(value)}`);
  return `"${`${name}=${value}`.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

const TEMPLATES = new URL('../../templates/nightly/', import.meta.url);

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`templates/nightly: no value for {{${key}}}`);
    return v;
  });
}

export function renderUnits(ctx: UnitContext): UnitFile[] {
  const base = unitBase(ctx.inventory.cluster);
  const n = ctx.inventory.nightly;
  const failure = n.onFailure ? `${base}-failure.service` : null;
  const values: Record<string, string> = {
    cluster: ctx.inventory.cluster,
    inventory: execWord(ctx.inventoryPath),
    // Both are read with %-specifiers expanded: a % in a path (or %20 in the URL) is written %%.
    checkout: ctx.checkout.replace(/%/g, '%%'),
    docUrl: pathToFileURL(`${ctx.checkout}/README.md`).href.replace(/%/g, '%%'),
    node: execWord(ctx.node),
    homeAssignment: envAssignment('HOME', ctx.home),
    environment: Object.entries(ctx.environment).map(([k, v]) => `Environment=${envAssignment(k, v)}\n`).join(''),
    service: `${base}.service`,
    schedule: n.schedule,
    onCalendar: onCalendarOf(n.schedule),
    randomizedDelay: n.randomizedDelay,
    timeout: '6h',
    unitAssignment: envAssignment('ARMLAB_NIGHTLY_UNIT', `${base}.service`),
    reportAssignment: envAssignment('ARMLAB_NIGHTLY_REPORT', ctx.report),
    onFailureLine: failure ? `OnFailure=${failure}\n` : '',
    onFailureCommand: n.onFailure ? execWord(n.onFailure) : '',
  };
  const read = (name: string) => readFileSync(new URL(name, TEMPLATES), 'utf8');
  const units: UnitFile[] = [
    { name: `${base}.service`, text: fill(read('armlab-nightly.service'), { ...values, cli: execWord(`${ctx.checkout}/tasks/cli.ts`) }) },
    { name: `${base}.timer`, text: fill(read('armlab-nightly.timer'), values) },
  ];
  if (failure) units.push({ name: failure, text: fill(read('armlab-nightly-failure.service'), values) });
  return units;
}
