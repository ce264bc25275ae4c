/**
 * What the tasks run in this process changed, noted where each change is
 * decided, so that bootstrap can say per step whether it changed anything
 * (every step runs in bootstrap's process).
 */
let noted: string[] = [];

export function noteChange(what: string): void {
  noted.push(what);
}

/** The changes noted since the last call, and a fresh start. */
export function takeChanges(): string[] {
  const taken = noted;
  noted = [];
  return taken;
}
