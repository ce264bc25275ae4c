/** The lab's record of what it created: lab:down removes exactly this. */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostProcess } from './host.ts';
import type { LabSpec } from './plan.ts';

export interface LabState {
  version: 1;
  spec: LabSpec;
  third: number;
  created: { netns: string[]; rootLinks: string[]; files: string[] };
  hosts: Record<string, HostProcess>;
  /** lab:up --demo: its Docker Engine (0 until it has started). */
  demo?: { enginePid: number };
}

export const stateFile = (dir: string) => join(dir, 'lab.json');

export async function readState(dir: string): Promise<LabState | null> {
  if (!existsSync(stateFile(dir))) return null;
  return JSON.parse(await readFile(stateFile(dir), 'utf8')) as LabState;
}

export async function writeState(state: LabState): Promise<void> {
  await mkdir(state.spec.dir, { recursive: true });
  const tmp = `${stateFile(state.spec.dir)}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, stateFile(state.spec.dir));
}
