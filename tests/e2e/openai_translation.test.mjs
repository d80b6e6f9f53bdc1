// End-to-end: the official `openai` Node SDK (v4) against Sluice's /v1/chat/completions, routed
// to sluice-mock speaking the Anthropic Messages and the Gemini formats (the gateway translates
// both ways). What the mock answers is documented in docs/mock.md: text "w1 ... wN" (streamed as
// "w1 ", "w2 ", ...), tool call i named tool_<i> with arguments {city: "Paris", n: i}.
//
// The streaming tool-call test uses the SDK's ChatCompletionStream helper; openai v4 exposes it
// as `beta.chat.completions.stream` (v5+ moved it to `chat.completions.stream`).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, mockTarget, within } from './helpers.mjs';

let stack;
let client;

// upstream format → the model routed to it; "-once" routes have no retries and no breaker.
const UPSTREAMS = {
  anthropic: { model: 'claude-up', once: 'claude-once' },
  gemini: { model: 'gemini-up', once: 'gemini-once' },
};

before(async () => {
  const once = 'retry: {max_attempts: 1}';
  const nobreaker = 'breaker: {enabled: false}';
  stack = await startStack({
    routes: (m) => `\
  - model: claude-up
    targets: [${mockTarget(m, 'anthropic', 'model: claude-mock')}]
  - model: gemini-up
    targets: [${mockTarget(m, 'gemini', 'model: gemini-mock')}]
  - model: claude-once
    ${once}
    targets: [${mockTarget(m, 'anthropic', `model: claude-mock, ${nobreaker}`)}]
  - model: gemini-once
    ${once}
    targets: [${mockTarget(m, 'gemini', `model: gemini-mock, ${nobreaker}`)}]
`,
  });
  client = new OpenAI({ baseURL: `${stack.gwUrl}/v1`, apiKey: 'sk-test', maxRetries: 0,
    timeout: 10000 });
});

after(async () => {
  if (stack) await stack.stop();
});

const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hello from the openai SDK' },
];
const tools = [1, 2].map((i) => ({
  type: 'function',
  function: {
    name: `tool_${i}`,
    description: `tool number ${i}`,
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, n: { type: 'integer' } },
      required: ['city', 'n'],
    },
  },
}));
const T = { timeout: 15000 };
const WANT_CALLS = [['tool_1', { city: 'Paris', n: 1 }], ['tool_2', { city: 'Paris', n: 2 }]];

function assertToolCalls(completion) {
  const choice = completion.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  const calls = choice.message.tool_calls;
  assert.ok(Array.isArray(calls), JSON.stringify(choice.message));
  assert.deepEqual(calls.map((c) => c.type), ['function', 'function']);
  assert.deepEqual(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
    WANT_CALLS);
  const ids = calls.map((c) => c.id);
  for (const id of ids) assert.ok(typeof id === 'string' && id.length > 0, `id ${id}`);
  assert.notEqual(ids[0], ids[1]);
  return ids;
}

