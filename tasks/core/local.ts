/** Local (this machine's) commands, through zx: arguments are quoted per element. */
import { $, type ProcessOutput } from 'zx';
import { PrerequisiteError } from './errors.ts';

$.verbose = false;
$.quiet = true;

export { $ };

/** Run and return trimmed stdout; throws with stderr on failure. */
export async function run(strings: TemplateStringsArray, ...values: unknown[]): Promise<string> {
  const out = await $(strings, ...values);
  return out.stdout.trim();
}

/** Run and report success, never throwing. */
export async function succeeds(strings: TemplateStringsArray, ...values: unknown[]): Promise<boolean> {
  const out: ProcessOutput = await $(strings, ...values).nothrow();
  return out.exitCode === 0;
}

export async function commandExists(name: string): Promise<boolean> {
  return succeeds`command -v ${name}`;
}

/** Each missing command, with the Debian package that provides it. */
export async function requireCommands(needed: Record<string, string>, what: string): Promise<void> {
  const missing: string[] = [];
  for (const [cmd, pkg] of Object.entries(needed)) if (!(await commandExists(cmd))) missing.push(`${cmd} (${pkg})`);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((m) => m.replace(/^.*\((.*)\)$/, '$1')))].join(' ');
    throw new PrerequisiteError(`${what} needs ${missing.join(', ')}; install with: apt-get install -y ${pkgs}`);
  }
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new PrerequisiteError(`${what} needs root (network namespaces, mounts); run it with sudo`);
}
