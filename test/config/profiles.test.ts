import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  formatProblem,
  loadProfileFile,
  loadProfiles,
  resolveProfilesDir,
  watchProfiles,
} from '../../src/config/profiles.js';
import type { ConfigProblem, ProfileUpdate } from '../../src/config/profiles.js';
import type { Group } from '../../src/core/types.js';

const SHIPPED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../profiles');

/** A fresh directory with the given files, removed after the test. */
async function fixtureDir(t: TestContext, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failproxy-profiles-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return dir;
}

const errors = (problems: ConfigProblem[]): ConfigProblem[] => problems.filter((p) => p.severity === 'error');
const warnings = (problems: ConfigProblem[]): ConfigProblem[] => problems.filter((p) => p.severity === 'warning');

function mustGroup(groups: Map<string, Group>, name: string): Group {
  const group = groups.get(name);
  assert.ok(group, `group ${name} should load`);
  return group;
}

const ENV = { OR_KEY: 'sk-or-v1-secret', CH_KEY: 'cpk_secret' };

const YAML_OBJECT = `
reasoning: tags
cooldown: { failures: 5, seconds: 12.5 }
endpoints:
  - name: primary
    type: openrouter
    baseurl: https://openrouter.ai/api/v1
    apikey: "\${OR_KEY}"
    model: deepseek/deepseek-r1-0528:free
    timeout: 90
    stream: true
    temperature: 0.2
    max_tokens: 1000
    think_open: true
    headers: { X-Title: Test }
    params: { top_p: 0.9 }
`;

const JSON_ARRAY = JSON.stringify([
  { baseurl: 'https://llm.chutes.ai/v1', apikey: '${CH_KEY}', model: 'deepseek-ai/DeepSeek-V3-0324', type: 'chutes' },
]);

const MINIMAL_YML = `
- baseurl: http://127.0.0.1:8080/v1/
  apikey: ""
  model: local
`;

test('loads the object form (.yaml), the bare-array form (.json) and .yml files', async (t) => {
  const dir = await fixtureDir(t, { 'think.yaml': YAML_OBJECT, 'plain.json': JSON_ARRAY, 'local.yml': MINIMAL_YML });
  const { groups, problems } = await loadProfiles(dir, ENV);
  assert.deepEqual(problems, []);
  assert.deepEqual([...groups.keys()].sort(), ['local', 'plain', 'think']);

  const think = mustGroup(groups, 'think');
  assert.equal(think.source, path.join(dir, 'think.yaml'));
  assert.equal(think.reasoning, 'tags');
  assert.deepEqual(think.cooldown, { failures: 5, seconds: 12.5 });
  assert.deepEqual(think.endpoints, [
    {
      name: 'primary',
      type: 'openrouter',
      baseurl: 'https://openrouter.ai/api/v1',
      apikey: 'sk-or-v1-secret',
      model: 'deepseek/deepseek-r1-0528:free',
      timeoutMs: 90_000,
      temperature: 0.2,
      max_tokens: 1000,
      stream: true,
      thinkOpen: true,
      headers: { 'X-Title': 'Test' },
      params: { top_p: 0.9 },
    },
  ]);

  const plain = mustGroup(groups, 'plain');
  assert.equal(plain.endpoints[0]?.apikey, 'cpk_secret');
  assert.equal(plain.endpoints[0]?.type, 'chutes');
});

test('applies defaults: timeout 60 s, type openai, name <type>:<model>, reasoning field, cooldown 3/30', async (t) => {
  const dir = await fixtureDir(t, { 'local.yml': MINIMAL_YML });
  const { group, problems } = await loadProfileFile(path.join(dir, 'local.yml'), {});
  assert.deepEqual(problems, []);
  assert.ok(group);
  assert.equal(group.name, 'local');
  assert.equal(group.reasoning, 'field');
  assert.deepEqual(group.cooldown, { failures: 3, seconds: 30 });
  assert.deepEqual(group.skipped, []);
  assert.deepEqual(group.endpoints, [
    {
      name: 'openai:local',
      type: 'openai',
      baseurl: 'http://127.0.0.1:8080/v1',
      apikey: '',
      model: 'local',
      timeoutMs: 60_000,
      headers: {},
      params: {},
    },
  ]);
});

