// End-to-end: the official `openai` Node SDK (v4) against Sluice's response cache (docs/cache.md)
// on a route to sluice-mock speaking OpenAI. A repeated question is answered by the gateway
// (response header `x-sluice-cache: hit`, read through `.withResponse()`), with the first
// answer's message; asked again with `stream: true` (stream is not part of the cache key) the
// stored answer is replayed as a stream the SDK accepts, in a burst and paced.
//
// Request headers are not part of the key: a repeat sending another `x-mock-tokens` still hits,
// and the first answer's text proves the answer came from the cache (the mock answers
// "w1 ... wN" with N = x-mock-tokens). `GET /mock/stats` counts the upstream calls.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, mockTarget, within } from './helpers.mjs';

let stack;
let client;
const T = { timeout: 20000 };

before(async () => {
  stack = await startStack({
    routes: (m) => `\
  - model: cached
    cache: {ttl_s: 60}
    targets: [${mockTarget(m, 'openai', 'model: mock-model')}]
`,
  });
  client = new OpenAI({ baseURL: `${stack.gwUrl}/v1`, apiKey: 'sk-test', maxRetries: 0,
    timeout: 10000 });
});

after(async () => {
  if (stack) await stack.stop();
});

const upstreamCalls = async () => (await stack.mockJson('/mock/stats')).requests;
const ask = (text) => [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: text }];
const tokens = (n, extra = {}) => ({ headers: { 'x-mock-tokens': String(n), ...extra } });

/** Reads a chat completion stream to its end: the chunks and the concatenated text. */
async function drain(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const choices = chunks.flatMap((c) => c.choices);
  return { chunks, text: choices.map((c) => c.delta?.content ?? '').join(''), choices };
}

test('a repeated chat.completions.create is a hit with an identical message', T, async () => {
  const messages = ask('What is the capital of France?');
  const n0 = await upstreamCalls();
  const first = await client.chat.completions.create({ model: 'cached', messages },
    tokens(6)).withResponse();
  assert.equal(first.response.headers.get('x-sluice-cache'), 'miss');
  assert.equal(first.data.choices[0].message.content, 'w1 w2 w3 w4 w5 w6');
  assert.equal(await upstreamCalls(), n0 + 1);

  const second = await client.chat.completions.create({ model: 'cached', messages },
    tokens(2)).withResponse();
  assert.equal(second.response.headers.get('x-sluice-cache'), 'hit');
  assert.ok(Number(second.response.headers.get('age')) >= 0);
  assert.deepEqual(second.data.choices[0].message, first.data.choices[0].message);
  assert.equal(second.data.choices[0].finish_reason, 'stop');
  assert.deepEqual(second.data.usage, first.data.usage);
  assert.equal(second.data.object, 'chat.completion');
  assert.equal(second.data.model, 'cached');
  assert.notEqual(second.data.id, first.data.id);
  assert.ok(second.data.id.startsWith('cache-'), second.data.id);
  assert.equal(await upstreamCalls(), n0 + 1, 'the hit made no upstream call');

  // Spelled differently (the user text as a one-part array, the default temperature, a
  // `user`): the same question, still a hit.
  const third = await client.chat.completions.create({
    model: 'cached', temperature: 1, user: 'someone-else',
    messages: [messages[0], { role: 'user', content: [{ type: 'text', text: messages[1].content }] }],
  }).withResponse();
  assert.equal(third.response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(third.data.choices[0].message.content, 'w1 w2 w3 w4 w5 w6');
  assert.equal(await upstreamCalls(), n0 + 1);
});

test('the same question with stream: true replays a valid stream', T, async () => {
  const messages = ask('Name three rivers.');
  const first = await client.chat.completions.create({ model: 'cached', messages },
    tokens(5)).withResponse();
  assert.equal(first.response.headers.get('x-sluice-cache'), 'miss');
  const want = first.data.choices[0].message.content;
  assert.equal(want, 'w1 w2 w3 w4 w5');
  const n0 = await upstreamCalls();

  const { data: stream, response } = await client.chat.completions.create(
    { model: 'cached', messages, stream: true, stream_options: { include_usage: true } },
    tokens(9)).withResponse();
  assert.equal(response.headers.get('x-sluice-cache'), 'hit');
  assert.match(response.headers.get('content-type'), /^text\/event-stream/);
  const { chunks, text, choices } = await within(10000, drain(stream), 'replayed stream');
  assert.equal(text, want);
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');
  assert.deepEqual(choices.map((c) => c.finish_reason).filter(Boolean), ['stop']);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, first.data.usage);
  assert.equal(await upstreamCalls(), n0, 'the replay made no upstream call');

  // The SDK's stream helper accepts the replay too, and a paced replay is the same stream.
  const helper = client.beta.chat.completions.stream({ model: 'cached', messages },
    { headers: { 'x-sluice-cache-replay': 'paced' } });
  const deltas = [];
  helper.on('content.delta', ({ delta }) => deltas.push(delta));
  const done = await within(15000, helper.finalChatCompletion(), 'paced replay');
  assert.equal(deltas.join(''), want);
  assert.equal(done.choices[0].message.content, want);
  assert.equal(done.choices[0].finish_reason, 'stop');
  assert.equal(await upstreamCalls(), n0);
});

test('a streamed first answer is served to a unary repeat', T, async () => {
  const messages = ask('Count to four.');
  const { data: stream, response } = await client.chat.completions.create(
    { model: 'cached', messages, stream: true }, tokens(4)).withResponse();
  assert.equal(response.headers.get('x-sluice-cache'), 'miss');
  const { text } = await within(10000, drain(stream), 'first stream');
  assert.equal(text, 'w1 w2 w3 w4 ');
  const n0 = await upstreamCalls();
  const again = await client.chat.completions.create({ model: 'cached', messages })
    .withResponse();
  assert.equal(again.response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(again.data.choices[0].message.content, text);
  assert.equal(await upstreamCalls(), n0);
});

test('x-sluice-cache: off bypasses the cache', T, async () => {
  const messages = ask('What is the capital of France?');
  const n0 = await upstreamCalls();
  const r = await client.chat.completions.create({ model: 'cached', messages },
    { headers: { 'x-sluice-cache': 'off', 'x-mock-tokens': '2' } }).withResponse();
  assert.equal(r.response.headers.get('x-sluice-cache'), 'bypass');
  assert.equal(r.data.choices[0].message.content, 'w1 w2');
  assert.equal(await upstreamCalls(), n0 + 1);
});
