/**
 * The `ask` screen: attempts as they happen, the answer streaming beneath,
 * and a footer. The transcript (settled attempts, finished answer lines) goes
 * to Ink's <Static>, so the live part stays a few lines high however long the
 * answer grows, and the terminal scrollback keeps the whole answer.
 */
import { Box, Static } from 'ink';
import { AnswerLine } from './AnswerLine.js';
import { AttemptLine } from './AttemptLine.js';
import { Footer } from './Footer.js';
import type { AskState, TextLine, TranscriptItem } from './state.js';

export interface AskViewProps {
  state: AskState;
  /** Terminal columns. */
  width: number;
  showReasoning: boolean;
  color: boolean;
}

export function AskView({ state, width, showReasoning, color }: AskViewProps) {
  const visible = (line: TextLine) => showReasoning || line.kind === 'content';
  // Filtering keeps the list append-only, as <Static> needs.
  const transcript = state.transcript.filter((item) => item.kind === 'attempt' || visible(item.line));
  const items = transcript.map((item, i) => ({ item, key: String(i), gap: needsGap(transcript[i - 1], item) }));
  // Still waiting for a first token: these lines change (spinner, time).
  const live = state.attempts.filter((a) => a.status === 'running' && a.ttftMs === null);
  const partial = state.partial !== null && visible(state.partial) ? state.partial : null;
  const ms = state.totalMs ?? Math.max(0, state.now - state.startedAt);

  return (
    <>
      <Static items={items}>
        {({ item, key, gap }) =>
          item.kind === 'attempt' ? (
            <Box key={key} marginTop={gap ? 1 : 0}>
              <AttemptLine attempt={item.attempt} now={state.now} width={width} color={color} />
            </Box>
          ) : (
            <AnswerLine key={key} line={item.line} width={width} color={color} gap={gap} />
          )
        }
      </Static>
      <Box flexDirection="column" width={width}>
        {live.map((attempt) => (
          <AttemptLine key={attempt.n} attempt={attempt} now={state.now} width={width} color={color} />
        ))}
        {partial !== null && (
          <AnswerLine
            line={partial}
            width={width}
            color={color}
            gap={needsGap(transcript.at(-1), { kind: 'line', line: partial })}
          />
        )}
        <Footer
          outcome={state.outcome}
          group={state.group}
          endpoint={state.endpoint}
          model={state.model}
          attempts={state.attempts.length}
          ttftMs={state.ttftMs}
          ms={ms}
          usage={state.usage}
          width={width}
          color={color}
        />
      </Box>
    </>
  );
}

/** A blank line where attempts and answer meet, and between reasoning and content. */
function needsGap(previous: TranscriptItem | undefined, item: TranscriptItem): boolean {
  if (previous === undefined) return item.kind === 'line';
  if (previous.kind !== item.kind) return true;
  return previous.kind === 'line' && item.kind === 'line' && previous.line.kind !== item.line.kind;
}