test('strips every trailing slash from baseurl and rejects non-http or full endpoint URLs', async (t) => {
  const dir = await fixtureDir(t, {
    'g.json': JSON.stringify([
      { baseurl: 'https://a.example/v1///', apikey: '', model: 'm1' },
      { baseurl: 'ftp://a.example/v1', apikey: '', model: 'm2' },
      { baseurl: 'not a url', apikey: '', model: 'm3' },
      { baseurl: 'https://a.example/v1/chat/completions', apikey: '', model: 'm4' },
    ]),
  });
  const { group, problems } = await loadProfileFile(path.join(dir, 'g.json'), {});
  assert.ok(group);
  assert.deepEqual(
    group.endpoints.map((e) => e.baseurl),
    ['https://a.example/v1'],
  );
  assert.deepEqual(
    errors(problems).map((p) => p.path),
    ['[1].baseurl', '[2].baseurl', '[3].baseurl'],
  );
});

test('resolves the profiles directory: --profiles > FAILPROXY_PROFILES > ./profiles > ./config', async (t) => {
  const cwd = await fixtureDir(t);
  // Neither exists: the conventional ./profiles path.
  assert.equal(resolveProfilesDir({ env: {}, cwd }), path.join(cwd, 'profiles'));

  await mkdir(path.join(cwd, 'config'));
  assert.equal(resolveProfilesDir({ env: {}, cwd }), path.join(cwd, 'config'));

  await mkdir(path.join(cwd, 'profiles'));
  assert.equal(resolveProfilesDir({ env: {}, cwd }), path.join(cwd, 'profiles'));
  assert.equal(resolveProfilesDir({ env: { FAILPROXY_PROFILES: '' }, cwd }), path.join(cwd, 'profiles'));

  assert.equal(resolveProfilesDir({ env: { FAILPROXY_PROFILES: 'from-env' }, cwd }), path.join(cwd, 'from-env'));
  assert.equal(resolveProfilesDir({ env: { FAILPROXY_PROFILES: '/abs/env' }, cwd }), path.resolve('/abs/env'));
  assert.equal(
    resolveProfilesDir({ flag: 'from-flag', env: { FAILPROXY_PROFILES: 'from-env' }, cwd }),
    path.join(cwd, 'from-flag'),
  );
});

test('interpolates ${VAR} in apikey, baseurl, model and headers', async (t) => {
  const dir = await fixtureDir(t, {
    'g.yaml': `
- baseurl: "https://\${HOST}/v1"
  apikey: "pre-\${A}-\${B}"
  model: "\${MODEL}"
  headers:
    X-Extra: "token \${A}"
`,
  });
  const env = { HOST: 'api.example.com', A: 'one', B: 'two', MODEL: 'gpt-x' };
  const { group, problems } = await loadProfileFile(path.join(dir, 'g.yaml'), env);
  assert.deepEqual(problems, []);
  const endpoint = group?.endpoints[0];
  assert.equal(endpoint?.baseurl, 'https://api.example.com/v1');
  assert.equal(endpoint?.apikey, 'pre-one-two');
  assert.equal(endpoint?.model, 'gpt-x');
  assert.equal(endpoint?.name, 'openai:gpt-x');
  assert.deepEqual(endpoint?.headers, { 'X-Extra': 'token one' });
});

