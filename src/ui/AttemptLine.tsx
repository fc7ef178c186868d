/** One attempt: name and a spinner while it runs, then ✓ or ✗ with class, status and time. */
import { Box, Text } from 'ink';
import {
  ABANDONED_MARK,
  attemptTags,
  describeAbandoned,
  describeAttemptFailure,
  FAIL_MARK,
  formatDuration,
  OK_MARK,
} from './format.js';
import { Spinner } from './Spinner.js';
import type { AttemptView } from './state.js';

export interface AttemptLineProps {
  attempt: AttemptView;
  now: number;
  width: number;
  color: boolean;
}

export function AttemptLine({ attempt, now, width, color }: AttemptLineProps) {
  const head = `[${attempt.n}] ${attempt.endpoint}${attemptTags(attempt)} `;
  return (
    <Box width={width}>
      <Text wrap="truncate-end">
        {head}
        <AttemptResult attempt={attempt} now={now} color={color} />
      </Text>
    </Box>
  );
}

function AttemptResult({ attempt, now, color }: Omit<AttemptLineProps, 'width'>) {
  const green = color ? { color: 'green' } : {};
  const red = color ? { color: 'red' } : {};
  const dim = color ? { dimColor: true } : {};
  switch (attempt.status) {
    case 'running':
      if (attempt.ttftMs !== null) {
        return (
          <Text>
            <Text {...green}>{OK_MARK}</Text>
            <Text {...dim}> first token {formatDuration(attempt.ttftMs)}</Text>
          </Text>
        );
      }
      return (
        <Text>
          <Spinner now={now} color={color} />
          <Text {...dim}> {formatDuration(Math.max(0, now - attempt.startedAt))}</Text>
        </Text>
      );
    case 'ok':
      return (
        <Text>
          <Text {...green}>{OK_MARK}</Text> {formatDuration(attempt.ms)}
        </Text>
      );
    case 'failed':
      return (
        <Text>
          <Text {...red}>{FAIL_MARK}</Text> {describeAttemptFailure(attempt)}
        </Text>
      );
    case 'abandoned':
      return (
        <Text {...dim}>
          {ABANDONED_MARK} {describeAbandoned(attempt)}
        </Text>
      );
    case 'cancelled':
      return (
        <Text>
          <Text {...red}>{FAIL_MARK}</Text> cancelled
        </Text>
      );
  }
}
