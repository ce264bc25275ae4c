/**
 * A new build's smoke run: the recipe's verify.smoke command in a container
 * of the image, on the build engine, with no network and the image's own
 * entrypoint bypassed; bounded in time, and removed whatever happened.
 */
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { reasonOf } from '../core/errors.ts';
import type { Recipe } from '../images/recipe.ts';

export interface SmokeResult {
  ok: boolean;
  /** "zebra --version: exit 0" or what went wrong, with the output's last lines. */
  detail: string;
}

const SMOKE_TIMEOUT_MS = 120_000;

export async function smokeRun(engine: Docker, recipe: Recipe, platform: string, timeoutMs = SMOKE_TIMEOUT_MS): Promise<SmokeResult> {
  const command = recipe.verify.smoke;
  if (!command) return { ok: false, detail: `images/${recipe.name}/image.yaml has no verify.smoke; add a command that proves the image runs, e.g. smoke: [zebra, --version]` };
  const shown = command.join(' ');
  let container: Docker.Container | null = null;
  let stream: NodeJS.ReadWriteStream | null = null;
  try {
    container = await engine.createContainer({
      Image: recipe.image,
      Entrypoint: [command[0]!],
      Cmd: command.slice(1),
      NetworkDisabled: true,
      HostConfig: { NetworkMode: 'none' },
      platform,
    } as Docker.ContainerCreateOptions);
    const output: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, done) => (output.push(c), done()) });
    stream = await container.attach({ stream: true, stdout: true, stderr: true });
    // Docker multiplexes stdout and stderr on one stream with frame headers.
    engine.modem.demuxStream(stream, sink, sink);
    await container.start();
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      container.wait() as Promise<{ StatusCode: number }>,
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    // The last output may still be on its way when the exit status arrives.
    if (waited !== 'timeout' && !(stream as NodeJS.ReadableStream & { readableEnded?: boolean }).readableEnded) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        stream!.once('end', () => (clearTimeout(t), resolve()));
      });
    }
    const tail = Buffer.concat(output).toString('utf8').trim().split('\n').filter((l) => !l.startsWith('WARNING')).slice(-3).join(' | ');
    if (waited === 'timeout') return { ok: false, detail: `${shown}: still running after ${timeoutMs / 1000}s${tail ? ` (${tail})` : ''}` };
    if (waited.StatusCode !== 0) return { ok: false, detail: `${shown}: exit ${waited.StatusCode}${tail ? ` (${tail})` : ''}` };
    return { ok: true, detail: `${shown}: exit 0` };
  } catch (err) {
    // The engine could not run it at all (no such executable in the image, say): the smoke run failed.
    return { ok: false, detail: `${shown}: ${reasonOf(err)}` };
  } finally {
    (stream as unknown as { destroy?: () => void } | null)?.destroy?.();
    await container?.remove({ force: true }).catch(() => undefined);
  }
}
