/** `failproxy init` as a user runs it: answers piped to its questions, or flags; the result passes `check`. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { runCli } from '../helpers/cli.js';

const tempDir = (): Promise<string> => mkdtemp(path.join(tmpdir(), 'failproxy-init-'));

describe('failproxy init', () => {
  it('asks for the group, the providers in order and their models, and writes keys as ${VAR}', async () => {
    const dir = await tempDir();
    const result = await runCli(['init', '--profiles', dir], { input: 'mychat\n1,6\n\nqwen2.5\n' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Which, in failover order/);
    assert.match(result.stdout, /wrote .*mychat\.yaml \(group "mychat", 2 endpoints: openrouter → ollama\)/);
    assert.match(result.stdout, /set OPENROUTER_API_KEY=\.\.\. in the environment/);
    const written = parse(await readFile(path.join(dir, 'mychat.yaml'), 'utf8')) as {
      endpoints: Array<Record<string, unknown>>;
    };
    assert.deepEqual(
      written.endpoints.map((e) => [e.name, e.baseurl, e.apikey, e.model]),
      [
        ['openrouter', 'https://openrouter.ai/api/v1', '${OPENROUTER_API_KEY}', 'deepseek/deepseek-chat-v3-0324:free'],
        ['ollama', 'http://127.0.0.1:11434/v1', '', 'qwen2.5'],
      ],
    );
    const check = await runCli(['check', '--profiles', dir]);
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /ok: mychat: 2 endpoints \(1 usable with this environment\)/);
  });

  it('takes presets and models as flags, refuses to overwrite, and rejects unknown presets (exit 2)', async () => {
    const dir = await tempDir();
    const ok = await runCli([
      'init',
      '--profiles',
      dir,
      '-g',
      'fast',
      '--preset',
      'groq',
      '--preset',
      'deepseek',
      '--preset',
      'groq',
      '--model',
      'groq=llama-3.1-8b-instant',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const written = parse(await readFile(path.join(dir, 'fast.yaml'), 'utf8')) as {
      endpoints: Array<Record<string, unknown>>;
    };
    assert.deepEqual(
      written.endpoints.map((e) => [e.name, e.apikey, e.model]),
      [
        ['groq', '${GROQ_API_KEY}', 'llama-3.1-8b-instant'],
        ['deepseek', '${DEEPSEEK_API_KEY}', 'deepseek-chat'],
        ['groq-2', '${GROQ_API_KEY}', 'llama-3.1-8b-instant'],
      ],
    );
    const again = await runCli(['init', '--profiles', dir, '-g', 'fast', '--preset', 'ollama']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /fast\.yaml exists; pass --force/);
    assert.equal((await runCli(['init', '--profiles', dir, '-g', 'fast', '--preset', 'ollama', '--force'])).code, 0);
    const bad = await runCli(['init', '--profiles', dir, '--preset', 'openai-ish']);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /unknown preset "openai-ish"; presets: openrouter, chutes, deepseek, groq, mistral, ollama, lmstudio, vllm/,
    );
    const none = await runCli(['init', '--profiles', dir, '-g', 'x'], { input: '' });
    assert.equal(none.code, 2);
  });
});
