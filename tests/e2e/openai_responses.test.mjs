// End-to-end: the official `openai` Node SDK v6 (installed as the `openai6` alias; the other
// tests use v4) against Sluice's Responses API (/v1/responses) and Conversations API
// (/v1/conversations), routed to sluice-mock in the OpenAI, Anthropic and Gemini formats and to
// the built-in demo model. State is the default in-memory store.
//
// What the mock answers is in docs/mock.md: text "w1 ... wN" (streamed as "w1 ", "w2 ", ...),
// tool call i named tool_<i> with arguments {city: "Paris", n: i} (OpenAI call ids call_<i>),
// and with `x-mock-echo-request: 1` the answer text is the exact upstream request body, which
// is how these tests see what the gateway replayed to the upstream.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai6';
import { startStack, mockTarget, within } from './helpers.mjs';

let stack;
let client;

// upstream format → the model routed to it
const UPSTREAMS = { openai: 'mock-model', anthropic: 'claude-up', gemini: 'gemini-up' };
const DEMO_PREFIX = "Hello from Sluice's built-in demo model, answering offline. ";
const T = { timeout: 20000 };
const ECHO = { headers: { 'x-mock-echo-request': '1' } };
const tokens = (n) => ({ headers: { 'x-mock-tokens': String(n) } });

before(async () => {
  stack = await startStack({
    routes: (m) => `\
  - model: mock-model
    targets: [${mockTarget(m, 'openai')}]
  - model: claude-up
    targets: [${mockTarget(m, 'anthropic', 'model: claude-mock')}]
  - model: gemini-up
    targets: [${mockTarget(m, 'gemini', 'model: gemini-mock')}]
  - model: demo
    targets: [{provider: demo}]
`,
  });
  client = new OpenAI({ baseURL: `${stack.gwUrl}/v1`, apiKey: 'sk-test', maxRetries: 0,
    timeout: 10000 });
});

after(async () => {
  if (stack) await stack.stop();
});

const TOOL = {
  type: 'function',
  name: 'tool_1',
  description: 'The weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, n: { type: 'integer' } },
    required: ['city', 'n'],
  },
  strict: false,
};

/** The text of a message content (string or parts). */
function textOf(content) {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => p.text ?? '').join('');
}

/** The OpenAI chat body the mock received, from an echoed answer. */
function sentBody(response) {
  try {
    return JSON.parse(response.output_text);
  } catch {
    assert.fail(`not an echoed request body: ${response.output_text.slice(0, 300)}`);
  }
}

/** [role, text] of each upstream chat message. */
function sentTurns(response) {
  return sentBody(response).messages.map((m) => [m.role, textOf(m.content)]);
}

function assertResponse(r, { model, status = 'completed' } = {}) {
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_[A-Za-z0-9_-]+$/);
  assert.equal(r.status, status);
  if (model) assert.equal(r.model, model);
  assert.equal(typeof r.created_at, 'number');
  assert.ok(Math.abs(r.created_at - Date.now() / 1000) < 600, `created_at ${r.created_at}`);
  assert.equal(r.error, null);
  const u = r.usage;
  assert.ok(u, 'usage');
  assert.equal(u.total_tokens, u.input_tokens + u.output_tokens, JSON.stringify(u));
  assert.equal(typeof u.input_tokens_details.cached_tokens, 'number');
  assert.equal(typeof u.output_tokens_details.reasoning_tokens, 'number');
  for (const item of r.output) {
    if (item.type === 'message') {
      assert.match(item.id, /^msg_/);
      assert.equal(item.role, 'assistant');
      assert.equal(item.status, 'completed');
      for (const part of item.content) {
        assert.equal(part.type, 'output_text');
        assert.deepEqual(part.annotations, []);
      }
    } else {
      assert.equal(item.type, 'function_call', JSON.stringify(item));
      assert.match(item.id, /^fc_/);
      assert.equal(item.status, 'completed');
    }
  }
}

async function rejectsNotFound(promise, check = () => {}) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 404);
    check(err);
    return true;
  });
}

