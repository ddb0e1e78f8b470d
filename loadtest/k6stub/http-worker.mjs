// Performs the stand-in k6/http's requests: k6's http calls are
// synchronous, node's are not, so the caller blocks on Atomics.wait while
// this worker does the fetch.
import { workerData } from 'node:worker_threads';

const { port, flag } = workerData;

port.on('message', async (req) => {
  let res;
  const t0 = performance.now();
  try {
    const r = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body ?? undefined });
    const body = await r.text();
    res = { status: r.status, body, headers: Object.fromEntries(r.headers), duration: performance.now() - t0 };
  } catch (e) {
    res = { status: 0, body: '', headers: {}, error: String(e), duration: performance.now() - t0 };
  }
  port.postMessage(res);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
