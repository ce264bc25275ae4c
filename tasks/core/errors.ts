/**
 * The error kinds armlab distinguishes. One top-level handler (cli.ts) prints
 * them and picks the exit code, so tasks throw instead of printing.
 */

/** Bad command-line usage: exit 2, print usage hint. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One problem in a YAML file (inventory, image recipe), located to a line and a field path. */
export interface FileProblem {
  file: string;
  line: number;
  path: string;
  message: string;
}

export function formatProblem(p: FileProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}` : p.file;
  return `${where} ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** Every problem found in one file, reported together: exit 2. */
export class ProblemsError extends Error {
  override name = 'ProblemsError';
  constructor(readonly problems: FileProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

/** An expected refusal (soft-float node, changed host key …) with its reason. */
export class RefusalError extends Error {
  override name = 'RefusalError';
}

/** The host key presented does not match, or is not in, known_hosts. */
export class HostKeyError extends RefusalError {
  override name = 'HostKeyError';
}

/** A script's first non-empty line, cut short, for one-line reports. */
export function oneLine(command: string, max = 100): string {
  const lines = command.split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines[0] ?? '';
  const more = lines.length > 1 || first.length > max;
  return `${first.slice(0, max)}${more ? ' …' : ''}`;
}

/** A remote command that exited non-zero (or was cut off). */
export class RemoteCommandError extends Error {
  override name = 'RemoteCommandError';
  constructor(
    readonly node: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
    readonly detail = '',
  ) {
    const status = exitCode === null ? detail || 'no exit status' : `exit code ${exitCode}`;
    const tail = stderrTail.trim() ? `\n  stderr: ${stderrTail.trim().split('\n').join('\n          ')}` : '';
    // The first line is what summaries show: node, status, and the command in one line.
    super(`${node}: command failed (${status}): \`${oneLine(command)}\`${tail}`);
  }
}

/** A host could not be reached or the connection dropped. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
}

/** Local prerequisites missing (a Debian package, root). */
export class PrerequisiteError extends Error {
  override name = 'PrerequisiteError';
}

/** Short one-line reason for summaries: the first line of the message. */
export function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}
