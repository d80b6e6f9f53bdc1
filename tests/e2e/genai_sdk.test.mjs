// End-to-end: the official `@google/genai` SDK against Sluice's Gemini ingress
// (/v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse, :countTokens), routed
// to sluice-mock speaking the OpenAI format and the Anthropic format (translation) and, as a
// baseline, the Gemini format. The SDK is pointed at the gateway with httpOptions.baseUrl and
// apiVersion v1beta; its apiKey goes out as x-goog-api-key. What the mock answers is documented in
// docs/mock.md: text "w1 ... wN" (streamed "w1 ", "w2 ", ...), tool call i named tool_<i> with
// arguments {city: "Paris", n: i}.
//
// @google/genai 2.x is the newest line that supports node 20 (3.x requires node >= 22).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, mockTarget, within } from './helpers.mjs';

let genai;
let skipReason = null;
try {
  genai = await import('@google/genai');
} catch (e) {
  skipReason = `@google/genai is not installed or does not load here: ${e.message}`;
  console.log(`# SKIP genai_sdk.test.mjs: ${skipReason}`);
}

let stack;
let ai;

const UPSTREAMS = {
  openai: 'mock-model',
  anthropic: 'claude-up',
  gemini: 'gemini-up',
};

before(async () => {
  if (skipReason) return;
  stack = await startStack({
    routes: (m) => `\
  - model: mock-model
    targets: [${mockTarget(m, 'openai')}]
  - model: claude-up
    targets: [${mockTarget(m, 'anthropic', 'model: claude-mock')}]
  - model: gemini-up
    targets: [${mockTarget(m, 'gemini', 'model: gemini-mock')}]
`,
  });
  ai = new genai.GoogleGenAI({
    apiKey: 'sk-test',
    httpOptions: { baseUrl: stack.gwUrl, apiVersion: 'v1beta', timeout: 10000,
      retryOptions: { attempts: 1 } },
  });
});

after(async () => {
  if (stack) await stack.stop();
});

const contents = 'Hello from the genai SDK';
const tools = [{
  functionDeclarations: [1, 2].map((i) => ({
    name: `tool_${i}`,
    description: `tool number ${i}`,
    parameters: {
      type: 'OBJECT',
      properties: { city: { type: 'STRING' }, n: { type: 'INTEGER' } },
      required: ['city', 'n'],
    },
  })),
}];
const WANT_CALLS = [['tool_1', { city: 'Paris', n: 1 }], ['tool_2', { city: 'Paris', n: 2 }]];
const T = { timeout: 15000, skip: skipReason ?? false };
const headers = (h) => ({ httpOptions: { headers: h } });

