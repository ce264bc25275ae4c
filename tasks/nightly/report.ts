/**
 * The nightly's report: one zod schema is the type, the validator and the
 * published JSON Schema (templates/nightly/report.schema.json, regenerated
 * by `npm run nightly:schema` and compared in the unit tests). Pure: the
 * summary and the Prometheus textfile are rendered from a report.
 */
import { z } from 'zod';

const holder = z.strictObject({ host: z.string(), pid: z.number().int(), startedAt: z.string() });

export const IMAGE_RESULTS = ['unchanged', 'would build', 'built', 'build failed', 'smoke failed', 'rolled out', 'rollout failed', 'rolled back', 'not built'] as const;

export const imageReportSchema = z.strictObject({
  name: z.string().describe('recipe name'),
  image: z.string().describe('image reference, armlab/NAME:TAG'),
  oldInputHash: z.string().nullable().describe('resolved input hash of the last good build; null when never built'),
  newInputHash: z.string().nullable().describe('resolved input hash now; null when its inputs could not be resolved'),
  reasons: z.array(z.string()).describe('why it is rebuilt, in words; empty when unchanged'),
  result: z.enum(IMAGE_RESULTS),
  build: z.string().nullable().describe('the build this night made or kept (its id in the history)'),
  buildSeconds: z.number().nullable(),
  error: z.string().optional(),
});

export const nodeReportSchema = z.strictObject({
  name: z.string(),
  imported: z.array(z.string()).describe('images imported onto this node this night'),
  rolledBack: z.array(z.string()).describe('images put back to their last good build on this node'),
  error: z.string().optional(),
});

export const reportSchema = z
  .strictObject({
    version: z.literal(1),
    kind: z.enum(['nightly', 'rollback']),
    check: z.boolean().describe('--check: resolved and decided only'),
    inventory: z.string(),
    cluster: z.string(),
    host: z.string().describe('the machine that ran it'),
    startedAt: z.string().describe('ISO 8601'),
    finishedAt: z.string().describe('ISO 8601'),
    durationSeconds: z.number(),
    outcome: z.enum(['no change', 'changed', 'failed']),
    tookOverLockFrom: holder.nullable().describe('a stale lock this run took over'),
    images: z.array(imageReportSchema),
    nodes: z.array(nodeReportSchema),
    error: z.string().optional().describe('what failed before or outside any one image'),
  })
  .describe('armlab nightly report');

export type NightlyReport = z.infer<typeof reportSchema>;
export type ImageReport = z.infer<typeof imageReportSchema>;

export function reportJsonSchema(): Record<string, unknown> {
  return { $id: 'https://armlab.invalid/schemas/nightly-report-v1.json', ...z.toJSONSchema(reportSchema, { target: 'draft-2020-12' }) };
}

// 'not built': its inputs could not be resolved, or what it is built on failed: the night did not do its job.
const failedResults = new Set<ImageReport['result']>(['build failed', 'smoke failed', 'rollout failed', 'rolled back', 'not built']);

/** A night with a rollback failed; an images:rollback that rolled back did what it was asked. */
export function outcomeOf(kind: NightlyReport['kind'], images: ImageReport[], error: string | undefined): NightlyReport['outcome'] {
  const failed = (i: ImageReport) => failedResults.has(i.result) && !(kind === 'rollback' && i.result === 'rolled back');
  if (error || images.some(failed)) return 'failed';
  return images.some((i) => i.result !== 'unchanged') ? 'changed' : 'no change';
}

/** The short human summary printed on stdout. */
export function renderSummary(r: NightlyReport): string {
  const lines = [`${r.kind} ${r.check ? '--check ' : ''}for ${r.cluster} (${r.inventory}): ${r.outcome} in ${r.durationSeconds.toFixed(1)} s`];
  if (r.tookOverLockFrom) lines.push(`took over a stale lock from PID ${r.tookOverLockFrom.pid} on ${r.tookOverLockFrom.host} (started ${r.tookOverLockFrom.startedAt})`);
  for (const i of r.images) {
    const why = i.reasons.length ? `: ${i.reasons.join('; ')}` : '';
    const took = i.buildSeconds !== null ? ` (${i.buildSeconds.toFixed(0)} s)` : '';
    lines.push(`  ${i.name.padEnd(10)} ${i.result}${took}${why}${i.error ? ` -- ${i.error}` : ''}`);
  }
  for (const n of r.nodes) {
    const parts = [n.imported.length ? `imported ${n.imported.join(', ')}` : '', n.rolledBack.length ? `rolled back ${n.rolledBack.join(', ')}` : '', n.error ?? ''].filter(Boolean);
    if (parts.length) lines.push(`  node ${n.name}: ${parts.join('; ')}`);
  }
  if (r.error) lines.push(`  failed: ${r.error}`);
  return `${lines.join('\n')}\n`;
}

const seconds = (iso: string) => Date.parse(iso) / 1000;

/**
 * node_exporter's textfile format. The last success survives a failed night:
 * `previousSuccess` is what the last textfile said.
 */
export function renderMetrics(r: NightlyReport, previousSuccess: number | null): string {
  const label = `{cluster="${r.cluster.replace(/["\\\n]/g, '_')}"}`;
  const lastSuccess = r.outcome === 'failed' ? previousSuccess : seconds(r.finishedAt);
  const metric = (name: string, help: string, value: number | null) => (value === null ? [] : [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${label} ${value}`]);
  return [
    ...metric('armlab_nightly_last_run_timestamp_seconds', 'When the last nightly finished (Unix time).', seconds(r.finishedAt)),
    ...metric('armlab_nightly_last_success_timestamp_seconds', 'When the last nightly that did not fail finished (Unix time).', lastSuccess),
    ...metric('armlab_nightly_images_rebuilt', 'Images the last nightly built.', r.images.filter((i) => i.buildSeconds !== null).length),
    ...metric('armlab_nightly_failed', '1 when the last nightly failed, else 0.', r.outcome === 'failed' ? 1 : 0),
    ...metric('armlab_nightly_duration_seconds', 'How long the last nightly took.', r.durationSeconds),
  ].join('\n') + '\n';
}

/** The last success from a textfile written before, for the next one. */
export function previousSuccessIn(textfile: string | null): number | null {
  const m = textfile ? /^armlab_nightly_last_success_timestamp_seconds\{[^}]*\} (\S+)$/m.exec(textfile) : null;
  return m ? Number(m[1]) : null;
}
