// loadtest/check.js — checks the k6 scripts without k6 (run by `make test`):
//
//  1. every script parses (node --check, as ES modules);
//  2. the event generator's bodies follow docs/events.md: every type and
//     platform appears, every field is allowed for its type, required
//     fields are there, limits hold;
//  3. each scenario runs a few iterations under node, with stand-ins for
//     k6's modules (loadtest/k6stub), against a real `spate local` built
//     from this repository: every request must get 202 with every event
//     accepted; then its options and handleSummary are checked.
//
// SPATE_BIN=path uses a prebuilt spate instead of `go build`. The run
// stops by itself (CHECK_TIMEOUT_MS, default 240 s).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { register } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const scenarios = ['steady', 'spike', 'soak', 'breakpoint'];
const iterations = 25;

let failures = 0;
function fail(msg) {
  failures++;
  console.error(`FAIL ${msg}`);
}
function ok(msg) {
  console.log(`ok   ${msg}`);
}

const deadline = setTimeout(() => {
  console.error('FAIL loadtest check did not finish in time');
  process.exit(1);
}, Number(process.env.CHECK_TIMEOUT_MS || 240000));
deadline.unref();

// ---------------------------------------------------------------- 1. syntax

function jsFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...jsFiles(p));
    else if (/\.(m?js)$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

for (const f of jsFiles(here)) {
  const r = spawnSync(process.execPath, ['--check', f], { encoding: 'utf8' });
  if (r.status !== 0) fail(`syntax ${relative(repo, f)}:\n${r.stderr}`);
}
ok('syntax of every script');

// ---------------------------------------------------------------- 2. events

// docs/events.md is generated from the registry; its tables are the rules.
function parseEventDocs() {
  const md = readFileSync(join(repo, 'docs', 'events.md'), 'utf8');
  const sections = {};
  let current = null;
  for (const line of md.split('\n')) {
    const h = line.match(/^## (?:`([a-z_]+)`|Envelope)/);
    if (h) {
      current = h[1] || '_envelope';
      sections[current] = {};
      continue;
    }
    if (line.startsWith('## ')) {
      current = null; // the guide after the reference
      continue;
    }
    const row = line.match(/^\| `([a-z_]+)` \| ([^|]+) \| `[^`]+` \| (yes)? *\| ([^|]*) \| ([^|]*) \|$/);
    if (row && current) {
      const [, name, type, required, rules, meaning] = row;
      const f = { type: type.trim(), required: !!required, rules: rules.trim(), serverOnly: /not accepted from clients/i.test(meaning) };
      const max = f.rules.match(/≤ (\d+) characters/);
      if (max) f.maxLen = Number(max[1]);
      const keys = f.rules.match(/≤ (\d+) keys/);
      if (keys) f.maxKeys = Number(keys[1]);
      const oneOf = f.rules.match(/one of ([a-z, ]+)/);
      if (oneOf) f.enum = oneOf[1].split(',').map((s) => s.trim());
      f.uuid = /UUID/.test(f.rules);
      f.nonNegative = /≥ 0/.test(f.rules);
      sections[current][name] = f;
    }
  }
  const limits = md.match(/one event at most (\d+) bytes of JSON/);
  return { sections, maxEvent: Number(limits[1]), maxAttrs: sections._envelope.attrs.maxKeys };
}

const docs = parseEventDocs();
const types = Object.keys(docs.sections).filter((k) => k !== '_envelope');

function validate(e, nowMs) {
  const errs = [];
  const typeFields = docs.sections[e.type];
  if (!typeFields) return [`unknown type ${e.type}`];
  const fields = { ...docs.sections._envelope, ...typeFields };
  for (const [name, v] of Object.entries(e)) {
    const f = fields[name];
    if (!f) {
      errs.push(`${e.type}: field ${name} not allowed`);
      continue;
    }
    if (f.serverOnly) errs.push(`${name} is set by the server`);
    if (v === '' || v === null) errs.push(`${name} empty (counts as absent)`);
    switch (f.type) {
      case 'string':
        if (typeof v !== 'string') errs.push(`${name} not a string`);
        else if (f.maxLen && [...v].length > f.maxLen) errs.push(`${name} longer than ${f.maxLen}`);
        if (f.enum && !f.enum.includes(v)) errs.push(`${name}=${v} not one of ${f.enum}`);
        if (f.uuid && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v)) errs.push(`${name} not a UUID`);
        break;
      case 'integer':
        if (!Number.isInteger(v)) errs.push(`${name} not an integer`);
        if (f.nonNegative && v < 0) errs.push(`${name} negative`);
        break;
      case 'boolean':
        if (typeof v !== 'boolean') errs.push(`${name} not a boolean`);
        break;
      case 'RFC 3339 timestamp': {
        const t = Date.parse(v);
        if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) || Number.isNaN(t)) errs.push(`${name} not RFC 3339`);
        else if (t > nowMs + 24 * 3600e3 || t < nowMs - 720 * 3600e3) errs.push(`${name} outside the accepted window`);
        break;
      }
      case 'object of strings': {
        const keys = Object.keys(v);
        if (keys.length > docs.maxAttrs) errs.push(`${name}: more than ${docs.maxAttrs} keys`);
        for (const k of keys) if (typeof v[k] !== 'string' || Buffer.byteLength(k) > 256 || Buffer.byteLength(v[k]) > 256) errs.push(`${name}.${k} invalid`);
        break;
      }
      default:
        errs.push(`${name}: unknown doc type ${f.type}`);
    }
  }
  for (const [name, f] of Object.entries(fields)) {
    if (f.required && !(name in e)) errs.push(`${e.type}: required ${name} missing`);
  }
  if (!e.user_id && !e.anonymous_id) errs.push('user_id or anonymous_id required');
  if (Buffer.byteLength(JSON.stringify(e)) > docs.maxEvent) errs.push(`event larger than ${docs.maxEvent} bytes`);
  return errs;
}

const { newTraffic, EVENT_TYPES, PLATFORMS } = await import('./lib/events.js');

{
  if (JSON.stringify([...EVENT_TYPES].sort()) !== JSON.stringify([...types].sort())) {
    fail(`generator types ${EVENT_TYPES} differ from docs/events.md ${types}`);
  }
  const platformEnum = docs.sections._envelope.platform.enum;
  if (JSON.stringify([...PLATFORMS].sort()) !== JSON.stringify([...platformEnum].sort())) {
    fail(`generator platforms ${PLATFORMS} differ from docs/events.md ${platformEnum}`);
  }
  const seen = { type: new Set(), platform: new Set(), kind: new Set(), contentType: new Set(), field: new Set() };
  let single = 0;
  let batch = 0;
  let gzip = 0;
  let invalid = 0;
  const now = Date.now();
  for (let seed = 1; seed <= 4; seed++) {
    const tr = newTraffic(seed);
    for (let i = 0; i < 1000; i++) {
      const req = tr.next(now);
      seen.kind.add(req.kind);
      seen.contentType.add(req.contentType);
      if (req.gzip) gzip++;
      if (Buffer.byteLength(req.body) > 1 << 20) fail(`body of ${Buffer.byteLength(req.body)} bytes > 1 MiB`);
      const parsed = JSON.parse(req.body);
      const events = parsed.events || [parsed];
      if (parsed.events) {
        batch++;
        if (Object.keys(parsed).length !== 1) fail('a batch body holds only "events"');
      } else single++;
      if (events.length !== req.events) fail(`request says ${req.events} events, body has ${events.length}`);
      if (events.length > 500) fail(`${events.length} events in one request`);
      for (const e of events) {
        seen.type.add(e.type);
        seen.platform.add(e.platform);
        for (const k of Object.keys(e)) seen.field.add(k);
        const errs = validate(e, now);
        if (errs.length > 0 && invalid++ < 5) fail(`generated event breaks docs/events.md: ${errs.join('; ')}: ${JSON.stringify(e)}`);
      }
    }
  }
  for (const t of types) if (!seen.type.has(t)) fail(`no ${t} events generated`);
  for (const p of PLATFORMS) if (!seen.platform.has(p)) fail(`no events from platform ${p}`);
  const allFields = new Set(Object.keys({ ...docs.sections._envelope, ...Object.assign({}, ...types.map((t) => docs.sections[t])) }));
  for (const f of allFields) {
    if (!seen.field.has(f) && !docs.sections._envelope[f]?.serverOnly) fail(`field ${f} never generated`);
  }
  if (single === 0 || batch === 0) fail(`want single and batched bodies, got ${single} and ${batch}`);
  if (!seen.contentType.has('text/plain;charset=UTF-8')) fail('no sendBeacon-style text/plain bodies');
  if (gzip === 0) fail('no gzipped batches');
  if (invalid === 0) ok(`generator: 4000 requests, ${single} single / ${batch} batched, ${seen.type.size} types, ${seen.platform.size} platforms, all valid per docs/events.md`);
}

// ---------------------------------------------------------------- 3. smoke run

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, child) {
  const until = Date.now() + 60000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`spate local exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('spate local did not become ready within 60 s');
}

const tmp = mkdtempSync(join(tmpdir(), 'spate-loadtest-'));
let spate = process.env.SPATE_BIN;
if (!spate) {
  spate = join(tmp, 'spate');
  const b = spawnSync('go', ['build', '-o', spate, './cmd/spate'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  if (b.status !== 0) {
    fail('go build ./cmd/spate');
    process.exit(1);
  }
}
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const child = spawn(spate, ['local', '--addr', `127.0.0.1:${port}`, '--data', join(tmp, 'data'), '--flush-interval', '1s'], {
  cwd: tmp,
  stdio: ['ignore', 'ignore', 'pipe'],
});
let childLog = '';
child.stderr.on('data', (d) => {
  childLog = (childLog + d).slice(-8000);
});
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

try {
  await waitHealthy(`${base}/healthz`, child);
  ok(`spate local listening on ${base}`);

  register('./k6stub/hooks.mjs', import.meta.url);
  const k6 = await import('./k6stub/k6.mjs');
  const http = await import('./k6stub/k6-http.mjs');

  for (const name of scenarios) {
    globalThis.__ENV = { BASE_URL: base + '/', API_KEY: 'check-key', SCALE: '0.001', SEED: '7', SUMMARY_DIR: tmp };
    const script = await import(`${pathToFileURL(join(here, name + '.js')).href}?${name}`);
    const opts = script.options;
    const sc = opts?.scenarios?.[name];
    if (!sc) {
      fail(`${name}: options.scenarios.${name} missing`);
      continue;
    }
    if (!['constant-arrival-rate', 'ramping-arrival-rate'].includes(sc.executor)) fail(`${name}: executor ${sc.executor} is not an arrival-rate executor`);
    if (!(sc.preAllocatedVUs >= 1 && sc.maxVUs >= sc.preAllocatedVUs)) fail(`${name}: VUs ${sc.preAllocatedVUs}/${sc.maxVUs}`);
    if (sc.tags?.test !== name) fail(`${name}: scenario not tagged test=${name}`);
    for (const m of ['http_req_failed', 'status_503', 'http_req_duration', 'checks']) {
      if (!opts.thresholds?.[`${m}{scenario:${name}}`]) fail(`${name}: no threshold on ${m} for the scenario`);
    }
    if (typeof script.default !== 'function' || typeof script.handleSummary !== 'function') {
      fail(`${name}: default and handleSummary must be exported functions`);
      continue;
    }

    const from = http.requests.length;
    const checksFrom = k6.results.length;
    for (let i = 0; i < iterations; i++) script.default();
    const sent = http.requests.slice(from);
    if (sent.length !== iterations) fail(`${name}: ${sent.length} requests for ${iterations} iterations`);
    let events = 0;
    for (const r of sent) {
      if (r.url !== `${base}/v1/events`) fail(`${name}: posted to ${r.url}`);
      if (r.headers['X-Api-Key'] !== 'check-key') fail(`${name}: no X-Api-Key header`);
      if (r.status !== 202) {
        fail(`${name}: ${r.status} ${r.response} for ${r.body.slice(0, 300)}`);
        continue;
      }
      const resp = JSON.parse(r.response);
      const n = (JSON.parse(r.body).events || [1]).length;
      events += n;
      if (resp.accepted !== n || (resp.rejected && resp.rejected.length > 0)) fail(`${name}: ${JSON.stringify(resp)} for ${n} events`);
    }
    const badChecks = k6.results.slice(checksFrom).filter((c) => !c.pass);
    if (badChecks.length > 0) fail(`${name}: checks failed: ${[...new Set(badChecks.map((c) => c.name))]}`);

    const fake = {
      metrics: {
        http_reqs: { values: { count: iterations, rate: 10 } },
        events_sent: { values: { count: events } },
        events_accepted: { values: { count: events } },
        events_rejected: { values: { count: 0 } },
        http_req_failed: { values: { rate: 0 }, thresholds: { 'rate<0.01': { ok: true } } },
        status_503: { values: { rate: 0 } },
        http_req_duration: { values: { med: 2, 'p(95)': 4, 'p(99)': 5, max: 9 }, thresholds: { 'p(99)<500': { ok: false } } },
      },
    };
    const out = script.handleSummary(fake);
    const file = `${tmp}/summary-${name}.json`;
    if (typeof out?.stdout !== 'string' || !out.stdout.includes(`${events}`) || !out.stdout.includes('FAILED: http_req_duration p(99)<500')) {
      fail(`${name}: handleSummary stdout:\n${out?.stdout}`);
    }
    if (typeof out?.[file] !== 'string' || JSON.parse(out[file]).metrics.http_reqs.values.count !== iterations) fail(`${name}: handleSummary does not export ${file}`);
    if (failures === 0) ok(`${name}: ${iterations} requests, ${events} events, all 202 and accepted; options and summary export`);
  }
  http.close();
} catch (e) {
  fail(`${e.stack || e}\n--- spate local log tail ---\n${childLog}`);
} finally {
  child.kill('SIGTERM');
  const { code, signal } = await exited;
  if (code !== 0) fail(`spate local exited with ${code ?? signal} after SIGTERM\n${childLog}`);
  rmSync(tmp, { recursive: true, force: true });
}

if (failures > 0) {
  console.error(`loadtest check: ${failures} failure(s)`);
  process.exit(1);
}
console.log('loadtest check: ok');
process.exit(0);
