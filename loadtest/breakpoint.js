// breakpoint: raise the arrival rate from prime time to twice the highest
// peak (5 M requests/min: "test to twice the expected peak") and stop as
// soon as a threshold breaks. The rate reached at the abort is the
// deployment's capacity as configured; the summary's JSON has the curve.
//
//   k6 run -e BASE_URL=https://ingest.example.com -e SCALE=0.25 loadtest/breakpoint.js
//
// RAMP (default 30m) sets how long the climb takes.
import { config, perSecond, vus, send, summary, thresholds, summaryTrendStats, PRIME_TIME_PER_MIN, PEAK_PER_MIN } from './lib/common.js';

const start = perSecond(config.rate || PRIME_TIME_PER_MIN);
const top = perSecond(2 * PEAK_PER_MIN * (config.rate ? config.rate / PRIME_TIME_PER_MIN : 1));

export const options = {
  summaryTrendStats: summaryTrendStats,
  scenarios: {
    breakpoint: Object.assign({
      executor: 'ramping-arrival-rate',
      startRate: start,
      timeUnit: '1s',
      stages: [{ target: top, duration: __ENV.RAMP || '30m' }],
      tags: { test: 'breakpoint' },
    }, vus(top)),
  },
  thresholds: thresholds('breakpoint', { errorRate: 0.01, share503: 0.01, abort: true }),
};

export default function () {
  send();
}

export function handleSummary(data) {
  return summary('breakpoint', data);
}
