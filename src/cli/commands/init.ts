/**
 * `failproxy init`: write a starter profile. Interactive (questions on stdin,
 * answers may be piped) or with flags (`--preset openrouter --preset ollama`).
 * Keys are written as `${VAR}` references, never as values.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { ConfigError, UsageError } from '../../core/errors.js';
import { loadProfileFile, resolveProfilesDir } from '../../config/profiles.js';
import { describeProblems } from '../common.js';

interface Preset {
  label: string;
  baseurl: string;
  /** The variable the key is read from; undefined for keyless local servers. */
  keyVar?: string;
  type?: 'openrouter' | 'chutes';
  model: string;
}

/** Provider presets with their OpenAI-compatible base URLs; models are starting points to edit. */
export const PRESETS: Record<string, Preset> = {
  openrouter: {
    label: 'OpenRouter',
    baseurl: 'https://openrouter.ai/api/v1',
    keyVar: 'OPENROUTER_API_KEY',
    type: 'openrouter',
    model: 'deepseek/deepseek-chat-v3-0324:free',
  },
  chutes: {
    label: 'Chutes',
    baseurl: 'https://llm.chutes.ai/v1',
    keyVar: 'CHUTES_API_KEY',
    type: 'chutes',
    model: 'deepseek-ai/DeepSeek-V3-0324',
  },
  deepseek: {
    label: 'DeepSeek',
    baseurl: 'https://api.deepseek.com/v1',
    keyVar: 'DEEPSEEK_API_KEY',
    model: 'deepseek-chat',
  },
  groq: {
    label: 'Groq',
    baseurl: 'https://api.groq.com/openai/v1',
    keyVar: 'GROQ_API_KEY',
    model: 'llama-3.3-70b-versatile',
  },
  mistral: {
    label: 'Mistral',
    baseurl: 'https://api.mistral.ai/v1',
    keyVar: 'MISTRAL_API_KEY',
    model: 'mistral-small-latest',
  },
  ollama: { label: 'Ollama (local)', baseurl: 'http://127.0.0.1:11434/v1', model: 'llama3.2' },
  lmstudio: { label: 'LM Studio (local)', baseurl: 'http://127.0.0.1:1234/v1', model: 'local-model' },
  vllm: {
    label: 'vLLM (local; FailProxy also defaults to port 8000, so one of them moves)',
    baseurl: 'http://127.0.0.1:8001/v1',
    model: 'served-model',
  },
};

interface RawInitOptions {
  profiles?: string;
  group?: string;
  preset: string[];
  model: string[];
  force?: boolean;
}

interface Choice {
  preset: string;
  model: string;
}

const collect = (value: string, previous: string[]): string[] => previous.concat(value);

export function initCommand(): Command {
  return new Command('init')
    .description('write a starter profile: asks which providers to fail over between, or takes --preset flags')
    .option('--profiles <dir>', 'where to write (default: $FAILPROXY_PROFILES or ./profiles)')
    .option('-g, --group <name>', 'the group (file) name; clients send it as "model"', undefined)
    .option(
      '--preset <name>',
      `a provider, in failover order (repeatable): ${Object.keys(PRESETS).join(', ')}`,
      collect,
      [],
    )
    .option(
      '--model <preset=model>',
      'the model for a preset (repeatable), e.g. groq=llama-3.1-8b-instant',
      collect,
      [],
    )
    .option('--force', 'overwrite an existing profile of that name')
    .action(async (raw: RawInitOptions) => init(raw));
}

