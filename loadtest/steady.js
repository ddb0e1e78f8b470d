// steady: prime time, 600,000 requests/min (Yle's evening peak), held.
//
//   k6 run -e BASE_URL=https://ingest.example.com -e SCALE=0.25 loadtest/steady.js
//
// RATE (requests/min) replaces prime time; SCALE multiplies it; DURATION
// (default 10m) sets how long.
import { config, perSecond, vus, send, summary, thresholds, summaryTrendStats, PRIME_TIME_PER_MIN } from './lib/common.js';

const rate = perSecond(config.rate || PRIME_TIME_PER_MIN);

export const options = {
  discardResponseBodies: false,
  summaryTrendStats: summaryTrendStats,
  scenarios: {
    steady: Object.assign({
      executor: 'constant-arrival-rate',
      rate: rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '10m',
      tags: { test: 'steady' },
    }, vus(rate)),
  },
  thresholds: thresholds('steady', { errorRate: 0.001, share503: 0.001 }),
};

export default function () {
  send();
}

export function handleSummary(data) {
  return summary('steady', data);
}
