#!/usr/bin/env -S node --import tsx
/**
 * armlab <task> [--inventory FILE] [--limit n1,n2] [--check] [--verbose]
 * One entry for every task; the top-level handler turns errors into messages
 * and exit codes (2: bad usage or inventory, 1: a task failed).
 */
import { HostKeyError, ProblemsError, PrerequisiteError, RefusalError, UsageError } from './core/errors.ts';
import { redact } from './core/shell.ts';
import { LAB_USAGE } from './lab/usage.ts';
import { COMMANDS } from './commands.ts';
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
