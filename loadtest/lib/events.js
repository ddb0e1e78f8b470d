// Realistic spate interaction events (docs/events.md) for the k6 scenarios.
// Plain JavaScript with no k6 or node imports: k6 runs it in every VU, and
// loadtest/check.js runs it under node to prove every body it builds is one
// the ingest API accepts.
//
// What a request looks like, roughly as players behave:
//   - a playing client sends a play_progress heartbeat every ~30 s: the
//     bulk of the traffic, one event per request (often a beacon);
//   - rendering a shelf sends its impressions in one {"events":[…]} batch;
//   - page views, clicks, play starts and ends are single events;
//   - mobile and TV apps flush what they queued offline as a mixed batch.

import { PLATFORMS as SCHEMA_PLATFORMS, TYPES } from './schemas.gen.js';

// The types and platforms come from the schemas (schemas.gen.js is
// generated from schemas/); the six below have a behavioural model, any
// other type with a load weight is written from its schema's fields.
export const PLATFORMS = SCHEMA_PLATFORMS;
export const EVENT_TYPES = TYPES.map((t) => t.name);
const MODELLED = ['page_view', 'impression', 'click', 'play_start', 'play_progress', 'play_end'];

const PLATFORM_WEIGHTS = [
  ['web', 40],
  ['android', 25],
  ['ios', 20],
  ['tv', 12],
  ['other', 3],
];

const APP_VERSIONS = {
  web: ['2026.5.3', '2026.6.0'],
  ios: ['7.14.0', '7.15.1', '7.15.2'],
  android: ['7.14.0', '7.15.0', '7.15.2'],
  tv: ['4.2.0', '4.3.1'],
  other: ['1.0.9'],
};

// Thumbnail variants the bandit models choose between.
export const IMAGE_VARIANTS = ['hero_a', 'hero_b', 'hero_c', 'portrait_a', 'portrait_b', 'square_a'];

const LISTS = [
  'front-page/recommended', 'front-page/popular', 'front-page/continue-watching',
  'sports/live', 'sports/highlights', 'news/latest', 'kids/new', 'series/drama',
];

const PAGES = ['/', '/tv', '/sports', '/news', '/kids', '/series', '/search', '/live'];

const END_REASONS = ['completed', 'stopped', 'error', 'navigated_away'];

// Request kinds and their share of requests.
const REQUEST_MIX = [
  ['progress', 45],
  ['impressions', 20],
  ['page_view', 12],
  ['click', 8],
  ['play_start', 6],
  ['play_end', 4],
  ['offline_flush', 5],
].concat(TYPES.filter((t) => t.weight > 0 && MODELLED.indexOf(t.name) < 0).map((t) => [t.name, t.weight]));

// generic fills a type without a model from its schema: every required
// field, and each optional one half the time, valid for its limits.
function generic(r, e, type) {
  const t = TYPES.find((x) => x.name === type);
  if (!t) throw new Error('unknown event type ' + type);
  for (const f of t.fields) {
    if (!f.required && r() < 0.5) continue;
    if (f.kind === 'integer') {
      const lo = f.minimum !== undefined ? f.minimum : 0;
      const hi = f.maximum !== undefined ? f.maximum : lo + 1000;
      e[f.name] = lo + r.int(Math.max(hi - lo, 0) + 1);
    } else if (f.kind === 'boolean') {
      e[f.name] = r() < 0.5;
    } else if (f.enum) {
      e[f.name] = r.pick(f.enum);
    } else if (f.format === 'uuid') {
      e[f.name] = uuid4(r);
    } else {
      let v = f.name + '-' + r.int(100);
      if (f.maxLength !== undefined) v = v.slice(0, f.maxLength);
      if (v !== '') e[f.name] = v;
    }
  }
}

// mulberry32: small, fast, seedable; each VU gets its own stream so runs
// are reproducible per seed.
export function rng(seed) {
  let a = seed >>> 0;
  const next = function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = function (n) {
    return Math.floor(next() * n);
  };
  next.pick = function (xs) {
    return xs[Math.floor(next() * xs.length)];
  };
  next.weighted = function (pairs) {
    let total = 0;
    for (let i = 0; i < pairs.length; i++) total += pairs[i][1];
    let x = next() * total;
    for (let i = 0; i < pairs.length; i++) {
      x -= pairs[i][1];
      if (x < 0) return pairs[i][0];
    }
    return pairs[pairs.length - 1][0];
  };
  return next;
}

