// Package loadgen sends realistic interaction events to an ingest URL at a
// target arrival rate and measures what comes back.
//
// Traffic builds the requests: the same mix, batching, platforms and ids as
// the k6 generator in loadtest/lib/events.js, with every event written from
// its registry schema so it is one the ingest API accepts. Run paces them
// open-model: each request is due at a time fixed by the scenario's rate,
// whether or not earlier ones have been answered, and its latency counts
// from that time (coordinated-omission safe).
package loadgen

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
)

// Request kinds, the tags of loadtest/lib/events.js.
const (
	KindProgress     = "progress"
	KindImpressions  = "impressions"
	KindPageView     = "page_view"
	KindClick        = "click"
	KindPlayStart    = "play_start"
	KindPlayEnd      = "play_end"
	KindOfflineFlush = "offline_flush"
	// KindFixed is a request of TrafficConfig.EventsPerRequest events.
	KindFixed = "fixed"
)

type weighted[T any] struct {
	v T
	w int
}

// requestMix is each request kind's share of requests (events.js REQUEST_MIX).
var requestMix = []weighted[string]{
	{KindProgress, 45}, {KindImpressions, 20}, {KindPageView, 12}, {KindClick, 8},
	{KindPlayStart, 6}, {KindPlayEnd, 4}, {KindOfflineFlush, 5},
}

// offlineMix is the types an app queues while offline.
var offlineMix = []weighted[string]{
	{"play_progress", 60}, {"impression", 20}, {"page_view", 8}, {"click", 5}, {"play_start", 4}, {"play_end", 3},
}

// modelled are the types whose events the session model writes field by
// field; any other type with a load weight is generated from its schema.
var modelled = map[string]bool{"page_view": true, "impression": true, "click": true, "play_start": true, "play_progress": true, "play_end": true}

// mixes derives the request mix and the fixed-size requests' type mix from
// the schemas' x-spate-load-weight: a modelled type keeps its behavioural
// request kind, a new type is a request kind of its own with its weight.
func mixes(reg *registry.Registry) (requests, fixed, offline []weighted[string]) {
	have := map[string]bool{}
	for _, typ := range reg.Types() {
		s, _ := reg.Schema(typ)
		if s.LoadWeight <= 0 {
			continue
		}
		have[typ] = true
		fixed = append(fixed, weighted[string]{typ, s.LoadWeight})
		if !modelled[typ] {
			requests = append(requests, weighted[string]{typ, s.LoadWeight})
		}
	}
	kindType := map[string]string{KindProgress: "play_progress", KindImpressions: "impression", KindPageView: "page_view",
		KindClick: "click", KindPlayStart: "play_start", KindPlayEnd: "play_end", KindOfflineFlush: "play_progress"}
	var known []weighted[string]
	for _, k := range requestMix {
		if have[kindType[k.v]] {
			known = append(known, k)
		}
	}
	for _, o := range offlineMix {
		if have[o.v] {
			offline = append(offline, o)
		}
	}
	return append(known, requests...), fixed, offline
}

// generic fills a type the session model does not know from its schema:
// every required field, and each optional one half the time, with a valid
// value of its kind, enum and limits.
func (t *Traffic) generic(e *spate.Event) {
	s, _ := t.reg.Schema(e.Type)
	for _, c := range s.Columns {
		if c.Envelope || (!c.Required && t.rng.IntN(2) == 0) {
			continue
		}
		switch c.Kind {
		case registry.Int64:
			lo, hi := int64(0), int64(1000)
			if c.HasMin {
				lo = c.Min
			}
			if c.HasMax {
				hi = c.Max
			}
			hi = max(hi, lo)
			e.Props = append(e.Props, spate.Int(c.Name, lo+t.rng.Int64N(min(hi-lo, 1<<40)+1)))
		case registry.Bool:
			e.Props = append(e.Props, spate.Bool(c.Name, t.rng.IntN(2) == 0))
		default:
			v := c.Name + "-" + strconv.Itoa(t.rng.IntN(100))
			switch {
			case len(c.Enum) > 0:
				v = pick(t.rng, c.Enum)
			case c.Format == "uuid":
				v = t.uuid4()
			case c.MaxLen > 0 && len(v) > c.MaxLen:
				v = v[:c.MaxLen]
			}
			if v == "" {
				continue // maxLength 0: only absent is valid
			}
			e.Props = append(e.Props, spate.Str(c.Name, v))
		}
	}
}

