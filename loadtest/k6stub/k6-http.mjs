// Stand-in for k6/http: synchronous requests (as k6 makes them) to a real
// server, through a worker thread. Every request is kept in `requests`
// for loadtest/check.js.
import { Worker, MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';

export const requests = [];

let worker = null;
let port = null;
const flag = new Int32Array(new SharedArrayBuffer(4));

function start() {
  const ch = new MessageChannel();
  port = ch.port1;
  worker = new Worker(new URL('./http-worker.mjs', import.meta.url), {
    workerData: { port: ch.port2, flag },
    transferList: [ch.port2],
  });
  worker.unref();
}

export function close() {
  if (worker) {
    worker.terminate();
    worker = null;
  }
}

function canonicalHeaders(h) {
  // k6 canonicalises response header names (Retry-After, Content-Type).
  const out = {};
  for (const [k, v] of Object.entries(h)) {
    out[k.replace(/(^|-)([a-z])/g, (m, d, c) => d + c.toUpperCase())] = v;
  }
  return out;
}

export function request(method, url, body, params = {}) {
  if (!worker) start();
  const headers = { ...(params.headers || {}) };
  let payload = body ?? null;
  if (params.compression) {
    if (params.compression !== 'gzip') throw new Error(`stand-in supports gzip only, not ${params.compression}`);
    payload = gzipSync(Buffer.from(payload));
    headers['Content-Encoding'] = 'gzip';
  }
  Atomics.store(flag, 0, 0);
  port.postMessage({ method, url, headers, body: payload });
  if (Atomics.wait(flag, 0, 0, 30000) === 'timed-out') {
    throw new Error(`stand-in k6/http: ${method} ${url} timed out`);
  }
  let got = receiveMessageOnPort(port);
  for (let i = 0; got === undefined && i < 1000; i++) {
    // The reply is posted before the flag is set; allow for its delivery.
    Atomics.wait(flag, 0, 1, 1);
    got = receiveMessageOnPort(port);
  }
  if (got === undefined) throw new Error(`stand-in k6/http: no reply for ${method} ${url}`);
  const msg = got.message;
  const res = {
    status: msg.status,
    body: msg.body,
    error: msg.error || '',
    headers: canonicalHeaders(msg.headers),
    timings: { duration: msg.duration },
    request: { method, url, headers, body },
    json() {
      return JSON.parse(msg.body);
    },
  };
  requests.push({ method, url, headers, body, params, status: res.status, response: msg.body });
  return res;
}

export function post(url, body, params) {
  return request('POST', url, body, params);
}

export function get(url, params) {
  return request('GET', url, null, params);
}

export function expectedStatuses(...codes) {
  return { expected: codes };
}

export default { request, post, get, expectedStatuses };