const HEX = '0123456789abcdef';

// uuid4 builds a version-4 UUID from r.
export function uuid4(r) {
  let s = '';
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      s += '-';
    } else if (i === 14) {
      s += '4';
    } else if (i === 19) {
      s += HEX[8 + r.int(4)];
    } else {
      s += HEX[r.int(16)];
    }
  }
  return s;
}

function pad(n, w) {
  let s = String(n);
  while (s.length < w) s = '0' + s;
  return s;
}

// rfc3339 formats ms since the epoch as UTC with milliseconds; some
// clients send an offset instead, which the API accepts too.
export function rfc3339(ms, offsetMinutes) {
  const off = offsetMinutes || 0;
  const d = new Date(ms + off * 60000);
  let s = d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1, 2) + '-' + pad(d.getUTCDate(), 2) +
    'T' + pad(d.getUTCHours(), 2) + ':' + pad(d.getUTCMinutes(), 2) + ':' + pad(d.getUTCSeconds(), 2) +
    '.' + pad(d.getUTCMilliseconds(), 3);
  if (off === 0) return s + 'Z';
  const sign = off > 0 ? '+' : '-';
  const a = Math.abs(off);
  return s + sign + pad(Math.floor(a / 60), 2) + ':' + pad(a % 60, 2);
}

function contentId(r, catalogue) {
  // Popularity is skewed: a few programmes (the live final) take most
  // views. Squaring a uniform draw puts about a third of the draws in
  // the top 10 % of the catalogue.
  const u = r();
  return '1-' + (50000 + Math.floor(u * u * catalogue));
}

// Client is one viewing session on one device: the envelope fields its
// events share and what it is watching.
export function newClient(r, opts) {
  const o = opts || {};
  const users = o.users || 200000;
  const platform = r.weighted(PLATFORM_WEIGHTS);
  const signedIn = r() < 0.6;
  const c = {
    platform: platform,
    appVersion: r.pick(APP_VERSIONS[platform]),
    sessionId: uuid4(r),
    userId: signedIn ? 'u-' + (1000000 + r.int(users)) : '',
    anonymousId: signedIn && r() < 0.7 ? '' : 'anon-' + uuid4(r),
    catalogue: o.catalogue || 5000,
    // Browsers east of UTC sometimes report local time with an offset.
    offset: platform === 'web' && r() < 0.2 ? 120 : 0,
    watching: null,
    lastVariant: null,
  };
  if (!c.userId && !c.anonymousId) c.anonymousId = 'anon-' + uuid4(r);
  return c;
}

function envelope(r, c, type, nowMs, lagMs) {
  const e = { type: type };
  // Most clients send their own id for deduplication; some leave it to
  // the server.
  if (r() < 0.9) e.event_id = uuid4(r);
  e.occurred_at = rfc3339(nowMs - (lagMs || r.int(3000)), c.offset);
  if (c.userId) e.user_id = c.userId;
  if (c.anonymousId) e.anonymous_id = c.anonymousId;
  e.session_id = c.sessionId;
  e.platform = c.platform;
  e.app_version = c.appVersion;
  if (r() < 0.15) {
    e.attrs = { experiment: 'thumbs-' + r.pick(['v1', 'v2', 'v3']) };
    if (r() < 0.5) e.attrs.network = r.pick(['wifi', 'cellular', 'ethernet']);
  }
  return e;
}

function startWatching(r, c) {
  const live = r() < 0.25;
  const durationMs = live ? 0 : (20 + r.int(100)) * 60000;
  c.watching = {
    contentId: contentId(r, c.catalogue),
    variant: c.lastVariant || r.pick(IMAGE_VARIANTS),
    live: live,
    durationMs: durationMs,
    positionMs: live ? 0 : r.int(Math.max(1, durationMs / 2)),
  };
  return c.watching;
}

