// End-to-end tests: the official `openai` Node SDK (v4) talking to Sluice, with sluice-mock as
// the upstream provider.
//
//   cd tests/e2e && npm install && node --test
//
// The suite starts build/sluice-mock and build/sluice on ephemeral ports (helpers.mjs), points
// the SDK at http://127.0.0.1:PORT/v1 with apiKey "sk-test", and stops both processes afterwards.
// Only node's built-in test runner and the SDK are used.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { startStack, closedPort, within } from './helpers.mjs';

const UPSTREAM_KEY = 'sk-upstream-e2e-key';

let stack;
let client;
let gatewayBase;
const mockJson = (p) => stack.mockJson(p);

before(async () => {
  const dead = await closedPort();
  stack = await startStack({
    env: { MOCK_KEY: UPSTREAM_KEY },
    routes: ({ url }) => `\
  - model: mock-model
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "${url}/v1", api_key_env: MOCK_KEY}]
  - model: "mock-*"
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "${url}/v1", model: mock-model}]
  - model: demo
    targets: [{provider: demo}]
  - model: dead
    targets: [{provider: openai, forward_headers: ["x-mock-*"], base_url: "http://127.0.0.1:${dead}/v1"}]
`,
  });
  gatewayBase = `${stack.gwUrl}/v1`;
  client = new OpenAI({ baseURL: gatewayBase, apiKey: 'sk-test', maxRetries: 0, timeout: 10000 });
});

after(async () => {
  if (stack) await stack.stop();
});

const messages = [{ role: 'user', content: 'Hello from the SDK' }];

test('chat completion, unary', { timeout: 15000 }, async () => {
  const r = await client.chat.completions.create(
    { model: 'mock-model', messages }, { headers: { 'x-mock-tokens': '5' } });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'w1 w2 w3 w4 w5');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 5);
  // the SDK's key never reaches the upstream; the route's key does
  const last = await mockJson('/mock/last');
  assert.equal(last.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
});

test('chat completion, unary, glob route with model rewrite', { timeout: 15000 }, async () => {
  const r = await client.chat.completions.create(
    { model: 'mock-e2e', messages }, { headers: { 'x-mock-tokens': '2' } });
  assert.equal(r.choices[0].message.content, 'w1 w2');
  const last = await mockJson('/mock/last');
  assert.equal(JSON.parse(last.body).model, 'mock-model');
});

test('chat completion, streaming', { timeout: 15000 }, async () => {
  const stream = await client.chat.completions.create(
    { model: 'mock-model', messages, stream: true }, { headers: { 'x-mock-tokens': '6' } });
  let content = '';
  let n = 0;
  let finish = null;
  for await (const chunk of stream) {
    n += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const ch of chunk.choices) {
      content += ch.delta?.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.equal(content, 'w1 w2 w3 w4 w5 w6 ');
  assert.equal(n, 1 + 6 + 1);
  assert.equal(finish, 'stop');
});

test('chat completion, streaming with include_usage', { timeout: 15000 }, async () => {
  const stream = await client.chat.completions.create(
    { model: 'mock-model', messages, stream: true, stream_options: { include_usage: true } },
    { headers: { 'x-mock-tokens': '3' } });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const content = chunks.flatMap((c) => c.choices).map((c) => c.delta?.content ?? '').join('');
  assert.equal(content, 'w1 w2 w3 ');
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage, 'last chunk carries usage');
  assert.equal(last.usage.completion_tokens, 3);
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + 3);
});

test('embeddings (SDK default base64, decoded to floats)', { timeout: 15000 }, async () => {
  const r = await client.embeddings.create({ model: 'mock-model', input: ['alpha', 'beta'] });
  assert.equal(r.data.length, 2);
  for (const d of r.data) {
    assert.ok(Array.isArray(d.embedding), `embedding is ${typeof d.embedding}`);
    assert.equal(d.embedding.length, 8);
    for (const x of d.embedding) assert.equal(typeof x, 'number');
  }
  const last = await mockJson('/mock/last');
  assert.equal(last.path, '/v1/embeddings');
});

test('models.list', { timeout: 15000 }, async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.deepEqual(ids.sort(), ['dead', 'demo', 'mock-model']);
  const one = await client.models.retrieve('demo');
  assert.equal(one.id, 'demo');
});

test('unknown model → NotFoundError 404', { timeout: 15000 }, async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.ok(err.headers['x-request-id'], 'x-request-id on the error response');
      return true;
    });
});

test('upstream 429 → RateLimitError with the upstream body', { timeout: 15000 }, async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'mock-model', messages },
      { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '1' } }),
    (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 429);
      assert.equal(err.code, 'mock_429');
      assert.equal(err.headers['retry-after'], '1');
      return true;
    });
});

test('upstream unreachable → 502 APIError', { timeout: 15000 }, async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'dead', messages }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 502);
      return true;
    });
});

test('mid-stream upstream failure → the async iterator throws', { timeout: 15000 }, async () => {
  // Own keep-alive agent, so whatever happens to this connection stays within this test.
  const agent = new http.Agent({ keepAlive: true });
  const c = new OpenAI({ baseURL: gatewayBase, apiKey: 'sk-test', maxRetries: 0, timeout: 10000,
    httpAgent: agent });
  try {
    const stream = await c.chat.completions.create(
      { model: 'mock-model', messages, stream: true },
      { headers: { 'x-mock-fault': 'drop-after:2', 'x-mock-tokens': '10' } });
    let content = '';
    const consume = (async () => {
      for await (const chunk of stream) {
        for (const ch of chunk.choices) content += ch.delta?.content ?? '';
      }
    })();
    await assert.rejects(within(8000, consume, 'mid-stream failure'), (err) => {
      assert.ok(!/hang\)/.test(String(err.message)), String(err));
      assert.ok(err instanceof Error);
      return true;
    });
    assert.equal(content, 'w1 w2 ');
    // The same client (same keep-alive pool, no retries) must work right after: a stream that
    // ended with a complete chunked body leaves a reusable connection, or the gateway must
    // not have ended it as complete.
    const r = await c.chat.completions.create({ model: 'mock-model', messages },
      { headers: { 'x-mock-tokens': '1' } });
    assert.equal(r.choices[0].message.content, 'w1');
  } finally {
    agent.destroy();
  }
});

test('demo model, unary: deterministic with usage', { timeout: 15000 }, async () => {
  const req = { model: 'demo', messages: [{ role: 'user', content: 'What is a sluice?' }] };
  const a = await client.chat.completions.create(req);
  const b = await client.chat.completions.create(req);
  const text = a.choices[0].message.content;
  assert.ok(typeof text === 'string' && text.trim().length > 0);
  assert.equal(b.choices[0].message.content, text);
  assert.ok(a.usage.completion_tokens > 0);
  assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + a.usage.completion_tokens);
});

test('demo model, streaming: deterministic', { timeout: 15000 }, async () => {
  const run = async () => {
    const stream = await client.chat.completions.create({
      model: 'demo', stream: true, messages: [{ role: 'user', content: 'What is a sluice?' }],
    });
    let s = '';
    for await (const chunk of stream) for (const ch of chunk.choices) s += ch.delta?.content ?? '';
    return s;
  };
  const a = await run();
  const b = await run();
  assert.ok(a.trim().length > 0);
  assert.equal(a, b);
});
