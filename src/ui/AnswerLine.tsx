/** One line of the answer; reasoning is dimmed. */
import { Box, Text } from 'ink';
import type { TextLine } from './state.js';

export interface AnswerLineProps {
  line: TextLine;
  width: number;
  color: boolean;
  /** A blank line before it (between the attempts and the answer, after reasoning). */
  gap: boolean;
}

export function AnswerLine({ line, width, color, gap }: AnswerLineProps) {
  const dim = line.kind === 'reasoning' && color;
  return (
    <Box width={width} marginTop={gap ? 1 : 0}>
      <Text dimColor={dim} italic={dim}>
        {line.text === '' ? ' ' : line.text}
      </Text>
    </Box>
  );
}
