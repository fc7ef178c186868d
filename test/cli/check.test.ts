/**
 * `failproxy check` and the start-up lines about missing keys, as a user runs
 * them: the built CLI on the shipped profiles and on broken ones.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, cliEnv, collect, runCli, startCli, waitForStdout } from '../helpers/cli.js';

async function profiles(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'failproxy-check-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

const GOOD = '- name: local\n  baseurl: http://127.0.0.1:11434/v1\n  apikey: ""\n  model: llama3\n';

describe('failproxy check', () => {
  it('passes the shipped profiles without keys (unset variables are warnings), exit 0', async () => {
    const result = await runCli(['check', '--profiles', path.join(ROOT, 'profiles')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^warning: .*think-stream\.yaml: endpoints\[0\]\.apikey: environment variable OPENROUTER_API_KEY is not set/m,
    );
    assert.match(result.stdout, /^ok: think-stream: 3 endpoints \(0 usable with this environment\)$/m);
    assert.match(result.stdout, /5 groups, 0 errors, 15 warnings$/m);
    const strict = await runCli(['check', '--strict', '--profiles', path.join(ROOT, 'profiles')]);
    assert.equal(strict.code, 2);
    assert.match(strict.stderr, /15 warnings in .* \(--strict\)/);
  });

  it('names every problem with its file and field path, and exits 2', async () => {
    const dir = await profiles({
      'good.yaml': GOOD,
      'bad.yaml':
        '- baseurl: ftp://x\n  apikey: ""\n  model: m\n  timeout: -1\n- baseurl: http://h/v1\n  model: m\n  price: { input: cheap, output: 1 }\n',
      'broken.json': '{ "endpoints": [ }',
    });
    const result = await runCli(['check', '--profiles', dir]);
    assert.equal(result.code, 2);
    const out = result.stdout;
    assert.match(out, /^error: .*bad\.yaml: \[0\]\.baseurl: expected an http or https URL/m);
    assert.match(out, /^error: .*bad\.yaml: \[0\]\.timeout: expected a positive number of seconds, got -1$/m);
    assert.match(out, /^error: .*bad\.yaml: \[1\]\.apikey: required/m);
    assert.match(out, /^error: .*bad\.yaml: \[1\]\.price\.input: expected a number >= 0, got "cheap"/m);
    assert.match(out, /^error: .*broken\.json: /m);
    assert.match(out, /^ok: good: 1 endpoint$/m);
    assert.match(result.stderr, /failproxy: \d+ errors in /);

    const json = await runCli(['check', '--json', '--profiles', dir]);
    assert.equal(json.code, 2);
    const body = JSON.parse(json.stdout) as {
      groups: Array<{ name: string }>;
      problems: Array<{ file: string; path: string; severity: string }>;
    };
    assert.deepEqual(
      body.groups.map((g) => g.name),
      ['good'],
    );
    assert.ok(
      body.problems.some((p) => p.file.endsWith('bad.yaml') && p.path === '[0].timeout' && p.severity === 'error'),
    );
  });

  it('a missing directory is exit 2 with its path', async () => {
    const result = await runCli(['check', '--profiles', path.join(tmpdir(), 'no-such-failproxy-dir')]);
    assert.equal(result.code, 2);
    assert.match(result.stdout, /no-such-failproxy-dir/);
  });
});

describe('start-up with missing keys', () => {
  it('serve prints one line per group: how many endpoints are usable and which variables to set', async () => {
    const dir = await profiles({
      'mixed.yaml': `${GOOD}- name: or\n  baseurl: https://openrouter.ai/api/v1\n  apikey: \${OPENROUTER_API_KEY}\n  model: m\n- name: ch\n  baseurl: https://llm.chutes.ai/v1\n  apikey: \${CHUTES_API_KEY}\n  model: m\n`,
      'keyed.yaml':
        '- name: or\n  baseurl: https://openrouter.ai/api/v1\n  apikey: ${OPENROUTER_API_KEY}\n  model: m\n',
    });
    const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-check-logs-'));
    const child = startCli(['serve', '--port', '0', '--profiles', dir, '--log-dir', logDir], { env: cliEnv() });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitForStdout(child, /listening on/);
    child.kill('SIGTERM');
    const { code } = await collect(child);
    assert.equal(code, 0);
    const warnings = stderr.split('\n').filter((l) => l.startsWith('warning:'));
    assert.deepEqual(
      warnings.map((l) => l.replace(/ \(.*\)$/, '')),
      [
        'warning: keyed: no endpoint usable; set OPENROUTER_API_KEY',
        'warning: mixed: 1 of 3 endpoints usable; set OPENROUTER_API_KEY, CHUTES_API_KEY for the other 2',
      ],
    );
  });

  it('ask -v warns only about the group it uses', async () => {
    const dir = await profiles({
      'used.yaml':
        '- name: or\n  baseurl: http://127.0.0.1:9/v1\n  apikey: ${OPENROUTER_API_KEY}\n  model: m\n- name: local\n  baseurl: http://127.0.0.1:9/v1\n  apikey: ""\n  model: m\n  timeout: 2\n',
      'other.yaml': '- name: ch\n  baseurl: https://llm.chutes.ai/v1\n  apikey: ${CHUTES_API_KEY}\n  model: m\n',
    });
    const logDir = await mkdtemp(path.join(tmpdir(), 'failproxy-check-logs-'));
    const result = await runCli(['ask', '-v', '-g', 'used', '--profiles', dir, '--log-dir', logDir, 'hi']);
    assert.match(result.stderr, /warning: used: 1 of 2 endpoints usable; set OPENROUTER_API_KEY for the other 1/);
    assert.doesNotMatch(result.stderr, /CHUTES_API_KEY|other:/);
  });
});
