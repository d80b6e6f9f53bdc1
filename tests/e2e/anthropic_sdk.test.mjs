// End-to-end: the official `@anthropic-ai/sdk` against Sluice's Anthropic Messages ingress
// (/v1/messages, /v1/messages/count_tokens), routed to sluice-mock speaking the OpenAI and the
// Gemini formats (translation) and the Anthropic format. What the mock answers is documented in docs/mock.md:
// text "w1 ... wN", tool call i named tool_<i> with input {city: "Paris", n: i}, thinking text
// "Let me think about it." with signature "sig-mock-1".

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, mockTarget, within } from './helpers.mjs';

let stack;
let client;

// upstream format → the model routed to it; "-once" routes have no retries (max_attempts 1) and
// no breaker, for the error tests.
const UPSTREAMS = {
  // streamError: the Anthropic error type the client sees when the upstream stream fails
  // (the mock sends OpenAI's server_error / Anthropic's overloaded_error).
  openai: { model: 'mock-model', once: 'oa-once', streamError: 'api_error' },
  anthropic: { model: 'claude-up', once: 'claude-once', streamError: 'overloaded_error' },
  // not in the brief's minimum, but free coverage: Gemini's UNAVAILABLE stream error
  gemini: { model: 'gemini-up', once: 'gemini-once', streamError: 'overloaded_error' },
};

before(async () => {
  const once = 'retry: {max_attempts: 1}';
  const nobreaker = 'breaker: {enabled: false}';
  stack = await startStack({
    routes: (m) => `\
  - model: mock-model
    targets: [${mockTarget(m, 'openai')}]
  - model: claude-up
    targets: [${mockTarget(m, 'anthropic', 'model: claude-mock')}]
  - model: oa-once
    ${once}
    targets: [${mockTarget(m, 'openai', `model: mock-model, ${nobreaker}`)}]
  - model: claude-once
    ${once}
    targets: [${mockTarget(m, 'anthropic', `model: claude-mock, ${nobreaker}`)}]
  - model: gemini-up
    targets: [${mockTarget(m, 'gemini', 'model: gemini-mock')}]
  - model: gemini-once
    ${once}
    targets: [${mockTarget(m, 'gemini', `model: gemini-mock, ${nobreaker}`)}]
`,
  });
  client = new Anthropic({ baseURL: stack.gwUrl, apiKey: 'sk-test', maxRetries: 0,
    timeout: 10000 });
});

after(async () => {
  if (stack) await stack.stop();
});

const messages = [{ role: 'user', content: 'Hello from the Anthropic SDK' }];
const tools = [1, 2].map((i) => ({
  name: `tool_${i}`,
  description: `tool number ${i}`,
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, n: { type: 'integer' } },
    required: ['city', 'n'],
  },
}));
const T = { timeout: 15000 };

function assertToolUses(msg) {
  assert.equal(msg.stop_reason, 'tool_use');
  assert.deepEqual(msg.content.map((b) => b.type), ['tool_use', 'tool_use']);
  assert.deepEqual(msg.content.map((b) => [b.name, b.input]),
    [['tool_1', { city: 'Paris', n: 1 }], ['tool_2', { city: 'Paris', n: 2 }]]);
  const ids = msg.content.map((b) => b.id);
  for (const id of ids) assert.ok(typeof id === 'string' && id.length > 0, `id ${id}`);
  assert.notEqual(ids[0], ids[1]);
}

