// spike: prime time, then 2.5 M requests/min within 30 s (a hockey final
// and election results at once), held, then back. Prescaling is what
// makes this pass; reactive autoscaling alone takes minutes.
//
//   k6 run -e BASE_URL=https://ingest.example.com -e SCALE=0.25 loadtest/spike.js
//
// HOLD (default 5m) sets how long the peak lasts.
import { config, perSecond, vus, send, summary, thresholds, summaryTrendStats, PRIME_TIME_PER_MIN, PEAK_PER_MIN } from './lib/common.js';

const base = perSecond(config.rate || PRIME_TIME_PER_MIN);
const peak = perSecond(PEAK_PER_MIN * (config.rate ? config.rate / PRIME_TIME_PER_MIN : 1));
const hold = __ENV.HOLD || '5m';

export const options = {
  summaryTrendStats: summaryTrendStats,
  scenarios: {
    spike: Object.assign({
      executor: 'ramping-arrival-rate',
      startRate: base,
      timeUnit: '1s',
      stages: [
        { target: base, duration: '2m' },
        { target: peak, duration: '30s' },
        { target: peak, duration: hold },
        { target: base, duration: '1m' },
        { target: base, duration: '2m' },
      ],
      tags: { test: 'spike' },
    }, vus(peak)),
  },
  // During the jump a little shedding is the designed answer (503 with
  // Retry-After beats queueing forever); beyond 2 % the prescale was short.
  thresholds: thresholds('spike', { errorRate: 0.02, share503: 0.02, p99: config.p99 * 2 }),
};

export default function () {
  send();
}

export function handleSummary(data) {
  return summary('spike', data);
}
