/**
 * Embeddings profiles (`kind: embeddings`): read, validated with file and
 * field path like every profile, and refused whole when a wrong option would
 * decide which vectors end up in an index.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadProfiles, type ConfigProblem } from '../../src/config/profiles.js';
import { isEmbeddingsGroup } from '../../src/core/embeddings/types.js';

async function load(
  t: TestContext,
  files: Record<string, string>,
  env: NodeJS.ProcessEnv = { OPENAI_KEY: 'sk-proj-secret-123456' },
) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-emb-profiles-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return loadProfiles(dir, env);
}

const brief = (problems: ConfigProblem[]): string[] =>
  problems.map((p) => `${p.severity} ${path.basename(p.file)}: ${p.path}: ${p.message}`);

const GROUP = `
kind: embeddings
dimensions: 1536
cache: { max_mb: 8 }
endpoints:
  - name: openai
    baseurl: https://api.openai.com/v1
    apikey: "\${OPENAI_KEY}"
    model: text-embedding-3-small
    max_batch: 100
  - name: azure
    baseurl: https://example.openai.azure.com/openai/v1
    apikey: "\${AZURE_KEY}"
    model: my-deployment
    family: text-embedding-3-small
    send_dimensions: false
  - name: local
    baseurl: http://127.0.0.1:11434/v1
    apikey: ""
    model: nomic-embed-text
    token_inputs: false
`;

test('an embeddings group: options, families (default: the model), and a warning for the endpoint of another family', async (t) => {
  const { groups, problems } = await load(t, { 'emb.yaml': GROUP });
  const group = groups.get('emb');
  assert.ok(group && isEmbeddingsGroup(group));
  assert.equal(group.dimensions, 1536);
  assert.equal(group.family, 'text-embedding-3-small');
  assert.equal(group.allowCrossFamily, false);
  assert.deepEqual(group.cache, { maxBytes: 8 * 1024 * 1024 });
  assert.deepEqual(
    group.endpoints.map((e) => [e.name, e.family, e.maxBatch, e.sendDimensions, e.tokenInputs]),
    [
      ['openai', 'text-embedding-3-small', 100, true, true],
      ['local', 'nomic-embed-text', null, true, false],
    ],
  );
  assert.deepEqual(group.skipped, [{ name: 'azure', reason: 'missing env AZURE_KEY' }]);
  assert.deepEqual(brief(problems), [
    'warning emb.yaml: endpoints[1].apikey: environment variable AZURE_KEY is not set or empty; endpoint "azure" is skipped',
    "warning emb.yaml: endpoints[2].family: family 'nomic-embed-text' is not the group's 'text-embedding-3-small' (its first endpoint's): this endpoint is never used unless allow_cross_family: true",
  ]);
});

test('the first endpoint in the file decides the family even when its key is unset', async (t) => {
  const { groups } = await load(t, { 'emb.yaml': GROUP }, { AZURE_KEY: 'k-azure-123456' });
  const group = groups.get('emb');
  assert.ok(group && isEmbeddingsGroup(group));
  assert.equal(group.family, 'text-embedding-3-small');
  assert.deepEqual(
    group.endpoints.map((e) => e.name),
    ['azure', 'local'],
  );
});

test('a wrong embeddings option refuses the file with its field path; chat groups are told the options are ignored', async (t) => {
  const { groups, problems } = await load(t, {
    'nodims.yaml': 'kind: embeddings\nendpoints: [{ baseurl: "http://127.0.0.1:1/v1", apikey: "", model: m }]\n',
    'bad.yaml': `kind: embeddings
dimensions: 0
allow_cross_family: "yes"
cache: 12
endpoints: [{ baseurl: "http://127.0.0.1:1/v1", apikey: "", model: m, max_batch: 2.5, family: "", send_dimensions: "no" }]
`,
    'kinds.yaml': 'kind: vectors\nendpoints: [{ baseurl: "http://127.0.0.1:1/v1", apikey: "", model: m }]\n',
    'chat.yaml':
      'dimensions: 3\nendpoints: [{ baseurl: "http://127.0.0.1:1/v1", apikey: "", model: m, max_batch: 4 }]\n',
  });
  assert.deepEqual([...groups.keys()], ['chat']);
  assert.deepEqual(brief(problems).sort(), [
    'error bad.yaml: allow_cross_family: expected true or false, got "yes"',
    'error bad.yaml: cache: expected true, false or { max_mb }, got 12',
    'error bad.yaml: dimensions: expected a positive integer, got 0',
    'error bad.yaml: endpoints[0].family: expected a non-empty string, got ""',
    'error bad.yaml: endpoints[0].max_batch: expected a positive integer (inputs per upstream call), got 2.5',
    'error bad.yaml: endpoints[0].send_dimensions: expected true or false, got "no"',
    'error kinds.yaml: kind: expected chat or embeddings, got "vectors"',
    'error nodims.yaml: dimensions: required for kind: embeddings: the length of every vector the group answers (e.g. 1536)',
    'warning chat.yaml: dimensions: only used by kind: embeddings groups; ignored',
    'warning chat.yaml: endpoints[0].max_batch: only used in kind: embeddings groups; ignored',
  ]);
});