var platformMix = []weighted[string]{{"web", 40}, {"android", 25}, {"ios", 20}, {"tv", 12}, {"other", 3}}

var appVersions = map[string][]string{
	"web":     {"2026.5.3", "2026.6.0"},
	"ios":     {"7.14.0", "7.15.1", "7.15.2"},
	"android": {"7.14.0", "7.15.0", "7.15.2"},
	"tv":      {"4.2.0", "4.3.1"},
	"other":   {"1.0.9"},
}

// ImageVariants are the thumbnail variants the bandit models choose between.
var ImageVariants = []string{"hero_a", "hero_b", "hero_c", "portrait_a", "portrait_b", "square_a"}

var (
	lists = []string{
		"front-page/recommended", "front-page/popular", "front-page/continue-watching",
		"sports/live", "sports/highlights", "news/latest", "kids/new", "series/drama",
	}
	pages      = []string{"/", "/tv", "/sports", "/news", "/kids", "/series", "/search", "/live"}
	referrers  = []string{"https://www.google.com/", "https://areena.example/", "/"}
	endReasons = []string{"completed", "stopped", "error", "navigated_away"}
)

// TrafficConfig shapes the traffic; zero values take the defaults.
type TrafficConfig struct {
	// Sessions is how many viewing sessions are live at once (default 50);
	// each request comes from one of them.
	Sessions int
	// Users is the signed-in user population (default 200,000).
	Users int
	// Catalogue is how many programmes there are (default 5,000).
	Catalogue int
	// EventsPerRequest, when positive, replaces the request mix: every
	// request carries that many events of the mix's types, one bare event
	// or an {"events":[…]} batch.
	EventsPerRequest int
}

// Request is one POST /v1/events.
type Request struct {
	Kind        string
	Body        []byte // as sent: gzipped when Gzip
	ContentType string
	Gzip        bool
	// IDs are the events' client event_ids in order, "" where the client
	// leaves the id to the server.
	IDs []string
}

// Events is how many events the request carries.
func (r *Request) Events() int { return len(r.IDs) }

// Traffic generates requests from a pool of live sessions. It is not safe
// for concurrent use; the same seed gives the same requests.
type Traffic struct {
	reg     *registry.Registry
	cfg     TrafficConfig
	rng     *rand.Rand
	clients []*client
	// The mixes, from the schemas' load weights.
	requests, fixed, offline []weighted[string]
	enc                      encoder
	gz                       *gzip.Writer
	zbuf                     bytes.Buffer
}

// NewTraffic returns a Traffic whose events are written from reg's schemas.
func NewTraffic(reg *registry.Registry, seed uint64, cfg TrafficConfig) *Traffic {
	if cfg.Sessions <= 0 {
		cfg.Sessions = 50
	}
	if cfg.Users <= 0 {
		cfg.Users = 200_000
	}
	if cfg.Catalogue <= 0 {
		cfg.Catalogue = 5000
	}
	t := &Traffic{reg: reg, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x5ba7e)), enc: encoder{reg: reg}}
	t.requests, t.fixed, t.offline = mixes(reg)
	t.clients = make([]*client, cfg.Sessions)
	for i := range t.clients {
		t.clients[i] = t.newClient()
	}
	t.gz, _ = gzip.NewWriterLevel(&t.zbuf, gzip.DefaultCompression)
	return t
}

// Next returns the next request, its events stamped around now.
func (t *Traffic) Next(now time.Time) Request {
	i := t.rng.IntN(len(t.clients))
	if t.rng.Float64() < 0.02 {
		// Viewers come and go.
		t.clients[i] = t.newClient()
	}
	return t.request(t.clients[i], now)
}

