/**
 * The report's files, each written atomically (a reader, node_exporter
 * included, sees the old file or the new one, never half of one): the JSON
 * report and the Prometheus textfile (core/atomic-write.ts). A --check run writes its report beside
 * the real one and leaves the metrics alone: it is not a night.
 */
import { readFile } from 'node:fs/promises';
import { atomicWrite } from '../core/atomic-write.ts';
import type { NightlyPaths } from './paths.ts';
import { previousSuccessIn, renderMetrics, reportSchema, type NightlyReport } from './report.ts';

/** --check and images:rollback reports go beside the night's report, which stays the last night's. */
export const sideReportPath = (paths: NightlyPaths, what: 'check' | 'rollback') => paths.report.replace(/(\.json)?$/, `.${what}.json`);

export async function writeReport(report: NightlyReport, paths: NightlyPaths): Promise<string[]> {
  // The schema is the contract: a report that does not meet it is a bug here, not a file to publish.
  const checked = reportSchema.parse(report);
  const side = report.check ? 'check' : report.kind === 'rollback' ? 'rollback' : null;
  const file = side ? sideReportPath(paths, side) : paths.report;
  await atomicWrite(file, `${JSON.stringify(checked, null, 2)}\n`);
  // The metrics are the nights' only.
  if (side) return [file];
  const previous = previousSuccessIn(await readFile(paths.metrics, 'utf8').catch(() => null));
  await atomicWrite(paths.metrics, renderMetrics(report, previous));
  return [file, paths.metrics];
}
