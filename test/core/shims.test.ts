/** Parameter shims (issue 15): `drop`, and the retry without a parameter an upstream says it does not support. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineEvent, FailedEvent } from '../../src/core/types.js';
import { completionBody, json, type ReceivedRequest } from '../helpers/fake-upstream.js';
import { chatRequest, endpoint, group, last, runAll } from '../helpers/groups.js';
import { poolGroup } from '../helpers/pools.js';
import { testRig } from '../helpers/rig.js';

const { upstream, engine } = testRig();

/** An upstream that rejects `temperature` the way OpenAI's reasoning models do. */
const noTemperature = (_n: number, req: ReceivedRequest) =>
  'temperature' in req.body
    ? json({ error: { message: "Unsupported parameter: 'temperature' is not supported with this model.", type: 'invalid_request_error', param: 'temperature', code: 'unsupported_parameter' } }, 400)
    : json(completionBody('ok'));

const failures = (events: EngineEvent[]) => events.flatMap((e) => (e.type === 'attempt_failed' ? [e.failure.message] : []));

describe('parameter shims', () => {
  it('drop removes the listed parameters and keeps the rest', async () => {
    const up = await upstream(json(completionBody('ok')));
    const g = poolGroup({ endpoints: [{ name: 'a', baseurl: up.baseurl, model: 'm', apikey: 'k', drop: ['temperature', 'top_p'] }] });
    const events = await runAll(engine(), g, chatRequest({ temperature: 0.3, top_p: 0.9, seed: 7 }));
    assert.equal(last(events).type, 'done');
    const body = up.requests[0]!.body;
    assert.ok(!('temperature' in body) && !('top_p' in body));
    assert.equal(body['seed'], 7);
  });

  it('a 400 naming an unsupported parameter is retried once without it, logged and remembered', async () => {
    const up = await upstream(noTemperature);
    const g = group('g', [endpoint(up.baseurl, { name: 'reasoner' })]);
    const e = engine();
    const events = await runAll(e, g, chatRequest({ temperature: 0.2 }));
    assert.equal(last(events).type, 'done');
    assert.equal(up.requests.length, 2);
    assert.equal(up.requests[1]!.body['temperature'], undefined);
    assert.match(failures(events)[0]!, /retrying without "temperature"/);
    const again = await runAll(e, g, chatRequest({ temperature: 0.2 }));
    assert.equal(last(again).type, 'done');
    assert.equal(up.requests.length, 3, 'remembered: the next request is sent without it at once');
    assert.deepEqual(failures(again), []);
  });

  it('retries only once, and never for a parameter the request does not carry', async () => {
    const strict = await upstream((_n, req) =>
      json({ error: { message: `Unsupported parameter: '${'temperature' in req.body ? 'temperature' : 'top_p'}' is not supported.` } }, 400),
    );
    const g = group('g', [endpoint(strict.baseurl, { name: 'strict' })]);
    const end = last(await runAll(engine(), g, chatRequest({ temperature: 0.2, top_p: 0.5 }))) as FailedEvent;
    assert.equal(end.type, 'failed');
    assert.equal(end.status, 400);
    assert.equal(strict.requests.length, 2, 'one retry per request');

    const other = await upstream(json({ error: { message: "Unsupported parameter: 'logit_bias' is not supported." } }, 400));
    const g2 = group('g2', [endpoint(other.baseurl, { name: 'other' })]);
    assert.equal(last(await runAll(engine(), g2, chatRequest({ temperature: 0.2 }))).type, 'failed');
    assert.equal(other.requests.length, 1);
  });
});