// client is one viewing session on one device.
type client struct {
	platform, appVersion         string
	sessionID, userID, anonymous string
	offset                       int // minutes east of UTC the client reports in
	watching                     *watching
	lastVariant                  string
}

type watching struct {
	contentID, variant string
	live               bool
	durationMs         int64
	positionMs         int64
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func pickWeighted[T any](r *rand.Rand, xs []weighted[T]) T {
	total := 0
	for _, x := range xs {
		total += x.w
	}
	n := r.IntN(total)
	for _, x := range xs {
		if n -= x.w; n < 0 {
			return x.v
		}
	}
	return xs[len(xs)-1].v
}

const hexDigits = "0123456789abcdef"

// uuid4 is a version 4 UUID from the traffic's own random source, so runs
// repeat per seed.
func (t *Traffic) uuid4() string {
	var b [36]byte
	hi, lo := t.rng.Uint64(), t.rng.Uint64()
	for i, n := 0, 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			b[i] = '-'
			continue
		case 14:
			b[i] = '4'
			continue
		}
		var nib uint64
		if n < 16 {
			nib = hi >> (4 * n) & 0xf
		} else {
			nib = lo >> (4 * (n - 16)) & 0xf
		}
		if i == 19 {
			nib = 8 | nib&3
		}
		b[i] = hexDigits[nib]
		n++
	}
	return string(b[:])
}

func (t *Traffic) newClient() *client {
	r := t.rng
	c := &client{platform: pickWeighted(r, platformMix), sessionID: t.uuid4()}
	c.appVersion = pick(r, appVersions[c.platform])
	if r.Float64() < 0.6 {
		c.userID = "u-" + strconv.Itoa(1_000_000+r.IntN(t.cfg.Users))
		if r.Float64() >= 0.7 {
			c.anonymous = "anon-" + t.uuid4()
		}
	} else {
		c.anonymous = "anon-" + t.uuid4()
	}
	// Browsers east of UTC sometimes report local time with an offset.
	if c.platform == "web" && r.Float64() < 0.2 {
		c.offset = 120
	}
	return c
}

// contentID skews popularity: squaring a uniform draw puts about a third
// of the views in the top tenth of the catalogue (the live final).
func (t *Traffic) contentID() string {
	u := t.rng.Float64()
	return "1-" + strconv.Itoa(50000+int(u*u*float64(t.cfg.Catalogue)))
}

func (t *Traffic) startWatching(c *client) *watching {
	r := t.rng
	w := &watching{contentID: t.contentID(), variant: c.lastVariant, live: r.Float64() < 0.25}
	if w.variant == "" {
		w.variant = pick(r, ImageVariants)
	}
	if !w.live {
		w.durationMs = int64(20+r.IntN(100)) * 60_000
		w.positionMs = r.Int64N(max(1, w.durationMs/2))
	}
	c.watching = w
	return w
}

