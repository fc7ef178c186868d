import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';

/** Placeholder until the command lands. */
export function askCommand(): Command {
  return new Command('ask').action(() => {
    throw new UsageError('not implemented yet');
  });
}