function assertPreviousNotFound(err) {
  assert.equal(err.code, 'previous_response_not_found');
  assert.equal(err.param, 'previous_response_id');
  assert.equal(err.type, 'invalid_request_error');
}

for (const [format, model] of Object.entries(UPSTREAMS)) {
  describe(`responses through the ${format} upstream (${model})`, () => {
    test('responses.create: unary text and output_text', T, async () => {
      const r = await client.responses.create({ model, input: 'Hello from the SDK' }, tokens(3));
      assertResponse(r, { model });
      assert.equal(r.output_text, 'w1 w2 w3');
      assert.equal(r.output.length, 1);
      assert.equal(r.output[0].type, 'message');
      assert.equal(r.usage.output_tokens, 3);
      assert.ok(r.usage.input_tokens > 0, JSON.stringify(r.usage));
      assert.equal(r.store, true);
      assert.equal(r.previous_response_id, null);
    });

    test('responses.stream: delta events and finalResponse()', T, async () => {
      const stream = client.responses.stream({ model, input: 'Stream please' }, tokens(3));
      const deltas = [];
      const seqs = [];
      const types = [];
      stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
      stream.on('event', (e) => { seqs.push(e.sequence_number); types.push(e.type); });
      const final = await within(10000, stream.finalResponse(), 'finalResponse');
      assert.deepEqual(deltas, ['w1 ', 'w2 ', 'w3 ']);
      assert.deepEqual(seqs, [...seqs.keys()]);
      assert.equal(types[0], 'response.created');
      assert.equal(types.at(-1), 'response.completed');
      assertResponse(final, { model });
      assert.equal(final.output_text, 'w1 w2 w3 ');
      assert.equal(final.usage.output_tokens, 3);
      // stored before response.completed was sent: retrievable at once
      const got = await client.responses.retrieve(final.id);
      assert.equal(got.id, final.id);
      assert.equal(got.output_text, 'w1 w2 w3 ');
      assert.deepEqual(got.output, final.output.map((item) => {
        // finalResponse() adds parsed fields the wire object does not have
        if (item.type !== 'message') {
          const { parsed_arguments: _, ...rest } = item;
          return rest;
        }
        return { ...item, content: item.content.map(({ parsed: _, ...c }) => c) };
      }));
    });

    test('previous_response_id: the gateway replays the earlier turn', T, async () => {
      const r1 = await client.responses.create({ model, input: 'first question' }, tokens(3));
      const r2 = await client.responses.create(
        { model, input: 'second question', previous_response_id: r1.id },
        { headers: { 'x-mock-echo-request': '1' } });
      assertResponse(r2, { model });
      assert.equal(r2.previous_response_id, r1.id);
      const sent = sentBody(r2);
      // whatever the upstream format, the earlier user and assistant texts are in its body,
      // before the new input
      const text = JSON.stringify(sent);
      const a = text.indexOf('first question');
      const b = text.indexOf('w1 w2 w3');
      const c = text.indexOf('second question');
      assert.ok(a >= 0 && b > a && c > b, text);
    });
  });
}

test('responses.create on the demo model', T, async () => {
  const r = await client.responses.create({ model: 'demo', input: 'Hello from the SDK' });
  assertResponse(r, { model: 'demo' });
  assert.ok(r.output_text.startsWith(`${DEMO_PREFIX}You said: "Hello from the SDK".`),
    r.output_text);
});

test('responses.create({stream: true}): the events in order, one response id', T, async () => {
  const stream = await client.responses.create(
    { model: 'mock-model', input: 'Stream please', stream: true }, tokens(2));
  const events = [];
  await within(10000, (async () => { for await (const e of stream) events.push(e); })(),
    'stream iteration');
  assert.deepEqual(events.map((e) => e.type), [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.delta',
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ]);
  assert.deepEqual(events.map((e) => e.sequence_number), [...events.keys()]);
  const ids = new Set(events.filter((e) => e.response).map((e) => e.response.id));
  assert.equal(ids.size, 1);
  const [id] = ids;
  assert.match(id, /^resp_/);
  const itemId = events[2].item.id;
  for (const e of events.slice(3, 9)) assert.equal(e.item_id ?? e.item.id, itemId);
  assert.equal(events[6].text, 'w1 w2 ');
  const done = events.at(-1).response;
  assert.equal(done.status, 'completed');
  assert.equal(done.output[0].content[0].text, 'w1 w2 ');
  const got = await client.responses.retrieve(id);
  assert.equal(got.status, 'completed');
  assert.deepEqual(got.output, done.output);
});