// event builds one event of type for client c at nowMs.
export function event(r, c, type, nowMs, lagMs) {
  const e = envelope(r, c, type, nowMs, lagMs);
  switch (type) {
    case 'page_view': {
      e.page = r.pick(PAGES);
      if (r() < 0.4) e.referrer = r.pick(['https://www.google.com/', 'https://areena.example/', '/']);
      break;
    }
    case 'impression': {
      e.content_id = contentId(r, c.catalogue);
      e.image_variant = r.pick(IMAGE_VARIANTS);
      e.list_id = r.pick(LISTS);
      e.position = r.int(20);
      break;
    }
    case 'click': {
      e.content_id = contentId(r, c.catalogue);
      c.lastVariant = r.pick(IMAGE_VARIANTS);
      e.image_variant = c.lastVariant;
      e.list_id = r.pick(LISTS);
      e.position = r.int(20);
      break;
    }
    case 'play_start': {
      const w = startWatching(r, c);
      e.content_id = w.contentId;
      if (r() < 0.8) e.image_variant = w.variant;
      e.position_ms = w.positionMs;
      e.live = w.live;
      break;
    }
    case 'play_progress': {
      const w = c.watching || startWatching(r, c);
      w.positionMs += 30000;
      e.content_id = w.contentId;
      e.position_ms = w.positionMs;
      if (!w.live) e.duration_ms = w.durationMs;
      break;
    }
    case 'play_end': {
      const w = c.watching || startWatching(r, c);
      e.content_id = w.contentId;
      e.position_ms = w.positionMs;
      e.reason = w.live || w.positionMs < w.durationMs ? r.pick(END_REASONS) : 'completed';
      c.watching = null;
      break;
    }
    default:
      generic(r, e, type);
  }
  return e;
}

// Request is what one HTTP POST carries.
//   body:        the JSON text
//   events:      how many events it holds
//   kind:        the REQUEST_MIX entry it came from (a tag)
//   contentType: application/json, or text/plain as navigator.sendBeacon sends
//   gzip:        whether a client would compress it (bigger batches)
export function request(r, c, nowMs) {
  const kind = r.weighted(REQUEST_MIX);
  let events;
  switch (kind) {
    case 'progress':
      events = [event(r, c, 'play_progress', nowMs)];
      break;
    case 'impressions': {
      // One shelf rendering: consecutive positions of one list.
      const n = 5 + r.int(16);
      const list = r.pick(LISTS);
      events = [];
      for (let i = 0; i < n; i++) {
        const e = event(r, c, 'impression', nowMs);
        e.list_id = list;
        e.position = i;
        events.push(e);
      }
      break;
    }
    case 'offline_flush': {
      // Queued while offline, sent in one go: up to 50 mixed events from
      // the last two hours.
      const n = 2 + r.int(49);
      events = [];
      for (let i = 0; i < n; i++) {
        const type = r.weighted([['play_progress', 60], ['impression', 20], ['page_view', 8], ['click', 5], ['play_start', 4], ['play_end', 3]]);
        events.push(event(r, c, type, nowMs, r.int(2 * 3600 * 1000)));
      }
      break;
    }
    default:
      events = [event(r, c, kind, nowMs)];
  }
  const single = events.length === 1 && kind !== 'offline_flush';
  const body = single ? JSON.stringify(events[0]) : JSON.stringify({ events: events });
  return {
    body: body,
    events: events.length,
    kind: kind,
    contentType: single && c.platform === 'web' && r() < 0.5 ? 'text/plain;charset=UTF-8' : 'application/json',
    gzip: events.length >= 10,
  };
}

// Traffic keeps a pool of live sessions per VU: each request comes from
// one of them, and sessions end and new ones start as viewers come and go.
export function newTraffic(seed, opts) {
  const r = rng(seed);
  const size = (opts && opts.sessions) || 50;
  const clients = [];
  for (let i = 0; i < size; i++) clients.push(newClient(r, opts));
  return {
    next: function (nowMs) {
      const i = r.int(clients.length);
      if (r() < 0.02) clients[i] = newClient(r, opts);
      return request(r, clients[i], nowMs);
    },
  };
}