test('an endpoint whose ${VAR} is unset or empty is skipped with a warning naming the variable', async (t) => {
  const dir = await fixtureDir(t, {
    'g.yaml': `
endpoints:
  - name: needs-key
    type: openrouter
    baseurl: https://openrouter.ai/api/v1
    apikey: "\${OPENROUTER_API_KEY}"
    model: deepseek/deepseek-r1-0528:free
  - name: empty-key
    baseurl: https://x.example/v1
    apikey: "\${EMPTY_KEY}"
    model: m
  - name: works
    baseurl: http://localhost:1234/v1
    apikey: ""
    model: local
`,
  });
  const { group, problems } = await loadProfileFile(path.join(dir, 'g.yaml'), { EMPTY_KEY: '' });
  assert.ok(group);
  assert.deepEqual(
    group.endpoints.map((e) => e.name),
    ['works'],
  );
  assert.deepEqual(group.skipped, [
    { name: 'needs-key', reason: 'missing env OPENROUTER_API_KEY' },
    { name: 'empty-key', reason: 'missing env EMPTY_KEY' },
  ]);
  assert.deepEqual(errors(problems), []);
  const [first, second] = warnings(problems);
  assert.equal(first?.path, 'endpoints[0].apikey');
  assert.match(first?.message ?? '', /OPENROUTER_API_KEY/);
  assert.match(first?.message ?? '', /needs-key/);
  assert.match(second?.message ?? '', /EMPTY_KEY/);
});

test('reports every problem of a file with its field path, and drops only the broken endpoints', async (t) => {
  const file = 'think-stream.yaml';
  const dir = await fixtureDir(t, {
    [file]: `
endpoints:
  - baseurl: https://ok.example/v1
    apikey: ""
    model: good
  - baseurl: https://ok.example/v1
    apikey: ""
    model: also-broken
    timeout: abc
    type: anthropic
  - apikey: ""
    model: no-baseurl
`,
  });
  const full = path.join(dir, file);
  const { group, problems } = await loadProfileFile(full, {});
  assert.equal(problems.length, 3);
  assert.ok(problems.every((p) => p.severity === 'error' && p.file === full));
  assert.deepEqual(
    problems.map((p) => p.path),
    ['endpoints[1].timeout', 'endpoints[1].type', 'endpoints[2].baseurl'],
  );
  assert.equal(
    formatProblem(problems[0] as ConfigProblem),
    `${full}: endpoints[1].timeout: expected a positive number of seconds, got "abc"`,
  );
  assert.match(problems[1]?.message ?? '', /expected one of openai, openrouter, chutes, got "anthropic"/);
  assert.match(problems[2]?.message ?? '', /required/);
  assert.deepEqual(
    group?.endpoints.map((e) => e.model),
    ['good'],
  );
});

test('checks each field type', async (t) => {
  const dir = await fixtureDir(t, {
    'g.json': JSON.stringify([
      {
        name: '',
        baseurl: 42,
        apikey: null,
        model: '',
        timeout: -1,
        temperature: 'hot',
        max_tokens: 1.5,
        stream: 'yes',
        headers: { 'Bad Header': 'x', 'X-Num': 3 },
        params: [1],
        think_open: 1,
      },
      { baseurl: 'https://ok.example', apikey: '', model: 'ok' },
    ]),
  });
  const { group, problems } = await loadProfileFile(path.join(dir, 'g.json'), {});
  assert.deepEqual(
    problems.map((p) => [p.severity, p.path]),
    [
      ['error', '[0].name'],
      ['error', '[0].baseurl'],
      ['error', '[0].apikey'],
      ['error', '[0].model'],
      ['error', '[0].timeout'],
      ['error', '[0].temperature'],
      ['error', '[0].max_tokens'],
      ['error', '[0].stream'],
      ['error', '[0].think_open'],
      ['error', '[0].headers["Bad Header"]'],
      ['error', '[0].headers.X-Num'],
      ['error', '[0].params'],
    ],
  );
  assert.equal(group?.endpoints.length, 1);
});