test('previous_response_id: the OpenAI upstream gets the turns as chat messages', T, async () => {
  const r1 = await client.responses.create(
    { model: 'mock-model', instructions: 'Be brief.', input: 'first' }, tokens(2));
  const r2 = await client.responses.create(
    { model: 'mock-model', input: 'second', previous_response_id: r1.id }, ECHO);
  const turns = sentTurns(r2).filter(([role]) => role !== 'system' && role !== 'developer');
  assert.deepEqual(turns, [['user', 'first'], ['assistant', 'w1 w2'], ['user', 'second']]);
  const r3 = await client.responses.create(
    { model: 'mock-model', input: 'third', previous_response_id: r2.id }, ECHO);
  const turns3 = sentTurns(r3).filter(([role]) => role !== 'system' && role !== 'developer');
  assert.deepEqual(turns3, [['user', 'first'], ['assistant', 'w1 w2'], ['user', 'second'],
    ['assistant', r2.output_text], ['user', 'third']]);
});

test('tools: a function_call, then its output sent back with previous_response_id', T,
  async () => {
    const r1 = await client.responses.create(
      { model: 'mock-model', input: 'Weather in Paris?', tools: [TOOL] },
      { headers: { 'x-mock-tool-calls': '1' } });
    assertResponse(r1, { model: 'mock-model' });
    assert.equal(r1.output.length, 1);
    const call = r1.output[0];
    assert.equal(call.type, 'function_call');
    assert.equal(call.name, 'tool_1');
    assert.equal(call.call_id, 'call_1');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris', n: 1 });
    assert.equal(r1.output_text, '');

    const r2 = await client.responses.create({
      model: 'mock-model',
      previous_response_id: r1.id,
      tools: [TOOL],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21 C' }],
    }, ECHO);
    const msgs = sentBody(r2).messages;
    assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'tool']);
    assert.equal(textOf(msgs[0].content), 'Weather in Paris?');
    assert.deepEqual(msgs[1].tool_calls.map((c) => [c.id, c.function.name,
      JSON.parse(c.function.arguments)]), [['call_1', 'tool_1', { city: 'Paris', n: 1 }]]);
    assert.equal(msgs[2].tool_call_id, 'call_1');
    assert.equal(textOf(msgs[2].content), 'sunny, 21 C');
  });

test('tools, streamed: function_call_arguments events and finalResponse()', T, async () => {
  const stream = client.responses.stream(
    { model: 'claude-up', input: 'Weather?', tools: [TOOL, { ...TOOL, name: 'tool_2' }] },
    { headers: { 'x-mock-tool-calls': '2' } });
  const argsDone = [];
  stream.on('response.function_call_arguments.done', (e) => argsDone.push(JSON.parse(e.arguments)));
  const final = await within(10000, stream.finalResponse(), 'finalResponse');
  assert.deepEqual(argsDone, [{ city: 'Paris', n: 1 }, { city: 'Paris', n: 2 }]);
  assert.deepEqual(final.output.map((o) => [o.type, o.name, JSON.parse(o.arguments)]), [
    ['function_call', 'tool_1', { city: 'Paris', n: 1 }],
    ['function_call', 'tool_2', { city: 'Paris', n: 2 }],
  ]);
  assert.notEqual(final.output[0].call_id, final.output[1].call_id);
});