for (const [upstream, model] of Object.entries(UPSTREAMS)) {
  describe(`genai SDK → ${upstream} upstream (${model})`, () => {
    test('models.generateContent: text', T, async () => {
      const r = await ai.models.generateContent({ model, contents,
        config: { systemInstruction: 'Be brief.', ...headers({ 'x-mock-tokens': '5' }) } });
      assert.equal(r.text, 'w1 w2 w3 w4 w5');
      assert.equal(r.candidates.length, 1);
      assert.equal(r.candidates[0].content.role, 'model');
      assert.equal(r.candidates[0].finishReason, 'STOP');
      const u = r.usageMetadata;
      assert.equal(u.candidatesTokenCount, 5);
      assert.ok(u.promptTokenCount > 0, JSON.stringify(u));
      assert.equal(u.totalTokenCount, u.promptTokenCount + 5);
      assert.equal(r.functionCalls, undefined);
    });

    test('models.generateContentStream: text accumulated', T, async () => {
      const stream = await ai.models.generateContentStream({ model, contents,
        config: headers({ 'x-mock-tokens': '4' }) });
      const chunks = [];
      await within(10000, (async () => { for await (const c of stream) chunks.push(c); })(),
        'generateContentStream');
      assert.equal(chunks.map((c) => c.text ?? '').join(''), 'w1 w2 w3 w4 ');
      const reasons = chunks.map((c) => c.candidates?.[0]?.finishReason).filter(Boolean);
      assert.deepEqual(reasons, ['STOP']);
      const u = chunks.at(-1).usageMetadata;
      assert.ok(u, 'the last chunk carries usageMetadata');
      assert.equal(u.candidatesTokenCount, 4);
      assert.equal(u.totalTokenCount, u.promptTokenCount + 4);
    });

    test('function calls: response.functionCalls has two entries with args', T, async () => {
      const r = await ai.models.generateContent({ model, contents,
        config: { tools, ...headers({ 'x-mock-tool-calls': '2' }) } });
      assert.ok(Array.isArray(r.functionCalls), JSON.stringify(r.candidates));
      assert.deepEqual(r.functionCalls.map((c) => [c.name, c.args]), WANT_CALLS);
      assert.equal(r.candidates[0].finishReason, 'STOP');
      assert.equal(r.text, undefined);
    });

    test('function calls, streamed: two calls with args across the chunks', T, async () => {
      const stream = await ai.models.generateContentStream({ model, contents,
        config: { tools, ...headers({ 'x-mock-tool-calls': '2' }) } });
      const calls = [];
      let stop = null;
      await within(10000, (async () => {
        for await (const c of stream) {
          for (const fc of c.functionCalls ?? []) calls.push([fc.name, fc.args]);
          stop = c.candidates?.[0]?.finishReason ?? stop;
        }
      })(), 'generateContentStream');
      assert.deepEqual(calls, WANT_CALLS);
      assert.equal(stop, 'STOP');
    });

    test('function call round trip: the call and its response reach the upstream', T,
      async () => {
        const first = await ai.models.generateContent({ model, contents,
          config: { tools, ...headers({ 'x-mock-tool-calls': '2' }) } });
        const calls = first.functionCalls;
        assert.equal(calls?.length, 2);
        const history = [
          { role: 'user', parts: [{ text: contents }] },
          first.candidates[0].content,
          { role: 'user', parts: calls.map((c, i) => ({ functionResponse: {
            ...(c.id ? { id: c.id } : {}), name: c.name,
            response: { result: `result ${i + 1}` } } })) },
        ];
        const r = await ai.models.generateContent({ model, contents: history,
          config: { tools, ...headers({ 'x-mock-echo-request': '1' }) } });
        const sent = JSON.parse(r.text);
        if (upstream === 'openai') {
          const m = sent.messages;
          assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'tool', 'tool']);
          const ids = m[1].tool_calls.map((c) => c.id);
          assert.deepEqual(m[1].tool_calls.map((c) => [c.function.name,
            JSON.parse(c.function.arguments)]), WANT_CALLS);
          assert.deepEqual(m.slice(2).map((x) => x.tool_call_id), ids);
          assert.match(JSON.stringify(m[2].content), /result 1/);
          assert.match(JSON.stringify(m[3].content), /result 2/);
        } else if (upstream === 'anthropic') {
          const m = sent.messages;
          assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'user']);
          const uses = m[1].content.filter((b) => b.type === 'tool_use');
          assert.deepEqual(uses.map((b) => [b.name, b.input]), WANT_CALLS);
          const results = m[2].content.filter((b) => b.type === 'tool_result');
          assert.deepEqual(results.map((b) => b.tool_use_id), uses.map((b) => b.id));
          assert.match(JSON.stringify(results[0].content), /result 1/);
          assert.match(JSON.stringify(results[1].content), /result 2/);
        } else {
          assert.deepEqual(sent.contents.map((c) => c.role), ['user', 'model', 'user']);
          assert.deepEqual(sent.contents[2].parts.map((p) => p.functionResponse.name),
            ['tool_1', 'tool_2']);
        }
      });

    test('models.countTokens: totalTokens > 0, and grows with the input', T, async () => {
      const short = await ai.models.countTokens({ model, contents: 'hi' });
      assert.ok(Number.isInteger(short.totalTokens) && short.totalTokens > 0,
        JSON.stringify(short));
      const long = await ai.models.countTokens({ model, contents: 'hello '.repeat(200) });
      assert.ok(long.totalTokens > short.totalTokens + 100, JSON.stringify([short, long]));
    });

    test('upstream 429 → ApiError 429', T, async () => {
      await assert.rejects(
        ai.models.generateContent({ model, contents,
          config: headers({ 'x-mock-status': '429', 'x-mock-retry-after': '0' }) }),
        (err) => {
          assert.ok(err instanceof genai.ApiError, `got ${err?.constructor?.name}: ${err}`);
          assert.equal(err.status, 429);
          assert.match(err.message, /RESOURCE_EXHAUSTED/);
          return true;
        });
    });
  });
}

test('unknown model → ApiError 404 NOT_FOUND', T, async () => {
  await assert.rejects(ai.models.generateContent({ model: 'no-such-model', contents }), (err) => {
    assert.ok(err instanceof genai.ApiError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 404);
    assert.match(err.message, /NOT_FOUND/);
    return true;
  });
});

describe('genai SDK → anthropic upstream: thinking', () => {
  const want = { text: 'Let me think about it.', thought: true, thoughtSignature: 'sig-mock-1' };
  const config = { thinkingConfig: { includeThoughts: true, thinkingBudget: 1024 },
    ...headers({ 'x-mock-thinking': '1', 'x-mock-tokens': '2' }) };

  test('generateContent: a thought part with its signature; text excludes it', T, async () => {
    const r = await ai.models.generateContent({ model: 'claude-up', contents, config });
    const parts = r.candidates[0].content.parts;
    assert.deepEqual(parts[0], want);
    assert.deepEqual(parts.slice(1), [{ text: 'w1 w2' }]);
    assert.equal(r.text, 'w1 w2');
  });

  test('generateContentStream: the thought and its signature arrive, text excludes it', T,
    async () => {
      const stream = await ai.models.generateContentStream({ model: 'claude-up', contents,
        config });
      const parts = [];
      let text = '';
      for await (const c of stream) {
        parts.push(...(c.candidates?.[0]?.content?.parts ?? []));
        text += c.text ?? '';
      }
      const thought = parts.filter((p) => p.thought);
      assert.equal(thought.map((p) => p.text).join(''), want.text);
      assert.deepEqual(parts.map((p) => p.thoughtSignature).filter(Boolean), ['sig-mock-1']);
      assert.equal(text, 'w1 w2 ');
    });
});
