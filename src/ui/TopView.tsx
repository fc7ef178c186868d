/** `failproxy top`: groups and endpoints with their state, then the latest requests. Props only. */
import { Box, Text } from 'ink';
import { formatCost, formatTokens } from '../logging/usage.js';
import {
  clockTime,
  formatEndpointState,
  formatSpan,
  formatFeedChain,
  formatLatency,
  formatSpend,
  formatSuccess,
} from './top-format.js';
import type { TopState } from './top-state.js';

export interface TopViewProps {
  state: TopState;
  width: number;
  /** Terminal rows; the request feed takes what the groups leave. */
  height: number;
  color: boolean;
}

const HEADER = ['ENDPOINT', 'STATE', 'SUCCESS', 'P50/P95', 'TTFT P50/P95', 'TOKENS IN/OUT COST'];

export function TopView({ state, width, height, color }: TopViewProps) {
  const status = state.status;
  const rows: string[][] = [];
  for (const group of status?.groups ?? []) {
    for (const e of group.endpoints) {
      rows.push([
        e.name,
        formatEndpointState(e, state.now),
        formatSuccess(e),
        formatLatency(e.window.p50_ms, e.window.p95_ms),
        formatLatency(e.window.ttft_p50_ms, e.window.ttft_p95_ms),
        formatSpend(e.usage),
      ]);
    }
  }
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const totals = (status?.groups ?? []).reduce(
    (a, g) => ({
      n: a.n + g.usage.requests,
      t: a.t + g.usage.prompt_tokens + g.usage.completion_tokens,
      c: a.c + g.usage.cost,
    }),
    { n: 0, t: 0, c: 0 },
  );
  // Title, per group a gap, its name and the header, the rows, the feed's gap and title, the key hint, one spare line.
  const used = 5 + (status?.groups.length ?? 0) * 3 + rows.length;
  const feedRows = Math.max(3, height - used);
  const dim = color ? { dimColor: true } : {};
  let r = 0;
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate">
        <Text bold={color}>FailProxy top</Text> {state.url} ·{' '}
        <Text {...(color ? { color: state.connection === 'live' ? 'green' : 'yellow' } : {})}>{state.connection}</Text>
        {state.problem !== null ? ` (${state.problem})` : ''}
        {status !== null
          ? ` · up ${formatSpan(status.uptime_s)} · ${totals.n} answered · ${formatTokens(totals.t)} tokens · ${formatCost(totals.c)}`
          : ''}
      </Text>
      {(status?.groups ?? []).map((group) => (
        <Box key={group.name} flexDirection="column" marginTop={1}>
          <Text wrap="truncate" bold={color}>
            {group.name}
            <Text {...dim}>
              {' '}
              {group.endpoints.filter((e) => e.state !== 'cooling').length}/{group.endpoints.length} available
            </Text>
          </Text>
          <Text wrap="truncate" {...dim}>
            {' '}
            {line(HEADER)}
          </Text>
          {group.endpoints.map((e) => {
            const cells = rows[r++] ?? [];
            const stateColor = e.state === 'ok' ? 'green' : e.state === 'cooling' ? 'red' : 'yellow';
            const text = line(cells);
            const at = (widths[0] ?? 0) + 2;
            const stateText = (cells[1] ?? '').padEnd(widths[1] ?? 0);
            return (
              <Text key={e.name} wrap="truncate">
                {'  '}
                {text.slice(0, at)}
                <Text {...(color ? { color: stateColor } : {})}>{stateText}</Text>
                {text.slice(at + stateText.length)}
              </Text>
            );
          })}
        </Box>
      ))}
      <Box flexDirection="column" marginTop={1}>
        <Text bold={color}>Latest requests</Text>
        {state.recent.length === 0 && <Text {...dim}> none yet</Text>}
        {state.recent.slice(0, feedRows).map((req) => (
          <Text key={req.id} wrap="truncate">
            <Text {...dim}> {clockTime(req.ts)} </Text>
            <Text bold={color}>{req.group}</Text>{' '}
            <Text {...(color && req.outcome !== 'ok' ? { color: 'red' } : {})}>{formatFeedChain(req)}</Text>
            {req.usage !== null ? (
              <Text {...dim}>
                {' '}
                {formatTokens(req.usage.prompt_tokens + req.usage.completion_tokens)} tok
                {req.usage.cost !== null ? ` ${formatCost(req.usage.cost)}` : ''}
              </Text>
            ) : null}
          </Text>
        ))}
      </Box>
      <Text {...dim}>q quits</Text>
    </Box>
  );
}
