/**
 * Engine chunks as Responses stream events, in the order clients finalize on:
 * `response.created`, `response.in_progress`, then each output item opened
 * with `output_item.added`, filled with its deltas and closed with its `.done`
 * events and `output_item.done` — reasoning, the message, one item per tool
 * call with its own `output_index` — then one terminal event carrying the
 * whole `output`. Every event has the response's id (inside `response` or as
 * `item_id`'s owner) and an increasing `sequence_number`.
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
import { newId, sseEvent, type Obj } from '../util.js';
import {
  callItem,
  customInput,
  messageItem,
  outputText,
  reasoningItem,
  responseObject,
  responsesUsage,
  terminalFields,
  terminalOf,
  type AnswerParts,
  type ResponseFrame,
  type Terminal,
} from './shape.js';

interface OpenItem {
  index: number;
  id: string;
  text: string;
}

interface OpenCall extends OpenItem {
  callId: string;
  name: string;
}

export class ResponsesStreamWriter implements StreamWriter {
  readonly #frame: ResponseFrame;
  readonly #onAnswer: (parts: AnswerParts) => void;
  #model = '';
  #seq = 0;
  readonly #output: Obj[] = [];
  #reasoning: OpenItem | null = null;
  #message: OpenItem | null = null;
  readonly #calls = new Map<number, OpenCall>();
  readonly #parts: AnswerParts = { reasoning: '', text: '', calls: [] };
  #usage: Usage | null = null;

  /** `onAnswer` gets a completed answer (for the `previous_response_id` store). */
  constructor(frame: ResponseFrame, onAnswer: (parts: AnswerParts) => void) {
    this.#frame = frame;
    this.#onAnswer = onAnswer;
  }

  open(model: string): string {
    this.#model = model;
    const response = responseObject(this.#frame, model, 'in_progress', []);
    return this.#event('response.created', { response }) + this.#event('response.in_progress', { response });
  }

  keepAlive(): string {
    return this.#event('response.in_progress', {
      response: responseObject(this.#frame, this.#model, 'in_progress', []),
    });
  }

  chunks(chunks: ChatCompletionChunk[]): string {
    let out = '';
    for (const chunk of chunks) {
      if (chunk.usage) this.#usage = chunk.usage;
      const delta = chunk.choices[0]?.delta;
      if (!delta) continue;
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '')
        out += this.#reasoningDelta(delta.reasoning_content);
      if (typeof delta.content === 'string' && delta.content !== '') out += this.#textDelta(delta.content);
      for (const call of delta.tool_calls ?? []) out += this.#callDelta(call);
    }
    return out;
  }

  done(event: DoneEvent): string {
    const out = this.#closeAll();
    this.#onAnswer(this.#parts);
    return out + this.#terminal(terminalOf(event.finishReason), event.summary.usage ?? this.#usage);
  }

  /**
   * `response.failed` ends the lifecycle for clients that follow it (Codex);
   * the `error` event after it carries a top-level `error`, which is what
   * makes the official SDKs raise instead of returning a partial response.
   */
  interrupted(event: InterruptedEvent): string {
    return this.#failure(event.error.error.code ?? 'stream_interrupted', event.error.error.message);
  }

  failed(event: FailedEvent): string {
    return this.#failure(event.error.error.code ?? 'all_endpoints_failed', event.error.error.message);
  }

  #failure(code: string, message: string): string {
    const out = this.#terminal({ status: 'failed', code, message }, this.#usage);
    const error = { type: 'server_error', code, message, param: null };
    return out + this.#event('error', { code, message, param: null, error });
  }

  #terminal(terminal: Terminal, usage: Usage | null): string {
    const name =
      terminal.status === 'completed'
        ? 'response.completed'
        : terminal.status === 'incomplete'
          ? 'response.incomplete'
          : 'response.failed';
    const response = responseObject(
      this.#frame,
      this.#model,
      terminal.status,
      this.#output,
      terminalFields(terminal, responsesUsage(usage)),
    );
    return this.#event(name, { response });
  }

  #reasoningDelta(text: string): string {
    let out = '';
    if (!this.#reasoning) {
      out += this.#closeMessage();
      const item = this.#add(newId('rs_'), (id) =>
        reasoningItem({ ...this.#frame, encryptedReasoning: false }, id, ''),
      );
      this.#reasoning = item;
      out += item.added;
      out += this.#event('response.reasoning_summary_part.added', {
        item_id: item.id,
        output_index: item.index,
        summary_index: 0,
        part: { type: 'summary_text', text: '' },
      });
    }
    const r = this.#reasoning!;
    r.text += text;
    this.#parts.reasoning += text;
    return (
      out +
      this.#event('response.reasoning_summary_text.delta', {
        item_id: r.id,
        output_index: r.index,
        summary_index: 0,
        delta: text,
      })
    );
  }

  #textDelta(text: string): string {
    let out = this.#closeReasoning();
    if (!this.#message) {
      const item = this.#add(newId('msg_'), (id) => messageItem(id, '', 'in_progress'));
      this.#message = item;
      out += item.added;
      out += this.#event('response.content_part.added', {
        item_id: item.id,
        output_index: item.index,
        content_index: 0,
        part: outputText(''),
      });
    }
    const m = this.#message!;
    m.text += text;
    this.#parts.text += text;
    return (
      out +
      this.#event('response.output_text.delta', {
        item_id: m.id,
        output_index: m.index,
        content_index: 0,
        delta: text,
        logprobs: [],
      })
    );
  }

  #callDelta(delta: ToolCallDelta): string {
    let out = '';
    let call = this.#calls.get(delta.index);
    if (!call) {
      out += this.#closeReasoning() + this.#closeMessage();
      const callId = delta.id ?? newId('call_');
      const name = delta.function.name ?? '';
      const item = this.#add(newId('fc_'), (id) => callItem(this.#frame, id, callId, name, '', false));
      call = { ...item, callId, name };
      this.#calls.set(delta.index, call);
      out += item.added;
    }
    const args = delta.function.arguments ?? '';
    if (args === '') return out;
    call.text += args;
    // A custom tool's input is sent whole once its JSON wrapper is complete.
    if (this.#frame.customTools.has(call.name)) return out;
    return (
      out +
      this.#event('response.function_call_arguments.delta', { item_id: call.id, output_index: call.index, delta: args })
    );
  }

  #add(id: string, item: (id: string) => Obj): OpenItem & { added: string } {
    const index = this.#output.length;
    const value = item(id);
    this.#output.push(value);
    return {
      index,
      id,
      text: '',
      added: this.#event('response.output_item.added', { output_index: index, item: value }),
    };
  }

  #closeReasoning(): string {
    const r = this.#reasoning;
    if (!r) return '';
    this.#reasoning = null;
    const part = { type: 'summary_text', text: r.text };
    let out = this.#event('response.reasoning_summary_text.done', {
      item_id: r.id,
      output_index: r.index,
      summary_index: 0,
      text: r.text,
    });
    out += this.#event('response.reasoning_summary_part.done', {
      item_id: r.id,
      output_index: r.index,
      summary_index: 0,
      part,
    });
    return out + this.#itemDone(r.index, reasoningItem(this.#frame, r.id, r.text));
  }

  #closeMessage(): string {
    const m = this.#message;
    if (!m) return '';
    this.#message = null;
    let out = this.#event('response.output_text.done', {
      item_id: m.id,
      output_index: m.index,
      content_index: 0,
      text: m.text,
      logprobs: [],
    });
    out += this.#event('response.content_part.done', {
      item_id: m.id,
      output_index: m.index,
      content_index: 0,
      part: outputText(m.text),
    });
    return out + this.#itemDone(m.index, messageItem(m.id, m.text, 'completed'));
  }

  #closeAll(): string {
    let out = this.#closeReasoning() + this.#closeMessage();
    for (const call of [...this.#calls.values()].sort((a, b) => a.index - b.index)) {
      const args = call.text;
      this.#parts.calls.push({ id: call.callId, name: call.name, args });
      const base = { item_id: call.id, output_index: call.index };
      if (this.#frame.customTools.has(call.name)) {
        const input = customInput(args);
        if (input !== '') out += this.#event('response.custom_tool_call_input.delta', { ...base, delta: input });
        out += this.#event('response.custom_tool_call_input.done', { ...base, input });
      } else {
        out += this.#event('response.function_call_arguments.done', { ...base, arguments: args });
      }
      out += this.#itemDone(call.index, callItem(this.#frame, call.id, call.callId, call.name, args, true));
    }
    this.#calls.clear();
    return out;
  }

  #itemDone(index: number, item: Obj): string {
    this.#output[index] = item;
    return this.#event('response.output_item.done', { output_index: index, item });
  }

  #event(type: string, fields: Obj): string {
    return sseEvent(type, { type, sequence_number: this.#seq++, ...fields });
  }
}