test('responses.retrieve and responses.delete', T, async () => {
  const r = await client.responses.create({ model: 'mock-model', input: 'keep me' }, tokens(1));
  const got = await client.responses.retrieve(r.id);
  assert.deepEqual(got, r);
  const del = await client.responses.delete(r.id);
  assert.deepEqual(del, { id: r.id, object: 'response.deleted', deleted: true });
  await rejectsNotFound(client.responses.retrieve(r.id));
  await rejectsNotFound(client.responses.delete(r.id));
  await rejectsNotFound(client.responses.create(
    { model: 'mock-model', input: 'x', previous_response_id: r.id }), assertPreviousNotFound);
});

test('store: false is not retrievable', T, async () => {
  const r = await client.responses.create(
    { model: 'mock-model', input: 'forget me', store: false }, tokens(1));
  assert.equal(r.store, false);
  assert.equal(r.output_text, 'w1');
  await rejectsNotFound(client.responses.retrieve(r.id));
});

test('unknown previous_response_id → NotFoundError, code previous_response_not_found', T,
  async () => {
    const body = { model: 'mock-model', input: 'x', previous_response_id: 'resp_doesnotexist' };
    await rejectsNotFound(client.responses.create(body), assertPreviousNotFound);
    await rejectsNotFound(client.responses.create({ ...body, stream: true }),
      assertPreviousNotFound);
    await rejectsNotFound(within(10000, client.responses.stream(body).finalResponse(),
      'finalResponse'), assertPreviousNotFound);
  });

test('responses.inputItems.list: pages, order, auto-pagination', T, async () => {
  const texts = ['a', 'b', 'c', 'd', 'e'];
  const r = await client.responses.create({
    model: 'mock-model',
    input: texts.map((t) => ({ role: 'user', content: t })),
  }, tokens(1));
  const first = await client.responses.inputItems.list(r.id, { limit: 2, order: 'asc' });
  assert.deepEqual(first.data.map((i) => textOf(i.content)), ['a', 'b']);
  assert.equal(first.has_more, true);
  // CursorPage keeps data and has_more; the rest of the list object is in .body
  assert.equal(first.body.object, 'list');
  assert.equal(first.body.first_id, first.data[0].id);
  assert.equal(first.body.last_id, first.data[1].id);
  for (const item of first.data) {
    assert.equal(item.type, 'message');
    assert.equal(item.role, 'user');
    assert.deepEqual(item.content, [{ type: 'input_text', text: textOf(item.content) }]);
  }
  const all = [];
  for await (const item of client.responses.inputItems.list(r.id, { limit: 2, order: 'asc' })) {
    all.push(item);
  }
  assert.deepEqual(all.map((i) => textOf(i.content)), texts);
  assert.equal(new Set(all.map((i) => i.id)).size, 5);
  const desc = await client.responses.inputItems.list(r.id);
  assert.deepEqual(desc.data.map((i) => i.id), all.map((i) => i.id).reverse());
  assert.equal(desc.has_more, false);
});

test('conversations: create, retrieve, update, delete', T, async () => {
  const c = await client.conversations.create({
    metadata: { topic: 'e2e' },
    items: [{ type: 'message', role: 'user', content: 'hello' }],
  });
  assert.match(c.id, /^conv_[A-Za-z0-9_-]+$/);
  assert.equal(c.object, 'conversation');
  assert.equal(typeof c.created_at, 'number');
  assert.deepEqual(c.metadata, { topic: 'e2e' });
  assert.deepEqual(await client.conversations.retrieve(c.id), c);
  const updated = await client.conversations.update(c.id, { metadata: { topic: 'changed' } });
  assert.deepEqual(updated, { ...c, metadata: { topic: 'changed' } });
  assert.deepEqual((await client.conversations.retrieve(c.id)).metadata, { topic: 'changed' });
  const del = await client.conversations.delete(c.id);
  assert.deepEqual(del, { id: c.id, object: 'conversation.deleted', deleted: true });
  await rejectsNotFound(client.conversations.retrieve(c.id));
  await rejectsNotFound(client.conversations.items.list(c.id));
  await rejectsNotFound(client.responses.create(
    { model: 'mock-model', input: 'x', conversation: c.id }));
});