test('warns about unknown fields and group options, and accepts the resilience options', async (t) => {
  const dir = await fixtureDir(t, {
    'g.yaml': `
retry: { attempts: 2 }
resume: true
hedge_ms: 1500
deadline: 120
failover_on_content_filter: true
reasoning_mode: tags
endpoints:
  - base_url: https://x.example/v1
    baseurl: https://x.example/v1
    apikey: ""
    model: m
    colour: blue
`,
  });
  const { group, problems } = await loadProfileFile(path.join(dir, 'g.yaml'), {});
  assert.ok(group);
  assert.equal(group.endpoints.length, 1);
  assert.deepEqual(errors(problems), []);
  assert.deepEqual(
    problems.map((p) => p.path),
    ['reasoning_mode', 'endpoints[0].base_url', 'endpoints[0].colour'],
  );
  assert.match(problems[1]?.message ?? '', /did you mean "baseurl"/);
  assert.equal(group.retry?.attempts, 2);
  assert.equal(group.hedgeMs, 1500);
  assert.equal(group.deadlineMs, 120_000);
});

test('a wrong group option makes the file unusable, with every option problem listed', async (t) => {
  const dir = await fixtureDir(t, {
    'g.yaml': `
reasoning: think
cooldown: { failures: 0, seconds: -5 }
endpoints:
  - { baseurl: "https://x.example/v1", apikey: "", model: m }
`,
  });
  const { group, problems } = await loadProfileFile(path.join(dir, 'g.yaml'), {});
  assert.equal(group, null);
  assert.deepEqual(
    problems.map((p) => p.path),
    ['reasoning', 'cooldown.failures', 'cooldown.seconds'],
  );
});

test('rejects a file whose top level is neither a list nor an object with endpoints', async (t) => {
  const dir = await fixtureDir(t, {
    'str.yaml': 'just a string\n',
    'single.json': JSON.stringify({ baseurl: 'https://x.example', apikey: '', model: 'm' }),
    'notlist.yaml': 'endpoints: { a: 1 }\n',
    'empty.yaml': '# only a comment\n',
  });
  for (const [name, pathWanted, pattern] of [
    ['str.yaml', '', /expected a list of endpoints/],
    ['single.json', '', /single endpoint/],
    ['notlist.yaml', 'endpoints', /expected a list of endpoints, got an object/],
    ['empty.yaml', '', /empty/],
  ] as const) {
    const { group, problems } = await loadProfileFile(path.join(dir, name), {});
    assert.equal(group, null, name);
    assert.equal(problems.length, 1, name);
    assert.equal(problems[0]?.severity, 'error');
    assert.equal(problems[0]?.path, pathWanted, name);
    assert.match(problems[0]?.message ?? '', pattern, name);
  }
});

test('an empty endpoint list is a warning; a list where every endpoint is broken is an error', async (t) => {
  const dir = await fixtureDir(t, { 'empty.json': '[]', 'allbad.json': '[{"model": 1}]' });
  const empty = await loadProfileFile(path.join(dir, 'empty.json'), {});
  assert.deepEqual(empty.group?.endpoints, []);
  assert.deepEqual(
    empty.problems.map((p) => p.severity),
    ['warning'],
  );
  const allBad = await loadProfileFile(path.join(dir, 'allbad.json'), {});
  assert.equal(allBad.group, null);
  assert.match(allBad.problems.at(-1)?.message ?? '', /no valid endpoint/);
});

test('a broken file never hides the other groups, and says where it broke', async (t) => {
  const dir = await fixtureDir(t, {
    'bad-yaml.yaml': 'endpoints:\n  - baseurl: "https://x.example\n    apikey: ""\n',
    'bad-json.json': '[\n  {"baseurl": "https://x.example", "apikey": "", "model": "m",}\n]',
    'good.yml': MINIMAL_YML,
  });
  const { groups, problems } = await loadProfiles(dir, {});
  assert.deepEqual([...groups.keys()], ['good']);
  const byFile = new Map(problems.map((p) => [path.basename(p.file), p]));
  assert.match(byFile.get('bad-json.json')?.message ?? '', /invalid JSON at line 2, column \d+: trailing comma/);
  assert.match(byFile.get('bad-yaml.yaml')?.message ?? '', /invalid YAML at line \d+, column \d+/);
  assert.equal(errors(problems).length, 2);
});