async function init(raw: RawInitOptions): Promise<void> {
  const dir = resolveProfilesDir({
    ...(raw.profiles !== undefined ? { flag: raw.profiles } : {}),
    env: process.env,
    cwd: process.cwd(),
  });
  let group = raw.group;
  let choices: Choice[];
  if (raw.preset.length > 0) {
    const models = new Map<string, string>();
    for (const m of raw.model) {
      const [name, ...rest] = m.split('=');
      if (!name || rest.length === 0 || !PRESETS[name])
        throw new UsageError(`--model expects preset=model with a known preset, got "${m}"`);
      models.set(name, rest.join('='));
    }
    choices = raw.preset.map((p) => {
      const preset = PRESETS[p];
      if (!preset) throw new UsageError(`unknown preset "${p}"; presets: ${Object.keys(PRESETS).join(', ')}`);
      return { preset: p, model: models.get(p) ?? preset.model };
    });
  } else {
    ({ group, choices } = await ask(group));
  }
  group = (group ?? 'chat').trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(group))
    throw new UsageError(`a group name is letters, digits, ".", "_" and "-", got "${group}"`);
  const file = path.join(dir, `${group}.yaml`);
  if (existsSync(file) && raw.force !== true) throw new ConfigError(`${file} exists; pass --force to overwrite it`);

  const names = new Map<string, number>();
  const endpoints = choices.map(({ preset: id, model }) => {
    const preset = PRESETS[id]!;
    const n = (names.get(id) ?? 0) + 1;
    names.set(id, n);
    return {
      name: n === 1 ? id : `${id}-${n}`,
      ...(preset.type ? { type: preset.type } : {}),
      baseurl: preset.baseurl,
      apikey: preset.keyVar ? `\${${preset.keyVar}}` : '',
      model,
      timeout: 60,
    };
  });
  await mkdir(dir, { recursive: true });
  const header = `# Written by failproxy init. Endpoints are tried in this order; keys come from the environment.\n`;
  await writeFile(file, header + stringify({ endpoints }), { flag: raw.force === true ? 'w' : 'wx' });

  const loaded = await loadProfileFile(file, process.env);
  for (const line of describeProblems(loaded.problems.filter((p) => p.severity === 'error')))
    process.stderr.write(`${line}\n`);
  const vars = [
    ...new Set(
      choices.map((c) => PRESETS[c.preset]!.keyVar).filter((v): v is string => v !== undefined && !process.env[v]),
    ),
  ];
  const lines = [
    `wrote ${file} (group "${group}", ${endpoints.length} endpoint${endpoints.length === 1 ? '' : 's'}: ${endpoints.map((e) => e.name).join(' → ')})`,
  ];
  if (vars.length > 0) lines.push(`set ${vars.map((v) => `${v}=...`).join(' ')} in the environment, then:`);
  else lines.push('next:');
  lines.push(
    `  failproxy check${raw.profiles !== undefined ? ` --profiles ${raw.profiles}` : ''}`,
    `  failproxy serve${raw.profiles !== undefined ? ` --profiles ${raw.profiles}` : ''}   # clients use model "${group}"`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The questions; answers are read a line at a time, so they may be piped in. */
async function ask(group: string | undefined): Promise<{ group: string; choices: Choice[] }> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY === true });
  const lines = rl[Symbol.asyncIterator]();
  const question = async (text: string): Promise<string> => {
    process.stderr.write(text);
    const next = await lines.next();
    if (next.done === true) throw new UsageError('init needs answers on stdin (or pass --preset NAME ...)');
    return String(next.value).trim();
  };
  try {
    const name = group ?? ((await question('Group name (clients send it as "model") [chat]: ')) || 'chat');
    const ids = Object.keys(PRESETS);
    process.stderr.write(
      `Providers:\n${ids.map((id, i) => `  ${i + 1}. ${PRESETS[id]!.label}  ${PRESETS[id]!.baseurl}`).join('\n')}\n`,
    );
    const picked = await question('Which, in failover order (e.g. 1,6)? ');
    const numbers = picked.split(/[\s,]+/).filter((s) => s !== '');
    if (numbers.length === 0) throw new UsageError('pick at least one provider');
    const choices: Choice[] = [];
    for (const n of numbers) {
      const id = ids[Number(n) - 1] ?? (PRESETS[n] ? n : undefined);
      if (id === undefined) throw new UsageError(`no provider "${n}"; answer with numbers from 1 to ${ids.length}`);
      const model = (await question(`Model for ${PRESETS[id]!.label} [${PRESETS[id]!.model}]: `)) || PRESETS[id]!.model;
      choices.push({ preset: id, model });
    }
    return { group: name, choices };
  } finally {
    rl.close();
  }
}