// event builds one event of typ from c, occurring lag before now.
func (t *Traffic) event(c *client, typ string, now time.Time, lag time.Duration) clientEvent {
	r := t.rng
	e := &spate.Event{Type: typ, UserID: c.userID, AnonymousID: c.anonymous, SessionID: c.sessionID, Platform: c.platform, AppVersion: c.appVersion}
	// Most clients send their own id for deduplication; some leave it to
	// the server.
	if r.Float64() < 0.9 {
		e.EventID = t.uuid4()
	}
	if lag < 0 {
		lag = time.Duration(r.IntN(3000)) * time.Millisecond
	}
	e.OccurredAt = now.Add(-lag).Truncate(time.Millisecond)
	if r.Float64() < 0.15 {
		e.Attrs = map[string]string{"experiment": "thumbs-" + pick(r, []string{"v1", "v2", "v3"})}
		if r.Float64() < 0.5 {
			e.Attrs["network"] = pick(r, []string{"wifi", "cellular", "ethernet"})
		}
	}
	switch typ {
	case "page_view":
		e.Props = append(e.Props, spate.Str("page", pick(r, pages)))
		if r.Float64() < 0.4 {
			e.Props = append(e.Props, spate.Str("referrer", pick(r, referrers)))
		}
	case "impression":
		e.Props = append(e.Props, spate.Str("content_id", t.contentID()), spate.Str("image_variant", pick(r, ImageVariants)),
			spate.Str("list_id", pick(r, lists)), spate.Int("position", int64(r.IntN(20))))
	case "click":
		c.lastVariant = pick(r, ImageVariants)
		e.Props = append(e.Props, spate.Str("content_id", t.contentID()), spate.Str("image_variant", c.lastVariant),
			spate.Str("list_id", pick(r, lists)), spate.Int("position", int64(r.IntN(20))))
	case "play_start":
		w := t.startWatching(c)
		e.Props = append(e.Props, spate.Str("content_id", w.contentID))
		if r.Float64() < 0.8 {
			e.Props = append(e.Props, spate.Str("image_variant", w.variant))
		}
		e.Props = append(e.Props, spate.Int("position_ms", w.positionMs), spate.Bool("live", w.live))
	case "play_progress":
		w := c.watching
		if w == nil {
			w = t.startWatching(c)
		}
		w.positionMs += 30_000
		e.Props = append(e.Props, spate.Str("content_id", w.contentID), spate.Int("position_ms", w.positionMs))
		if !w.live {
			e.Props = append(e.Props, spate.Int("duration_ms", w.durationMs))
		}
	case "play_end":
		w := c.watching
		if w == nil {
			w = t.startWatching(c)
		}
		e.Props = append(e.Props, spate.Str("content_id", w.contentID), spate.Int("position_ms", w.positionMs))
		if w.live || w.positionMs < w.durationMs {
			e.Props = append(e.Props, spate.Str("reason", pick(r, endReasons)))
		} else {
			e.Props = append(e.Props, spate.Str("reason", "completed"))
		}
		c.watching = nil
	default:
		t.generic(e)
	}
	return clientEvent{Event: e, offset: c.offset}
}

func (t *Traffic) request(c *client, now time.Time) Request {
	r := t.rng
	kind := KindFixed
	var events []clientEvent
	if n := t.cfg.EventsPerRequest; n > 0 {
		for range n {
			events = append(events, t.event(c, pickWeighted(r, t.fixed), now, -1))
		}
	} else {
		kind = pickWeighted(r, t.requests)
		switch kind {
		case KindProgress:
			events = append(events, t.event(c, "play_progress", now, -1))
		case KindImpressions:
			// One shelf rendering: consecutive positions of one list.
			n, list := 5+r.IntN(16), pick(r, lists)
			for i := range n {
				e := t.event(c, "impression", now, -1)
				e.Event.Set(spate.Str("list_id", list))
				e.Event.Set(spate.Int("position", int64(i)))
				events = append(events, e)
			}
		case KindOfflineFlush:
			// Queued while offline, sent in one go: up to 50 mixed events
			// from the last two hours.
			for range 2 + r.IntN(49) {
				events = append(events, t.event(c, pickWeighted(r, t.offline), now, time.Duration(r.Int64N(int64(2*time.Hour/time.Millisecond)))*time.Millisecond))
			}
		default:
			events = append(events, t.event(c, kind, now, -1))
		}
	}
	single := len(events) == 1 && kind != KindOfflineFlush
	var body []byte
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.EventID
	}
	if single {
		body = t.enc.event(nil, events[0])
	} else {
		body = append(body, `{"events":[`...)
		for i, e := range events {
			if i > 0 {
				body = append(body, ',')
			}
			body = t.enc.event(body, e)
		}
		body = append(body, "]}"...)
	}
	req := Request{Kind: kind, Body: body, ContentType: "application/json", IDs: ids}
	if single && c.platform == "web" && r.Float64() < 0.5 {
		// navigator.sendBeacon
		req.ContentType = "text/plain;charset=UTF-8"
	}
	if len(events) >= 10 {
		req.Gzip = true
		t.zbuf.Reset()
		t.gz.Reset(&t.zbuf)
		_, _ = t.gz.Write(body)
		_ = t.gz.Close()
		req.Body = bytes.Clone(t.zbuf.Bytes())
	}
	return req
}