test('ignores files starting with "." or "_", other extensions and directories', async (t) => {
  const dir = await fixtureDir(t, {
    '.hidden.yaml': 'not: [valid',
    '_disabled.json': '{',
    'notes.txt': 'hello',
    'g.yaml.swp': 'x',
    'g.yaml': MINIMAL_YML,
  });
  await mkdir(path.join(dir, 'sub.yaml'));
  const { groups, problems } = await loadProfiles(dir, {});
  assert.deepEqual(problems, []);
  assert.deepEqual([...groups.keys()], ['g']);
});

test('the same group name in two files: the first in sorted order wins, the other is an error', async (t) => {
  const dir = await fixtureDir(t, { 'a.yaml': MINIMAL_YML, 'a.json': JSON_ARRAY });
  const { groups, problems } = await loadProfiles(dir, ENV);
  assert.equal(mustGroup(groups, 'a').source, path.join(dir, 'a.json'));
  assert.equal(problems.length, 1);
  assert.equal(problems[0]?.file, path.join(dir, 'a.yaml'));
  assert.equal(problems[0]?.severity, 'error');
  assert.match(problems[0]?.message ?? '', /already defined by a\.json/);
});

test('duplicate endpoint names get a #2 suffix and a warning', async (t) => {
  const dir = await fixtureDir(t, {
    'g.json': JSON.stringify([
      { name: 'same', baseurl: 'https://x.example', apikey: '', model: 'a' },
      { name: 'same', baseurl: 'https://x.example', apikey: '', model: 'b' },
      { baseurl: 'https://x.example', apikey: '', model: 'm' },
      { baseurl: 'https://y.example', apikey: '', model: 'm' },
    ]),
  });
  const { group, problems } = await loadProfileFile(path.join(dir, 'g.json'), {});
  assert.deepEqual(
    group?.endpoints.map((e) => e.name),
    ['same', 'same#2', 'openai:m', 'openai:m#2'],
  );
  assert.deepEqual(
    problems.map((p) => [p.severity, p.path]),
    [
      ['warning', '[1].name'],
      ['warning', '[3].name'],
    ],
  );
  assert.match(problems[0]?.message ?? '', /duplicate name "same".*"same#2"/);
});

test('a missing directory is an error problem, not a throw', async (t) => {
  const dir = path.join(await fixtureDir(t), 'nope');
  const { groups, problems } = await loadProfiles(dir, {});
  assert.equal(groups.size, 0);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]?.severity, 'error');
  assert.equal(formatProblem(problems[0] as ConfigProblem), `${dir}: profiles directory not found`);
});

test('the shipped profiles load without errors, and without keys every endpoint is skipped naming its variable', async () => {
  const withoutKeys = await loadProfiles(SHIPPED, {});
  assert.deepEqual(errors(withoutKeys.problems), []);
  assert.deepEqual(
    [...withoutKeys.groups.keys()].sort(),
    ['free-pool', 'nothink-nostream', 'nothink-stream', 'think-nostream', 'think-stream'],
  );
  for (const group of withoutKeys.groups.values()) {
    assert.deepEqual(group.endpoints, [], group.name);
    assert.ok(group.skipped.length > 0, group.name);
    for (const s of group.skipped) assert.match(s.reason, /^missing env (OPENROUTER_API_KEY(_\d)?|CHUTES_API_KEY)$/);
  }
  for (const w of withoutKeys.problems) assert.match(w.message, /OPENROUTER_API_KEY|CHUTES_API_KEY/);

  const poolKeys = { OPENROUTER_API_KEY_2: 'sk-or-test-2', OPENROUTER_API_KEY_3: 'sk-or-test-3' };
  const withKeys = await loadProfiles(SHIPPED, { OPENROUTER_API_KEY: 'sk-or-test', CHUTES_API_KEY: 'cpk_test', ...poolKeys });
  assert.deepEqual(withKeys.problems, []);
  for (const group of withKeys.groups.values()) {
    assert.deepEqual(group.skipped, []);
    assert.ok(group.endpoints.length >= 2, group.name);
    const wantStream = !group.name.endsWith('-nostream');
    for (const e of group.endpoints) {
      assert.equal(e.stream, wantStream, `${group.name}/${e.name}`);
      assert.ok(['openrouter', 'chutes'].includes(e.type));
      assert.ok(['sk-or-test', 'cpk_test', ...Object.values(poolKeys)].includes(e.apikey));
    }
  }
});