for (const [upstream, { model, once }] of Object.entries(UPSTREAMS)) {
  describe(`openai SDK → ${upstream} upstream (${model})`, () => {
    test('chat.completions.create: text', T, async () => {
      const r = await client.chat.completions.create({ model, messages },
        { headers: { 'x-mock-tokens': '5' } });
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.model, model);
      assert.equal(r.choices.length, 1);
      assert.equal(r.choices[0].index, 0);
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.equal(r.choices[0].message.content, 'w1 w2 w3 w4 w5');
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.equal(r.usage.completion_tokens, 5);
      assert.ok(r.usage.prompt_tokens > 0, JSON.stringify(r.usage));
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 5);
    });

    test('stream with include_usage: text, one finish_reason, a usage chunk', T, async () => {
      const stream = await client.chat.completions.create(
        { model, messages, stream: true, stream_options: { include_usage: true } },
        { headers: { 'x-mock-tokens': '3' } });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
      const choices = chunks.flatMap((c) => c.choices);
      assert.equal(choices.map((c) => c.delta?.content ?? '').join(''), 'w1 w2 w3 ');
      assert.deepEqual(choices.map((c) => c.finish_reason).filter(Boolean), ['stop']);
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage, 'the last chunk carries usage');
      assert.equal(last.usage.completion_tokens, 3);
      assert.ok(last.usage.prompt_tokens > 0, JSON.stringify(last.usage));
      assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + 3);
      // usage only on the final chunk
      assert.deepEqual(chunks.slice(0, -1).filter((c) => c.usage), []);
    });

    test('stream helper: content.delta events and finalChatCompletion()', T, async () => {
      const stream = client.beta.chat.completions.stream({ model, messages },
        { headers: { 'x-mock-tokens': '3' } });
      const deltas = [];
      stream.on('content.delta', ({ delta }) => deltas.push(delta));
      const done = await within(10000, stream.finalChatCompletion(), 'finalChatCompletion');
      assert.deepEqual(deltas, ['w1 ', 'w2 ', 'w3 ']);
      assert.equal(done.choices[0].message.content, 'w1 w2 w3 ');
      assert.equal(done.choices[0].finish_reason, 'stop');
    });

    test('finish_reason length, streamed, with usage', T, async () => {
      const done = await client.beta.chat.completions.stream(
        { model, messages, stream_options: { include_usage: true } },
        { headers: { 'x-mock-stop': 'max_tokens', 'x-mock-tokens': '1' } }).finalChatCompletion();
      assert.equal(done.choices[0].finish_reason, 'length');
      assert.equal(done.usage.completion_tokens, 1);
    });

    test('tools, unary: two tool calls with JSON arguments', T, async () => {
      const r = await client.chat.completions.create({ model, messages, tools },
        { headers: { 'x-mock-tool-calls': '2' } });
      assertToolCalls(r);
      assert.equal(r.choices[0].message.content, null);
    });

    test('tools, streamed: stream helper finalChatCompletion() has two parsed calls', T,
      async () => {
        const stream = client.beta.chat.completions.stream({ model, messages, tools },
          { headers: { 'x-mock-tool-calls': '2' } });
        const argsDone = [];
        stream.on('tool_calls.function.arguments.done', (e) => {
          argsDone.push([e.index, e.name, JSON.parse(e.arguments)]);
        });
        const done = await within(10000, stream.finalChatCompletion(), 'finalChatCompletion');
        assertToolCalls(done);
        assert.deepEqual(argsDone, WANT_CALLS.map(([n, a], i) => [i, n, a]));
      });

    test('tools, round trip: the call ids and results reach the upstream', T, async () => {
      const first = await client.chat.completions.create({ model, messages, tools },
        { headers: { 'x-mock-tool-calls': '2' } });
      const ids = assertToolCalls(first);
      const second = await client.chat.completions.create({
        model, tools,
        messages: [...messages, first.choices[0].message,
          ...ids.map((id, i) => ({ role: 'tool', tool_call_id: id, content: `result ${i + 1}` }))],
      }, { headers: { 'x-mock-echo-request': '1' } });
      const sent = JSON.parse(second.choices[0].message.content);
      if (upstream === 'anthropic') {
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
      } else {
        const c = sent.contents;
        assert.deepEqual(c.map((x) => x.role), ['user', 'model', 'user']);
        assert.deepEqual(c[1].parts.map((p) => [p.functionCall.name, p.functionCall.args]),
          WANT_CALLS);
        assert.deepEqual(c[2].parts.map((p) => p.functionResponse.name), ['tool_1', 'tool_2']);
        const texts = c[2].parts.map((p) => JSON.stringify(p.functionResponse.response));
        assert.ok(texts[0].includes('result 1') && texts[1].includes('result 2'), texts.join());
        assert.deepEqual(sent.tools.flatMap((t) => t.functionDeclarations.map((f) => f.name)),
          ['tool_1', 'tool_2']);
      }
    });

    test('upstream 400 → BadRequestError 400', T, async () => {
      await assert.rejects(
        client.chat.completions.create({ model: once, messages },
          { headers: { 'x-mock-status': '400' } }),
        (err) => {
          assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
          assert.equal(err.status, 400);
          assert.match(err.message, /mock error 400/); // the upstream's message is relayed
          return true;
        });
    });

    // A translated upstream 4xx reaches OpenAI clients with OpenAI's type for its status
    // (kErrorTypes in src/canonical/tables.h), as the Anthropic and Gemini ingresses do.
    test('upstream 400 / 429 → OpenAI error types invalid_request_error / rate_limit_error', {
      ...T,
    }, async () => {
      for (const [status, type] of [['400', 'invalid_request_error'],
        ['429', 'rate_limit_error']]) {
        const err = await client.chat.completions.create({ model: once, messages },
          { headers: { 'x-mock-status': status } }).then(() => null, (e) => e);
        assert.ok(err instanceof OpenAI.APIError, `got ${err}`);
        assert.equal(err.status, Number(status));
        assert.equal(err.type, type, JSON.stringify(err.error));
      }
    });

    test('upstream 429 → RateLimitError 429', T, async () => {
      await assert.rejects(
        client.chat.completions.create({ model: once, messages },
          { headers: { 'x-mock-status': '429', 'x-mock-retry-after': '3' } }),
        (err) => {
          assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err}`);
          assert.equal(err.status, 429);
          assert.equal(err.headers['retry-after'], '3');
          return true;
        });
    });

    test('upstream error mid-stream → the SDK iterator throws an APIError', T, async () => {
      const stream = await client.chat.completions.create({ model: once, messages, stream: true },
        { headers: { 'x-mock-error-after': '2', 'x-mock-tokens': '6' } });
      let content = '';
      const consume = (async () => {
        for await (const chunk of stream) {
          for (const ch of chunk.choices) content += ch.delta?.content ?? '';
        }
      })();
      await assert.rejects(within(10000, consume, 'mid-stream error'), (err) => {
        assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err}`);
        return true;
      });
      // Gemini streams one chunk per part, and the mock puts the error before the last one.
      assert.equal(content, 'w1 w2 ');
    });
  });
}
