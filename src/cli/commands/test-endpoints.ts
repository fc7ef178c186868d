import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';

/** Placeholder until the command lands. */
export function testEndpointsCommand(): Command {
  return new Command('test-endpoints').action(() => {
    throw new UsageError('not implemented yet');
  });
}