test('an apikey value never appears in any problem message', async (t) => {
  const secret = 'sk-or-v1-0123456789abcdef';
  const dir = await fixtureDir(t, {
    // Misspelt field holding the key, plus other errors around it.
    'misspelt.yaml': `- api_key: ${secret}\n  apikey: ${secret}\n  baseurl: ${secret}\n  model: m\n  timeout: ${secret}\n`,
    // Key from the environment, endpoint otherwise broken.
    'env.json': JSON.stringify([
      { apikey: '${K}', baseurl: 'https://x.example', model: 'm', wrong: '${K}', headers: { 'X-Key': 5 } },
    ]),
    // Key in a header with a bad header name, and a non-string apikey.
    'headers.json': JSON.stringify([
      { apikey: 12345678, baseurl: 'https://x.example', model: 'm', headers: { 'Bad Name': secret } },
    ]),
    // Syntax errors right next to the key.
    'broken-json.json': `[{"apikey": "${secret}" "model": "m"}]`,
    'broken-yaml.yaml': `- apikey: "${secret}\n  model: [m\n`,
    'broken-flow.yaml': `- { apikey: ${secret}} }\n`,
  });
  const { problems } = await loadProfiles(dir, { K: secret });
  // Every file reported something, so each scenario really ran.
  assert.equal(new Set(problems.map((p) => path.basename(p.file))).size, 6);
  assert.ok(problems.length >= 8, `expected many problems, got ${problems.length}`);
  for (const p of problems) {
    const text = formatProblem(p);
    assert.ok(!text.includes(secret), `leaked in: ${text}`);
    assert.ok(!text.includes('0123456789'), `partly leaked in: ${text}`);
  }
});

test('masking keys does not garble ${VAR} references quoted in hints', async (t) => {
  const dir = await fixtureDir(t, {
    'g.json': JSON.stringify([
      { baseurl: 'https://x.example', apikey: '${OPENROUTER_API_KEY}', model: 'a' },
      { baseurl: 'https://x.example', model: 'b' },
    ]),
  });
  const { problems } = await loadProfileFile(path.join(dir, 'g.json'), { OPENROUTER_API_KEY: 'sk-or-real' });
  assert.equal(problems[0]?.path, '[1].apikey');
  assert.match(problems[0]?.message ?? '', /required: .*"\$\{OPENROUTER_API_KEY\}"/);
});

// ---------------------------------------------------------------------------
// watchProfiles: real files, real fs.watch. Waits are generous and event-driven
// (wait until the expected update arrives), so slow machines only slow the test.

interface UpdateQueue {
  next(predicate: (u: ProfileUpdate) => boolean, what: string): Promise<ProfileUpdate>;
  all: ProfileUpdate[];
}

function collectUpdates(): { queue: UpdateQueue; push: (u: ProfileUpdate) => void } {
  const all: ProfileUpdate[] = [];
  let cursor = 0;
  let wake: (() => void) | null = null;
  const push = (u: ProfileUpdate): void => {
    all.push(u);
    wake?.();
  };
  const next = async (predicate: (u: ProfileUpdate) => boolean, what: string): Promise<ProfileUpdate> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      while (cursor < all.length) {
        const u = all[cursor++] as ProfileUpdate;
        if (predicate(u)) return u;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(all.map((u) => u.kind))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  };
  return { queue: { next, all }, push };
}

