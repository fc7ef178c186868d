/**
 * Reasoning that a front door replays into the history (Anthropic `thinking`
 * blocks, Responses `reasoning` items) as `reasoning_content` on assistant
 * messages. Reasoning upstreams such as DeepSeek reject a tool-call turn whose
 * earlier reasoning is missing; most others reject or are confused by an
 * unknown message field. So the replayed field goes only to endpoints that
 * need it. A chat client's own `reasoning_content` is never touched: only a
 * request marked by a front door is filtered.
 */
import type { ChatMessage, ChatRequest, Endpoint, JsonObject } from './types.js';

/** Set by a front door on a request whose assistant `reasoning_content` it wrote itself. */
export const REPLAYED_REASONING: unique symbol = Symbol('failproxy.replayedReasoning');

type Marked = ChatRequest & { [REPLAYED_REASONING]?: true };

/** Marks `request` so that its replayed reasoning reaches only the endpoints that need it. */
export function markReplayedReasoning(request: ChatRequest): void {
  (request as Marked)[REPLAYED_REASONING] = true;
}

/**
 * Whether an endpoint wants earlier reasoning back: its `reasoning_replay`
 * option when set, else DeepSeek models, recognised by their name.
 */
export function wantsReplayedReasoning(endpoint: Endpoint): boolean {
  return endpoint.reasoningReplay ?? /deepseek/i.test(endpoint.model);
}

/** Drops replayed `reasoning_content` from the upstream body for endpoints that do not want it. */
export function applyReasoningReplay(body: JsonObject, request: ChatRequest, endpoint: Endpoint): void {
  if ((request as Marked)[REPLAYED_REASONING] !== true || wantsReplayedReasoning(endpoint)) return;
  body.messages = request.messages.map((message): ChatMessage => {
    if (!('reasoning_content' in message)) return message;
    const { reasoning_content: _dropped, ...rest } = message;
    return rest as ChatMessage;
  });
}
