// soak: prime time for hours, to find what only time shows: memory growth,
// connection churn, slow leaks in buffers, Firehose files piling up, DLQ
// creep, autoscaling oscillation.
//
//   k6 run -e BASE_URL=https://ingest.example.com -e SCALE=0.25 -e DURATION=8h loadtest/soak.js
import { config, perSecond, vus, send, summary, thresholds, summaryTrendStats, PRIME_TIME_PER_MIN } from './lib/common.js';

const rate = perSecond(config.rate || PRIME_TIME_PER_MIN);

export const options = {
  summaryTrendStats: summaryTrendStats,
  scenarios: {
    soak: Object.assign({
      executor: 'constant-arrival-rate',
      rate: rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '4h',
      tags: { test: 'soak' },
    }, vus(rate)),
  },
  thresholds: thresholds('soak', { errorRate: 0.001, share503: 0.001 }),
};

export default function () {
  send();
}

export function handleSummary(data) {
  return summary('soak', data);
}
