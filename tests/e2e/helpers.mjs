// Shared helpers of the e2e suite: start build/sluice-mock and build/sluice on ephemeral ports,
// stop them by PID, and a few small utilities. Each *.test.mjs file runs in its own node process
// (node --test), so each starts its own mock + gateway with the routes it needs.
//
// Binaries come from $SLUICE_BUILD_DIR (default: <repo>/build; relative paths are resolved
// against the repository root). Each server prints "...: listening on http://HOST:PORT" on
// stdout once it listens, which is parsed for its base URL.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..');
export const BUILD_DIR = path.resolve(REPO_ROOT, process.env.SLUICE_BUILD_DIR ?? 'build');
export const SLUICE_BIN = path.join(BUILD_DIR, 'sluice');
export const MOCK_BIN = path.join(BUILD_DIR, 'sluice-mock');

/** Spawns a server and resolves with { child, url } once it prints "listening on http://H:P"
 * (the first such line: sluice's own; an "admin listening on" line may follow it). */
export function startServer(bin, args, env, timeoutMs = 10000) {
  accessSync(bin, constants.X_OK);
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin}: no "listening on" line within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited early with ${code}; stderr:\n${stderr}`));
    });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1].replace(/\/$/, '') });
      }
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', () => r(true)));
  child.kill('SIGTERM');
  let timer;
  const late = new Promise((r) => { timer = setTimeout(() => r(false), 5000); });
  const ok = await Promise.race([exited, late]);
  clearTimeout(timer); // a pending timer would keep the test process alive for 5 s
  if (!ok) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** A TCP port nothing listens on (bound, then closed). */
export function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Rejects if `promise` does not settle within ms (so a hang fails instead of stalling). */
export function within(ms, promise, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms (hang)`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/**
 * Starts sluice-mock, then sluice with the given routes. `routes(mock)` returns the YAML list
 * items under `routes:` (two-space indented), where mock is { url, root } (root = the mock's
 * http://127.0.0.1:PORT, which serves all three formats: OpenAI under /v1, Anthropic at the root,
 * Gemini under /v1beta). Resolves with
 *   { mockUrl, gwUrl, mockJson(path), stop() }.
 */
export async function startStack({ routes, env = {}, mockThreads = 2 }) {
  const children = [];
  const tmp = mkdtempSync(path.join(tmpdir(), 'sluice-e2e-'));
  const stop = async () => {
    for (const c of children.reverse()) await stopProcess(c);
    children.length = 0;
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const mock = await startServer(MOCK_BIN,
      ['--listen', '127.0.0.1:0', '--threads', String(mockThreads)], process.env);
    children.push(mock.child);
    const config = `\
server: {listen: "127.0.0.1:0", threads: 2, max_body_bytes: 1MiB, header_timeout_ms: 1000, idle_timeout_ms: 2000, drain_timeout_ms: 3000}
upstream: {timeouts: {connect_ms: 1000, first_byte_ms: 1000, stream_idle_ms: 1000, total_ms: 5000}}
admin: {listen: off}
routes:
${await routes({ url: mock.url, root: mock.url })}`;
    const cfgPath = path.join(tmp, 'sluice.yaml');
    writeFileSync(cfgPath, config);
    const gw = await startServer(SLUICE_BIN, ['--config', cfgPath], { ...process.env, ...env });
    children.push(gw.child);
    const mockJson = async (p) => (await fetch(mock.url + p)).json();
    return { mockUrl: mock.url, gwUrl: gw.url, mockJson, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A target's YAML flow map for sluice-mock in `provider`'s format, mock headers forwarded. */
export function mockTarget(mock, provider, extra = '') {
  const base = { openai: `${mock.root}/v1`, anthropic: mock.root, gemini: `${mock.root}/v1beta` };
  return `{provider: ${provider}, forward_headers: ["x-mock-*"], base_url: "${base[provider]}"` +
    `${extra ? `, ${extra}` : ''}}`;
}
