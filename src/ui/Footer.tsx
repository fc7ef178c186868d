/** The summary under the answer: endpoint used, attempts, first token, total time, tokens. */
import { Box, Text } from 'ink';
import type { Usage } from '../core/types.js';
import { FAIL_MARK, formatDuration, formatUsage, OK_MARK } from './format.js';
import type { AskOutcome } from './state.js';

export interface FooterProps {
  outcome: AskOutcome;
  group: string;
  endpoint: string | null;
  model: string | null;
  attempts: number;
  ttftMs: number | null;
  /** Total time when over, elapsed time while running. */
  ms: number;
  usage: Usage | null;
  width: number;
  color: boolean;
}

export function Footer(props: FooterProps) {
  const { outcome, color } = props;
  const parts = [`${props.attempts} attempt${props.attempts === 1 ? '' : 's'}`];
  if (props.ttftMs !== null) parts.push(`first token ${formatDuration(props.ttftMs)}`);
  parts.push(`${outcome === 'running' ? 'elapsed' : 'total'} ${formatDuration(props.ms)}`);
  const usage = formatUsage(props.usage);
  if (usage !== null) parts.push(usage);
  const details = parts.join(' · ');
  const mark = outcome === 'done' ? OK_MARK : outcome === 'running' ? null : FAIL_MARK;
  const markColor = color ? { color: outcome === 'done' ? 'green' : 'red' } : {};
  return (
    <Box width={props.width} marginTop={1}>
      <Text wrap="wrap">
        {mark !== null && <Text {...markColor}>{mark} </Text>}
        <Text bold={color}>{headline(props)}</Text>
        <Text {...(color ? { dimColor: true } : {})}> · {details}</Text>
      </Text>
    </Box>
  );
}

function headline({ outcome, group, endpoint, model }: FooterProps): string {
  const via = endpoint === null ? group : `${endpoint}${model !== null && model !== endpoint ? ` (${model})` : ''}`;
  switch (outcome) {
    case 'running':
      return group;
    case 'done':
      return via;
    case 'failed':
      return `every endpoint of ${group} failed`;
    case 'interrupted':
      return `${via} broke off mid-answer; the answer above is incomplete`;
    case 'cancelled':
      return 'cancelled';
  }
}
