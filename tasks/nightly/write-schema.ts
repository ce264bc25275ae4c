/** npm run nightly:schema: write the nightly report's JSON Schema from its zod schema (a unit test keeps the file in step). */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { reportJsonSchema } from './report.ts';

export const SCHEMA_FILE = new URL('../../templates/nightly/report.schema.json', import.meta.url);

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(SCHEMA_FILE, `${JSON.stringify(reportJsonSchema(), null, 2)}\n`);
  process.stdout.write(`wrote ${SCHEMA_FILE.pathname}\n`);
}
