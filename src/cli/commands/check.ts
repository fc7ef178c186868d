/**
 * `failproxy check`: validate the profiles without serving, for a config's CI.
 * Every problem is printed with its file and field path; exit 0 when the
 * profiles load cleanly, 2 when any has an error (or a warning, with --strict).
 * Unset `${VAR}`s are warnings: a CI runner rarely holds the real keys.
 */
import { Command } from 'commander';
import { ConfigError } from '../../core/errors.js';
import { loadProfiles, resolveProfilesDir } from '../../config/profiles.js';
import { describeProblems } from '../common.js';

interface RawCheckOptions {
  profiles?: string;
  json?: boolean;
  strict?: boolean;
}

export function checkCommand(): Command {
  return new Command('check')
    .description('validate the profiles (every problem with its file and field path); exit 2 on errors')
    .option('--profiles <dir>', 'profiles directory (default: $FAILPROXY_PROFILES, ./profiles, ./config)')
    .option('--strict', 'fail on warnings too (unknown fields, unset variables, renamed duplicates)')
    .option('--json', 'print {dir, groups, problems} as JSON')
    .action(async (raw: RawCheckOptions) => {
      const dir = resolveProfilesDir({
        ...(raw.profiles !== undefined ? { flag: raw.profiles } : {}),
        env: process.env,
        cwd: process.cwd(),
      });
      const { groups, problems } = await loadProfiles(dir, process.env);
      const errors = problems.filter((p) => p.severity === 'error').length;
      const warnings = problems.length - errors;
      if (raw.json === true) {
        const summary = [...groups.values()].map((g) => ({
          name: g.name,
          file: g.source,
          endpoints: g.endpoints.length + g.skipped.length,
          usable: g.endpoints.length,
        }));
        process.stdout.write(
          `${JSON.stringify({ dir, groups: summary, problems: problems.map(({ missingEnv: _m, ...p }) => p) }, null, 2)}\n`,
        );
      } else {
        const lines = describeProblems(problems);
        for (const g of groups.values()) {
          const total = g.endpoints.length + g.skipped.length;
          const usable = g.skipped.length > 0 ? ` (${g.endpoints.length} usable with this environment)` : '';
          lines.push(`ok: ${g.name}: ${total} endpoint${total === 1 ? '' : 's'}${usable}`);
        }
        lines.push(
          `${dir}: ${groups.size} group${groups.size === 1 ? '' : 's'}, ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`,
        );
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (errors > 0) throw new ConfigError(`${errors} error${errors === 1 ? '' : 's'} in ${dir}`);
      if (raw.strict === true && warnings > 0)
        throw new ConfigError(`${warnings} warning${warnings === 1 ? '' : 's'} in ${dir} (--strict)`);
    });
}
