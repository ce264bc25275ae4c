/**
 * For the sweeps of what dead test processes left in /tmp: test files may run
 * side by side (tests/run-suite.ts), and a directory another one has just made
 * has no owner.pid for a moment.
 */
import { stat } from 'node:fs/promises';

/** Made in the last minute: the window between a test directory and its owner.pid. */
export async function madeJustNow(dir: string): Promise<boolean> {
  const made = await stat(dir).catch(() => null);
  return made !== null && Date.now() - made.mtimeMs < 60_000;
}