const updatedName = (u: ProfileUpdate): string => (u.kind === 'reloaded' ? u.group.name : u.name);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('watchProfiles: a bad edit reports error, a fix reloads, a delete removes', async (t) => {
  const dir = await fixtureDir(t, { 'g.yaml': MINIMAL_YML, 'other.json': '[]' });
  const file = path.join(dir, 'g.yaml');
  const { queue, push } = collectUpdates();
  const watchErrors: Error[] = [];
  const watcher = watchProfiles(dir, {}, push, { onError: (e) => watchErrors.push(e) });
  t.after(() => watcher.close());
  await sleep(100);

  // Written in place (truncate + write)...
  await writeFile(file, '- baseurl: https://x.example\n  apikey: ""\n  model: [broken\n');
  const bad = await queue.next(
    (u) => u.kind === 'error' && u.problems.some((p) => /invalid YAML/.test(p.message)),
    'error',
  );
  assert.ok(bad.kind === 'error');
  assert.equal(bad.name, 'g');
  assert.equal(bad.file, file);
  assert.match(bad.problems[0]?.message ?? '', /invalid YAML/);

  // ...and fixed the way many editors save: a hidden temp file renamed over it.
  const temp = path.join(dir, '.g.yaml.tmp');
  await writeFile(temp, '- baseurl: https://fixed.example/v1/\n  apikey: ""\n  model: fixed\n');
  await rename(temp, file);
  const fixed = await queue.next((u) => u.kind === 'reloaded' && u.group.endpoints[0]?.model === 'fixed', 'reloaded');
  assert.ok(fixed.kind === 'reloaded');
  assert.equal(fixed.group.name, 'g');
  assert.equal(fixed.group.endpoints[0]?.baseurl, 'https://fixed.example/v1');
  assert.deepEqual(fixed.problems, []);

  await unlink(file);
  const removed = await queue.next((u) => u.kind === 'removed', 'removed');
  assert.deepEqual(removed, { kind: 'removed', name: 'g', file });

  // The untouched group was never reported, and nothing went wrong with the watch.
  assert.ok(queue.all.every((u) => updatedName(u) === 'g'));
  assert.deepEqual(watchErrors, []);
});

test('watchProfiles: a new file is reported, ignored names are not, and close() stops updates', async (t) => {
  const dir = await fixtureDir(t);
  const { queue, push } = collectUpdates();
  const watcher = watchProfiles(dir, { K: 'secret-key' }, push);
  await sleep(100);

  await writeFile(path.join(dir, '_draft.yaml'), MINIMAL_YML);
  await writeFile(path.join(dir, '.new.yaml.swp'), 'x');
  await writeFile(path.join(dir, 'new.json'), JSON.stringify([{ baseurl: 'https://x.example', apikey: '${K}', model: 'm' }]));
  const added = await queue.next((u) => u.kind === 'reloaded', 'reloaded');
  assert.ok(added.kind === 'reloaded');
  assert.equal(added.group.name, 'new');
  assert.equal(added.group.endpoints[0]?.apikey, 'secret-key');

  watcher.close();
  const seen = queue.all.length;
  await writeFile(path.join(dir, 'new.json'), '[');
  await sleep(500);
  assert.equal(queue.all.length, seen);
  // `_draft.yaml` and `.new.yaml.swp` are not groups.
  assert.ok(queue.all.every((u) => updatedName(u) === 'new'));
});

test('watchProfiles on a missing directory reports through onError and does not throw', async (t) => {
  const dir = path.join(await fixtureDir(t), 'missing');
  const watchErrors: Error[] = [];
  const watcher = watchProfiles(dir, {}, () => {}, { onError: (e) => watchErrors.push(e) });
  watcher.close();
  assert.equal(watchErrors.length, 1);
});
