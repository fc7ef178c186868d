/**
 * The core stays a library: no terminal, HTTP server, CLI or UI code in
 * src/core, so serve, ask and the probe can all share it (STYLE "The shape").
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { ROOT } from '../helpers/cli.js';

const CORE = path.join(ROOT, 'src', 'core');
const FORBIDDEN = [/^ink$/, /^react/, /^commander$/, /^chalk$/, /^node:http$/, /^http$/, /^(\.\.\/)+(cli|server|ui|logging|protocols)\//];

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(full)));
    else if (/\.tsx?$/.test(entry.name)) out.push(full);
  }
  return out;
}

it('src/core imports nothing from cli/, server/, ui/, logging/, protocols/, ink, react, commander, chalk or node:http', async () => {
  const files = await sourceFiles(CORE);
  assert.ok(files.length > 5);
  const offences: string[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      const spec = match[1]!;
      if (FORBIDDEN.some((re) => re.test(spec))) offences.push(`${path.relative(ROOT, file)} imports ${spec}`);
    }
  }
  assert.deepEqual(offences, []);
});

it('src/core never writes to the console or ends the process', async () => {
  const offences: string[] = [];
  for (const file of await sourceFiles(CORE)) {
    const text = await readFile(file, 'utf8');
    if (/\bconsole\.|process\.(exit|stdout|stderr)/.test(text)) offences.push(path.relative(ROOT, file));
  }
  assert.deepEqual(offences, []);
});