for (const [upstream, { model, once, streamError }] of Object.entries(UPSTREAMS)) {
  describe(`anthropic SDK → ${upstream} upstream (${model})`, () => {
    test('messages.create: text', T, async () => {
      const msg = await client.messages.create({ model, max_tokens: 100, messages },
        { headers: { 'x-mock-tokens': '5' } });
      assert.equal(msg.type, 'message');
      assert.equal(msg.role, 'assistant');
      assert.deepEqual(msg.content, [{ type: 'text', text: 'w1 w2 w3 w4 w5' }]);
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.stop_sequence, null);
      assert.equal(msg.usage.output_tokens, 5);
      assert.ok(msg.usage.input_tokens > 0, `input_tokens ${msg.usage.input_tokens}`);
      assert.ok(typeof msg.id === 'string' && msg.id.length > 0);
      assert.equal(msg.model, model); // the model the client asked for, not the upstream alias
    });

    test('messages.stream: on("text") and finalMessage()', T, async () => {
      const stream = client.messages.stream({ model, max_tokens: 100, messages },
        { headers: { 'x-mock-tokens': '4' } });
      let text = '';
      const deltas = [];
      stream.on('text', (delta) => { text += delta; deltas.push(delta); });
      const msg = await within(10000, stream.finalMessage(), 'finalMessage');
      assert.deepEqual(deltas, ['w1 ', 'w2 ', 'w3 ', 'w4 ']);
      assert.equal(text, 'w1 w2 w3 w4 ');
      assert.deepEqual(msg.content.map((b) => [b.type, b.text]), [['text', 'w1 w2 w3 w4 ']]);
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.usage.output_tokens, 4);
      assert.ok(msg.usage.input_tokens > 0, `input_tokens ${msg.usage.input_tokens}`);
    });

    test('messages.create stream: true: the raw event sequence', T, async () => {
      const stream = await client.messages.create(
        { model, max_tokens: 100, messages, stream: true }, { headers: { 'x-mock-tokens': '2' } });
      const types = [];
      let text = '';
      let stop = null;
      for await (const ev of stream) {
        if (ev.type !== 'ping') types.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') {
          text += ev.delta.text;
        }
        if (ev.type === 'message_delta') stop = ev.delta.stop_reason;
      }
      assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta',
        'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
      assert.equal(text, 'w1 w2 ');
      assert.equal(stop, 'end_turn');
    });

    test('tools, unary: two tool_use blocks', T, async () => {
      const msg = await client.messages.create({ model, max_tokens: 100, messages, tools },
        { headers: { 'x-mock-tool-calls': '2' } });
      assertToolUses(msg);
    });

    test('tools, streamed: finalMessage() has two tool_use blocks with parsed input', T,
      async () => {
        const stream = client.messages.stream({ model, max_tokens: 100, messages, tools },
          { headers: { 'x-mock-tool-calls': '2' } });
        const blocks = [];
        stream.on('contentBlock', (b) => blocks.push(b.type));
        const msg = await within(10000, stream.finalMessage(), 'finalMessage');
        assertToolUses(msg);
        assert.deepEqual(blocks, ['tool_use', 'tool_use']);
      });

    test('tools, round trip: the tool_use ids and results reach the upstream', T, async () => {
      const first = await client.messages.create({ model, max_tokens: 100, messages, tools },
        { headers: { 'x-mock-tool-calls': '2' } });
      assertToolUses(first);
      const ids = first.content.map((b) => b.id);
      const second = await client.messages.create({
        model, max_tokens: 100, tools,
        messages: [...messages, { role: 'assistant', content: first.content },
          { role: 'user', content: ids.map((id, i) => ({
            type: 'tool_result', tool_use_id: id, content: `result ${i + 1}` })) }],
      }, { headers: { 'x-mock-echo-request': '1' } });
      assert.equal(second.content[0].type, 'text');
      const sent = JSON.parse(second.content[0].text);
      if (upstream === 'openai') {
        const m = sent.messages;
        assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'tool', 'tool']);
        assert.deepEqual(m[1].tool_calls.map((c) => [c.id, c.type, c.function.name,
          JSON.parse(c.function.arguments)]),
        [[ids[0], 'function', 'tool_1', { city: 'Paris', n: 1 }],
          [ids[1], 'function', 'tool_2', { city: 'Paris', n: 2 }]]);
        assert.deepEqual(m.slice(2).map((x) => [x.tool_call_id, x.content]),
          [[ids[0], 'result 1'], [ids[1], 'result 2']]);
        assert.deepEqual(sent.tools.map((t) => [t.type, t.function.name]),
          [['function', 'tool_1'], ['function', 'tool_2']]);
      } else if (upstream === 'gemini') {
        const c = sent.contents;
        assert.deepEqual(c.map((x) => x.role), ['user', 'model', 'user']);
        assert.deepEqual(c[1].parts.map((p) => [p.functionCall.name, p.functionCall.args]),
          [['tool_1', { city: 'Paris', n: 1 }], ['tool_2', { city: 'Paris', n: 2 }]]);
        assert.deepEqual(c[2].parts.map((p) => p.functionResponse.name), ['tool_1', 'tool_2']);
        const texts = c[2].parts.map((p) => JSON.stringify(p.functionResponse.response));
        assert.ok(texts[0].includes('result 1') && texts[1].includes('result 2'), texts.join());
        assert.deepEqual(sent.tools.flatMap((t) => t.functionDeclarations.map((f) => f.name)),
          ['tool_1', 'tool_2']);
      } else {
        const m = sent.messages;
        assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'user']);
        assert.deepEqual(m[1].content.map((b) => [b.type, b.id, b.name, b.input]),
          [['tool_use', ids[0], 'tool_1', { city: 'Paris', n: 1 }],
            ['tool_use', ids[1], 'tool_2', { city: 'Paris', n: 2 }]]);
        const results = m[2].content.map((b) => [b.type, b.tool_use_id,
          typeof b.content === 'string' ? b.content : b.content.map((c) => c.text).join('')]);
        assert.deepEqual(results, [['tool_result', ids[0], 'result 1'],
          ['tool_result', ids[1], 'result 2']]);
        assert.deepEqual(sent.tools.map((t) => t.name), ['tool_1', 'tool_2']);
      }
    });

    test('stop reasons: max_tokens and refusal, streamed', T, async () => {
      for (const stop of ['max_tokens', 'refusal']) {
        const msg = await client.messages.stream({ model, max_tokens: 100, messages },
          { headers: { 'x-mock-stop': stop, 'x-mock-tokens': '1' } }).finalMessage();
        assert.equal(msg.stop_reason, stop);
        assert.equal(msg.usage.output_tokens, 1);
      }
    });

    test('unknown model → NotFoundError 404', T, async () => {
      await assert.rejects(
        client.messages.create({ model: 'no-such-model', max_tokens: 10, messages }),
        (err) => {
          assert.ok(err instanceof Anthropic.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
          assert.equal(err.status, 404);
          assert.equal(err.error?.type, 'error');
          assert.equal(err.error?.error?.type, 'not_found_error');
          return true;
        });
    });

    test('upstream 429 → RateLimitError 429', T, async () => {
      await assert.rejects(
        client.messages.create({ model: once, max_tokens: 10, messages },
          { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '3' } }),
        (err) => {
          assert.ok(err instanceof Anthropic.RateLimitError,
            `got ${err?.constructor?.name}: ${err}`);
          assert.equal(err.status, 429);
          assert.equal(err.error?.error?.type, 'rate_limit_error');
          assert.equal(err.headers.get('retry-after'), '3'); // the SDK's backoff reads it
          return true;
        });
    });

    test('upstream 429 on a streamed request → RateLimitError 429', T, async () => {
      const stream = client.messages.stream({ model: once, max_tokens: 10, messages },
        { headers: { 'x-mock-status': '429' } });
      await assert.rejects(within(10000, stream.finalMessage(), 'finalMessage'), (err) => {
        assert.ok(err instanceof Anthropic.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, 429);
        return true;
      });
    });

    test('upstream error mid-stream → the SDK stream rejects with an APIError', T, async () => {
      const stream = client.messages.stream({ model: once, max_tokens: 100, messages },
        { headers: { 'x-mock-error-after': '2', 'x-mock-tokens': '6' } });
      let text = '';
      stream.on('text', (d) => { text += d; });
      await assert.rejects(within(10000, stream.finalMessage(), 'finalMessage'), (err) => {
        assert.ok(err instanceof Anthropic.APIError, `got ${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, undefined); // an error event in a 200 stream, not a status
        assert.equal(err.error?.type, 'error');
        assert.equal(err.error?.error?.type, streamError, JSON.stringify(err.error));
        return true;
      });
      assert.equal(text, 'w1 w2 ');
    });

    test('messages.countTokens: input_tokens > 0, and grows with the input', T, async () => {
      const short = await client.messages.countTokens({ model, messages });
      assert.ok(Number.isInteger(short.input_tokens) && short.input_tokens > 0,
        JSON.stringify(short));
      const long = await client.messages.countTokens({
        model, system: 'Be brief.',
        messages: [{ role: 'user', content: 'hello '.repeat(200) }],
      });
      assert.ok(long.input_tokens > short.input_tokens + 100, JSON.stringify([short, long]));
    });
  });
}

describe('anthropic SDK → anthropic upstream: thinking', () => {
  const want = { type: 'thinking', thinking: 'Let me think about it.', signature: 'sig-mock-1' };

  test('messages.create: a thinking block with its signature, then the text', T, async () => {
    const msg = await client.messages.create({ model: 'claude-up', max_tokens: 2000, messages,
      thinking: { type: 'enabled', budget_tokens: 1024 } },
    { headers: { 'x-mock-thinking': '1', 'x-mock-tokens': '2' } });
    assert.deepEqual(msg.content[0], want);
    assert.deepEqual(msg.content.slice(1).map((b) => [b.type, b.text]), [['text', 'w1 w2']]);
    assert.equal(msg.usage.output_tokens, 7);
  });

  test('messages.stream: finalMessage() has the thinking block with its signature', T,
    async () => {
      const stream = client.messages.stream({ model: 'claude-up', max_tokens: 2000, messages,
        thinking: { type: 'enabled', budget_tokens: 1024 } },
      { headers: { 'x-mock-thinking': '1', 'x-mock-tokens': '2' } });
      let thinking = '';
      const signatures = [];
      stream.on('thinking', (d) => { thinking += d; });
      stream.on('signature', (s) => signatures.push(s));
      const msg = await within(10000, stream.finalMessage(), 'finalMessage');
      assert.equal(thinking, 'Let me think about it.');
      assert.deepEqual(signatures, ['sig-mock-1']);
      assert.deepEqual(msg.content[0], want);
      assert.deepEqual(msg.content.slice(1).map((b) => [b.type, b.text]), [['text', 'w1 w2 ']]);
      assert.equal(msg.usage.output_tokens, 7);
    });
});
