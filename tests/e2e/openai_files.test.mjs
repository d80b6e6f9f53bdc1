// End-to-end: the official `openai` Node SDK against Sluice's Files API (/v1/files): upload
// (multipart/form-data built by the SDK from `toFile`), retrieve, content, list (with the SDK's
// cursor auto-pagination), delete. Mostly v6 (the `openai6` alias: `files.delete`), plus one
// round trip with v4 (`files.del`), the version the other e2e tests use. State is the default
// in-memory store, shared by every test of this file (one gateway), so list assertions look at
// the files each test made.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai6';
import OpenAIv4, { toFile as toFileV4 } from 'openai';
import { startStack } from './helpers.mjs';

let stack;
let client;
let clientV4;
const T = { timeout: 20000 };
const FILE_ID = /^file_[0-9a-f]{48}$/;

before(async () => {
  stack = await startStack({
    routes: () => `\
  - model: demo
    targets: [{provider: demo}]
`,
  });
  client = new OpenAI({ baseURL: `${stack.gwUrl}/v1`, apiKey: 'sk-test', maxRetries: 0,
    timeout: 10000 });
  clientV4 = new OpenAIv4({ baseURL: `${stack.gwUrl}/v1`, apiKey: 'sk-test', maxRetries: 0,
    timeout: 10000 });
});

after(async () => {
  if (stack) await stack.stop();
});

const JSONL = [
  { custom_id: 'r1', method: 'POST', url: '/v1/chat/completions',
    body: { model: 'demo', messages: [{ role: 'user', content: 'héllo' }] } },
  { custom_id: 'r2', method: 'POST', url: '/v1/chat/completions',
    body: { model: 'demo', messages: [{ role: 'user', content: 'world' }] } },
].map((l) => JSON.stringify(l)).join('\n') + '\n';

/** The file object of an upload of `bytes` named `filename` with `purpose`. */
function checkFile(f, { bytes, filename, purpose, expiresIn = null }) {
  assert.deepEqual(Object.keys(f).sort(), ['bytes', 'created_at', 'expires_at', 'filename', 'id',
    'object', 'purpose', 'status', 'status_details']);
  assert.match(f.id, FILE_ID);
  assert.equal(f.object, 'file');
  assert.equal(f.bytes, bytes);
  assert.equal(f.filename, filename);
  assert.equal(f.purpose, purpose);
  assert.equal(f.status, 'processed');
  assert.equal(f.status_details, null);
  assert.ok(Number.isInteger(f.created_at) && Math.abs(f.created_at - Date.now() / 1000) < 30,
    String(f.created_at));
  assert.equal(f.expires_at, expiresIn === null ? null : f.created_at + expiresIn);
}

async function expectNotFound(promise, id) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `${err}`);
    assert.equal(err.status, 404);
    assert.equal(err.error?.message, `No such File object: ${id}`);
    return true;
  });
}

async function allIds(query = {}) {
  const out = [];
  for await (const f of client.files.list(query)) out.push(f.id);
  return out;
}

test('create, retrieve, content, list, list by purpose, delete', T, async () => {
  const buf = Buffer.from(JSONL);
  const created = await client.files.create({ file: await toFile(buf, 'input.jsonl'),
    purpose: 'batch' });
  checkFile(created, { bytes: buf.length, filename: 'input.jsonl', purpose: 'batch' });
  assert.ok(created.id.startsWith('file_'));

  assert.deepEqual(await client.files.retrieve(created.id), created);
  const content = await client.files.content(created.id);
  assert.equal(content.headers.get('content-type'), 'application/octet-stream');
  assert.equal(await content.text(), JSONL);

  const listed = [];
  for await (const f of client.files.list()) listed.push(f);
  assert.deepEqual(listed.find((f) => f.id === created.id), created);

  const other = await client.files.create({ file: await toFile(Buffer.from('notes'), 'n.txt'),
    purpose: 'assistants' });
  checkFile(other, { bytes: 5, filename: 'n.txt', purpose: 'assistants' });
  const batch = [];
  for await (const f of client.files.list({ purpose: 'batch' })) batch.push(f);
  assert.ok(batch.some((f) => f.id === created.id));
  assert.ok(batch.every((f) => f.purpose === 'batch'), JSON.stringify(batch));
  assert.ok(!batch.some((f) => f.id === other.id));
  assert.ok((await allIds({ purpose: 'assistants' })).includes(other.id));

  const deleted = await client.files.delete(created.id);
  assert.deepEqual(deleted, { id: created.id, object: 'file', deleted: true });
  await expectNotFound(client.files.retrieve(created.id), created.id);
  await expectNotFound(client.files.content(created.id), created.id);
  await expectNotFound(client.files.delete(created.id), created.id);
  assert.ok(!(await allIds()).includes(created.id));
  assert.ok((await allIds()).includes(other.id));
});

