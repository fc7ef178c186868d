/** The optional endpoint `price` (USD per million tokens): read, and every wrong part named by path. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { formatProblem, loadProfiles } from '../../src/config/profiles.js';

async function load(files: Record<string, string>): Promise<Awaited<ReturnType<typeof loadProfiles>>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-price-'));
  try {
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
    return await loadProfiles(dir, {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const ENDPOINT = '- name: a\n  baseurl: http://127.0.0.1:9/v1\n  apikey: ""\n  model: m\n';

test('price: {input, output} reaches the endpoint', async () => {
  const { groups, problems } = await load({ 'g.yaml': `${ENDPOINT}  price: { input: 0.27, output: 1.1 }\n` });
  assert.deepEqual(problems, []);
  assert.deepEqual(groups.get('g')?.endpoints[0]?.price, { input: 0.27, output: 1.1 });
});

test('a wrong price names the file and each field, and drops the endpoint', async () => {
  const { groups, problems } = await load({ 'g.yaml': `${ENDPOINT}  price: { input: -1, currency: eur }\n` });
  assert.equal(groups.has('g'), false);
  const lines = problems.map(formatProblem).map((l) => l.slice(l.indexOf('g.yaml')));
  assert.ok(
    lines.includes('g.yaml: [0].price.input: expected a number >= 0, got -1 (USD per million input tokens)'),
    lines.join('\n'),
  );
  assert.ok(lines.includes('g.yaml: [0].price.output: required (USD per million output tokens)'), lines.join('\n'));
  assert.ok(
    lines.some((l) => l.startsWith('g.yaml: [0].price.currency: unknown field')),
    lines.join('\n'),
  );
});