test('conversations.items: create, list (paged), retrieve, delete', T, async () => {
  const c = await client.conversations.create({
    items: [{ type: 'message', role: 'user', content: 'one' }],
  });
  const added = await client.conversations.items.create(c.id, {
    items: [
      { type: 'message', role: 'assistant', content: 'two' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'three' }] },
      { type: 'message', role: 'user', content: 'four' },
    ],
  });
  assert.equal(added.object, 'list');
  assert.equal(added.has_more, false);
  assert.deepEqual(added.data.map((i) => [i.role, textOf(i.content)]),
    [['assistant', 'two'], ['user', 'three'], ['user', 'four']]);
  assert.equal(added.first_id, added.data[0].id);
  assert.equal(added.last_id, added.data[2].id);

  const page = await client.conversations.items.list(c.id, { limit: 2, order: 'asc' });
  assert.equal(page.data.length, 2);
  assert.equal(page.has_more, true);
  assert.equal(page.last_id, page.data[1].id); // ConversationCursorPage pages on last_id
  assert.equal(page.body.first_id, page.data[0].id);
  const all = [];
  for await (const item of client.conversations.items.list(c.id, { limit: 2, order: 'asc' })) {
    all.push(item);
  }
  assert.deepEqual(all.map((i) => textOf(i.content)), ['one', 'two', 'three', 'four']);
  const desc = await client.conversations.items.list(c.id);
  assert.deepEqual(desc.data.map((i) => i.id), all.map((i) => i.id).reverse());

  const one = await client.conversations.items.retrieve(all[1].id, { conversation_id: c.id });
  assert.deepEqual(one, all[1]);
  const afterDelete = await client.conversations.items.delete(all[1].id,
    { conversation_id: c.id });
  assert.equal(afterDelete.id, c.id);
  assert.equal(afterDelete.object, 'conversation');
  await rejectsNotFound(client.conversations.items.retrieve(all[1].id,
    { conversation_id: c.id }));
  const left = [];
  for await (const item of client.conversations.items.list(c.id, { order: 'asc' })) {
    left.push(textOf(item.content));
  }
  assert.deepEqual(left, ['one', 'three', 'four']);
});

test('responses.create({conversation}): sees the items, then extends them', T, async () => {
  const c = await client.conversations.create({
    items: [{ type: 'message', role: 'user', content: 'My name is Ada.' }],
  });
  const r1 = await client.responses.create(
    { model: 'mock-model', conversation: c.id, input: 'What is my name?' }, ECHO);
  assertResponse(r1, { model: 'mock-model' });
  assert.equal(r1.conversation?.id, c.id);
  const user = sentTurns(r1).filter(([role]) => role === 'user').map(([, t]) => t).join('\n');
  assert.ok(user.indexOf('My name is Ada.') >= 0, user);
  assert.ok(user.indexOf('What is my name?') > user.indexOf('My name is Ada.'), user);

  const items = [];
  for await (const item of client.conversations.items.list(c.id, { order: 'asc' })) {
    items.push(item);
  }
  assert.deepEqual(items.map((i) => [i.type, i.role]),
    [['message', 'user'], ['message', 'user'], ['message', 'assistant']]);
  assert.equal(items[2].id, r1.output[0].id);
  assert.equal(textOf(items[2].content), r1.output_text);

  // streamed, with the {id} form: the history now has the assistant turn too
  const stream = client.responses.stream(
    { model: 'mock-model', conversation: { id: c.id }, input: 'Again?' }, ECHO);
  const final = await within(10000, stream.finalResponse(), 'finalResponse');
  assert.equal(final.conversation?.id, c.id);
  const turns = sentTurns(final);
  assert.deepEqual(turns.at(-2), ['assistant', r1.output_text]);
  assert.deepEqual(turns.at(-1), ['user', 'Again?']);
  const count = (await client.conversations.items.list(c.id, { limit: 100 })).data.length;
  assert.equal(count, 5);
});