test('binary content and a non-ASCII filename come back unchanged', T, async () => {
  const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    Buffer.from('\r\n--boundary\r\n\0\xff', 'latin1')]);
  const f = await client.files.create({ file: await toFile(bytes, 'blöb données.bin'),
    purpose: 'user_data' });
  checkFile(f, { bytes: bytes.length, filename: 'blöb données.bin', purpose: 'user_data' });
  assert.equal((await client.files.retrieve(f.id)).filename, 'blöb données.bin');
  const got = Buffer.from(await (await client.files.content(f.id)).arrayBuffer());
  assert.ok(got.equals(bytes), `got ${got.length} bytes: ${got.toString('hex').slice(0, 80)}`);
});

test('expires_after sets expires_at', T, async () => {
  const f = await client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'),
    purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 3600 } });
  checkFile(f, { bytes: 1, filename: 'x.txt', purpose: 'batch', expiresIn: 3600 });
  assert.equal((await client.files.retrieve(f.id)).expires_at, f.created_at + 3600);
});

test('a bad purpose is a 400 BadRequestError naming purpose', T, async () => {
  await assert.rejects(client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'),
    purpose: 'nonsense' }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, `${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.param, 'purpose');
    assert.equal(err.type, 'invalid_request_error');
    return true;
  });
});

test('the list is newest first and auto-paginates with limit 2', T, async () => {
  const made = [];
  for (let i = 0; i < 3; i++) {
    made.push(await client.files.create({
      file: await toFile(Buffer.from(`file ${i}\n`), `order-${i}.jsonl`), purpose: 'fine-tune' }));
  }
  const newest = made.map((f) => f.id).reverse();

  const first = await client.files.list();
  assert.deepEqual(first.data.slice(0, 3).map((f) => f.id), newest);
  assert.deepEqual(first.data.slice(0, 3), [...made].reverse());

  const full = await client.files.list({ limit: 100 });
  assert.equal(full.has_more, false);
  const everything = full.data.map((f) => f.id);
  assert.ok(everything.length >= 3);

  // Auto-pagination, 2 per page: the same files in the same order, each once.
  const paged = await allIds({ limit: 2 });
  assert.deepEqual(paged, everything);
  assert.equal(new Set(paged).size, paged.length);

  // Page by page.
  let page = await client.files.list({ limit: 2 });
  assert.deepEqual(page.data.map((f) => f.id), newest.slice(0, 2));
  assert.equal(page.has_more, true);
  assert.ok(page.hasNextPage());
  page = await page.getNextPage();
  assert.equal(page.data[0].id, newest[2]);
  assert.equal(page.data.length, Math.min(2, everything.length - 2));

  // Ascending: the three are in upload order, oldest of them first.
  const asc = await allIds({ order: 'asc', limit: 2 });
  assert.deepEqual(asc, [...everything].reverse());
  assert.deepEqual(asc.filter((id) => newest.includes(id)), made.map((f) => f.id));

  // Filtered by purpose and paged: only these three (no other test uses fine-tune).
  assert.deepEqual(await allIds({ purpose: 'fine-tune', limit: 2 }), newest);
});

test('openai v4: create, retrieve, content, list, del', T, async () => {
  const f = await clientV4.files.create({ file: await toFileV4(Buffer.from(JSONL), 'v4.jsonl'),
    purpose: 'batch' });
  checkFile(f, { bytes: Buffer.byteLength(JSONL), filename: 'v4.jsonl', purpose: 'batch' });
  assert.deepEqual(await clientV4.files.retrieve(f.id), f);
  assert.equal(await (await clientV4.files.content(f.id)).text(), JSONL);
  const ids = [];
  for await (const x of clientV4.files.list({ limit: 2 })) ids.push(x.id);
  assert.ok(ids.includes(f.id));
  assert.deepEqual(await clientV4.files.del(f.id), { id: f.id, object: 'file', deleted: true });
  await assert.rejects(clientV4.files.retrieve(f.id), (err) => {
    assert.ok(err instanceof OpenAIv4.NotFoundError, `${err}`);
    assert.equal(err.status, 404);
    return true;
  });
});
