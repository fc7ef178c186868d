/**
 * Engine chunks as Anthropic stream events. Clients keep one content block
 * open at a time and reject a delta into a block of another type, so blocks
 * open and close one after another with increasing indexes: thinking (closed
 * with its `signature_delta`), text, then one `tool_use` per tool call. Chat
 * upstreams may interleave the arguments of parallel calls, so only the first
 * call streams live; whatever comes after it is held and sent, complete, at
 * the end of the turn.
 */
import type {
  ChatCompletionChunk,
  DoneEvent,
  FailedEvent,
  InterruptedEvent,
  ToolCallDelta,
  Usage,
} from '../../core/types.js';
import type { StreamWriter } from '../types.js';
import type { ThinkingSigner } from '../thinking-signature.js';
import { newId, sseEvent } from '../util.js';
import type { ToolNames } from './request.js';
import { clientToolName, errorType, messagesUsage, stopReason } from './shape.js';

type Block =
  | { kind: 'thinking'; text: string }
  | { kind: 'text'; text: string }
  | { kind: 'tool'; id: string; name: string; args: string };

export class MessagesStreamWriter implements StreamWriter {
  readonly #id = newId('msg_');
  readonly #estimatedInput: number;
  readonly #toolNames: ToolNames;
  readonly #signer: ThinkingSigner;
  #index = -1;
  #open: Block | null = null;
  /** Set once the first tool call streams: everything after it waits for the end. */
  #liveTool: number | null = null;
  readonly #held: Block[] = [];
  readonly #tools = new Map<number, Block & { kind: 'tool' }>();
  #usage: Usage | null = null;

  constructor(estimatedInput: number, toolNames: ToolNames, signer: ThinkingSigner) {
    this.#estimatedInput = estimatedInput;
    this.#toolNames = toolNames;
    this.#signer = signer;
  }

  open(model: string): string {
    const message = {
      id: this.#id,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: this.#estimatedInput, output_tokens: 0 },
    };
    return sseEvent('message_start', { type: 'message_start', message });
  }

  keepAlive(): string {
    return sseEvent('ping', { type: 'ping' });
  }

  chunks(chunks: ChatCompletionChunk[]): string {
    let out = '';
    for (const chunk of chunks) {
      if (chunk.usage) this.#usage = chunk.usage;
      const delta = chunk.choices[0]?.delta;
      if (!delta) continue;
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') {
        out += this.#textual('thinking', delta.reasoning_content);
      }
      if (typeof delta.content === 'string' && delta.content !== '') out += this.#textual('text', delta.content);
      for (const call of delta.tool_calls ?? []) out += this.#toolCall(call);
    }
    return out;
  }

  done(event: DoneEvent): string {
    let out = this.#close();
    for (const block of this.#held) out += this.#whole(block);
    this.#held.length = 0;
    const usage = messagesUsage(event.summary.usage ?? this.#usage, this.#estimatedInput);
    out += sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason(event.finishReason), stop_sequence: null },
      usage,
    });
    return out + sseEvent('message_stop', { type: 'message_stop' });
  }

  interrupted(event: InterruptedEvent): string {
    return sseEvent('error', { type: 'error', error: { type: 'api_error', message: event.error.error.message } });
  }

  failed(event: FailedEvent): string {
    return sseEvent('error', {
      type: 'error',
      error: { type: errorType(event.status), message: event.error.error.message },
    });
  }

  #textual(kind: 'thinking' | 'text', text: string): string {
    if (this.#liveTool !== null) {
      const last = this.#held.at(-1);
      if (last?.kind === kind) last.text += text;
      else this.#held.push({ kind, text });
      return '';
    }
    let out = '';
    if (this.#open?.kind !== kind) {
      out += this.#close();
      this.#open = { kind, text: '' };
      out += this.#start(
        kind === 'thinking' ? { type: 'thinking', thinking: '', signature: '' } : { type: 'text', text: '' },
      );
    }
    (this.#open as { text: string }).text += text;
    return out + this.#textDelta(kind, text);
  }

  #textDelta(kind: 'thinking' | 'text', text: string): string {
    const delta = kind === 'thinking' ? { type: 'thinking_delta', thinking: text } : { type: 'text_delta', text };
    return sseEvent('content_block_delta', { type: 'content_block_delta', index: this.#index, delta });
  }

  #toolCall(call: ToolCallDelta): string {
    let out = '';
    let tool = this.#tools.get(call.index);
    if (!tool) {
      tool = {
        kind: 'tool',
        id: call.id ?? newId('toolu_'),
        name: clientToolName(this.#toolNames, call.function.name ?? ''),
        args: '',
      };
      this.#tools.set(call.index, tool);
      if (this.#liveTool === null) {
        out += this.#close();
        this.#liveTool = call.index;
        this.#open = tool;
        out += this.#start({ type: 'tool_use', id: tool.id, name: tool.name, input: {} });
      } else {
        this.#held.push(tool);
      }
    }
    const args = call.function.arguments ?? '';
    if (args === '') return out;
    tool.args += args;
    if (this.#open === tool) {
      out += sseEvent('content_block_delta', {
        type: 'content_block_delta',
        index: this.#index,
        delta: { type: 'input_json_delta', partial_json: args },
      });
    }
    return out;
  }

  #start(block: object): string {
    this.#index += 1;
    return sseEvent('content_block_start', { type: 'content_block_start', index: this.#index, content_block: block });
  }

  #close(): string {
    const open = this.#open;
    if (!open) return '';
    this.#open = null;
    let out = '';
    if (open.kind === 'thinking') {
      out += sseEvent('content_block_delta', {
        type: 'content_block_delta',
        index: this.#index,
        delta: { type: 'signature_delta', signature: this.#signer.sign(open.text) },
      });
    }
    return out + sseEvent('content_block_stop', { type: 'content_block_stop', index: this.#index });
  }

  /** A held block, sent whole: start, one delta, stop. */
  #whole(block: Block): string {
    let out = '';
    if (block.kind === 'tool') {
      out += this.#start({ type: 'tool_use', id: block.id, name: block.name, input: {} });
      if (block.args !== '') {
        out += sseEvent('content_block_delta', {
          type: 'content_block_delta',
          index: this.#index,
          delta: { type: 'input_json_delta', partial_json: block.args },
        });
      }
      return out + sseEvent('content_block_stop', { type: 'content_block_stop', index: this.#index });
    }
    out += this.#start(
      block.kind === 'thinking' ? { type: 'thinking', thinking: '', signature: '' } : { type: 'text', text: '' },
    );
    out += this.#textDelta(block.kind, block.text);
    this.#open = block;
    return out + this.#close();
  }
}
