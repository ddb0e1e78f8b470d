// What every scenario shares: configuration from the environment, the
// request itself, the custom metrics, thresholds and the summary export.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate } from 'k6/metrics';

import { newTraffic } from './events.js';

// Yle's prime time (ch. 6): 600,000 requests/min; the highest observed
// peak: 2.5 M requests/min.
export const PRIME_TIME_PER_MIN = 600000;
export const PEAK_PER_MIN = 2500000;

function num(name, def) {
  const v = __ENV[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!isFinite(n) || n <= 0) throw new Error(name + ' must be a positive number, got ' + JSON.stringify(v));
  return n;
}

export const config = {
  // Target ingest, e.g. the ingest_url output of terraform without the path.
  baseURL: (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
  apiKey: __ENV.API_KEY || '',
  // SCALE multiplies every rate (0.01 for a dev stack; 0.25 on each of
  // four load generators). RATE, in requests/min, replaces the scenario's
  // base rate (prime time for steady and soak).
  scale: num('SCALE', 1),
  rate: num('RATE', 0),
  // Latency budget for p99, ms. Over the internet, TLS included.
  p99: num('P99_MS', 500),
  summaryDir: (__ENV.SUMMARY_DIR || '.').replace(/\/+$/, ''),
  seed: num('SEED', 1),
};

// perSecond converts requests/min to the arrival rate k6 schedules,
// scaled; at least 1/s so a tiny SCALE still runs.
export function perSecond(perMinute) {
  return Math.max(1, Math.round((perMinute * config.scale) / 60));
}

// vus sizes the VU pool for an arrival rate: a VU is busy for one
// request's latency, so rate x latency VUs keep up; the max covers the
// p99 budget twice over before k6 reports dropped iterations.
export function vus(ratePerSecond) {
  return {
    preAllocatedVUs: Math.max(2, Math.ceil(ratePerSecond * 0.1)),
    maxVUs: Math.max(10, Math.ceil((ratePerSecond * config.p99 * 2) / 1000)),
  };
}

export const eventsSent = new Counter('events_sent');
export const eventsAccepted = new Counter('events_accepted');
export const eventsRejected = new Counter('events_rejected');
// Share of responses that are 503: ingest shedding load (or the ALB
// without a healthy target). The number to watch during a spike.
export const status503 = new Rate('status_503');

// Trend statistics in the summary: p99 is what the thresholds judge.
export const summaryTrendStats = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

// thresholds for a scenario: errors, 503 share and p99, tagged by
// scenario so several scenarios in one run are judged separately.
export function thresholds(scenario, limits) {
  const l = limits || {};
  const tag = '{scenario:' + scenario + '}';
  const abort = l.abort ? { abortOnFail: true, delayAbortEval: '1m' } : null;
  const t = function (expr) {
    return abort ? [Object.assign({ threshold: expr }, abort)] : [expr];
  };
  const out = {};
  out['http_req_failed' + tag] = t('rate<' + (l.errorRate || 0.01));
  out['status_503' + tag] = t('rate<' + (l.share503 || 0.005));
  out['http_req_duration' + tag] = t('p(99)<' + (l.p99 || config.p99));
  out['checks' + tag] = ['rate>0.99'];
  return out;
}

let traffic = null;

// send posts one realistic request and records what came back.
export function send() {
  if (traffic === null) {
    // One traffic source per VU; seeds differ per VU, repeat per run.
    traffic = newTraffic(config.seed * 100003 + exec.vu.idInTest);
  }
  const req = traffic.next(Date.now());
  const headers = { 'Content-Type': req.contentType };
  if (config.apiKey) headers['X-Api-Key'] = config.apiKey;
  const params = {
    headers: headers,
    tags: { kind: req.kind, name: 'POST /v1/events' },
    // Anything but 202 counts in http_req_failed (the error rate); 503s
    // are also counted on their own in status_503.
    responseCallback: http.expectedStatuses(202),
  };
  if (req.gzip) params.compression = 'gzip';
  const res = http.post(config.baseURL + '/v1/events', req.body, params);
  eventsSent.add(req.events);
  status503.add(res.status === 503);
  let accepted = 0;
  if (res.status === 202) {
    try {
      const b = res.json();
      accepted = b.accepted || 0;
      eventsRejected.add(b.rejected ? b.rejected.length : 0);
    } catch (e) {
      accepted = -1;
    }
    eventsAccepted.add(Math.max(0, accepted));
  }
  check(res, {
    'status is 202 or 503': (r) => r.status === 202 || r.status === 503,
    'every event accepted': () => res.status !== 202 || accepted === req.events,
    '503 carries Retry-After': (r) => r.status !== 503 || !!r.headers['Retry-After'],
  });
  return res;
}

// summary renders k6's end-of-test data as a short text report and writes
// the full JSON next to it: <SUMMARY_DIR>/summary-<name>.json.
export function summary(name, data) {
  const m = data.metrics || {};
  const val = function (metric, key) {
    return m[metric] && m[metric].values && m[metric].values[key] !== undefined ? m[metric].values[key] : NaN;
  };
  const lines = [
    'spate ' + name + ' against ' + config.baseURL + ' (SCALE=' + config.scale + (config.rate ? ', RATE=' + config.rate + '/min' : '') + ')',
    '  requests        ' + val('http_reqs', 'count') + ' (' + val('http_reqs', 'rate').toFixed(1) + '/s)',
    '  events sent     ' + val('events_sent', 'count') + ', accepted ' + val('events_accepted', 'count') + ', rejected ' + val('events_rejected', 'count'),
    '  failed          ' + (100 * val('http_req_failed', 'rate')).toFixed(3) + ' %',
    '  503             ' + (100 * val('status_503', 'rate')).toFixed(3) + ' %',
    '  latency ms      p50 ' + val('http_req_duration', 'med').toFixed(1) + '  p95 ' + val('http_req_duration', 'p(95)').toFixed(1) + '  p99 ' + val('http_req_duration', 'p(99)').toFixed(1) + '  max ' + val('http_req_duration', 'max').toFixed(1),
    '  dropped iters   ' + (isNaN(val('dropped_iterations', 'count')) ? 0 : val('dropped_iterations', 'count')),
  ];
  const failed = [];
  for (const k in m) {
    const th = m[k].thresholds;
    if (!th) continue;
    for (const expr in th) {
      if (!th[expr].ok) failed.push(k + ' ' + expr);
    }
  }
  lines.push('  thresholds      ' + (failed.length === 0 ? 'all passed' : 'FAILED: ' + failed.join('; ')));
  const out = {};
  out.stdout = lines.join('\n') + '\n';
  out[config.summaryDir + '/summary-' + name + '.json'] = JSON.stringify(data, null, 2);
  return out;
}
