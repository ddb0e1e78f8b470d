package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/registry"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// store is a sink keeping every record; fail makes it refuse them all.
type store struct {
	mu      sync.Mutex
	recs    []spate.Record
	fail    bool
	hold    chan struct{} // when set, Put blocks until it is closed
	entered chan struct{} // when set, Put signals it was called
}

func (s *store) Put(ctx context.Context, recs []spate.Record) error {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.hold != nil {
		<-s.hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return spate.ErrThrottled
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *store) events(t *testing.T) []spate.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []spate.Event
	for _, r := range s.recs {
		var e spate.Event
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatalf("stored record is not an event: %v", err)
		}
		out = append(out, e)
	}
	return out
}

type harness struct {
	srv   *httptest.Server
	store *store
	api   *ingest.Server
	prod  *batch.Producer
}

func newHarness(t *testing.T, cfg ingest.Config, pcfg batch.Config) *harness {
	t.Helper()
	st := &store{}
	if pcfg.Policy.Age == 0 {
		pcfg.Policy.Age = time.Millisecond
	}
	prod := batch.NewProducer(st, pcfg, discard)
	api := ingest.New(registry.New(registry.Limits{}), prod, cfg, discard)
	srv := httptest.NewServer(api.Routes())
	t.Cleanup(func() {
		srv.Close()
		_ = prod.Close(context.Background())
	})
	return &harness{srv: srv, store: st, api: api, prod: prod}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func (h *harness) do(t *testing.T, method, ctype, body string, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+"/v1/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := response{status: res.StatusCode, header: res.Header}
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("response body is not JSON: %q", raw)
		}
	}
	return out
}

const (
	imp   = `{"type":"impression","content_id":"c1","image_variant":"hero_a","platform":"web","anonymous_id":"a1"}`
	click = `{"type":"click","content_id":"c1","platform":"ios","user_id":"u1","session_id":"s1"}`
	bad   = `{"type":"click","platform":"ios","user_id":"u1"}`
)

func TestPostEvents(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		status, accepted  int
		rejected          []string // fields of rejections, in order
	}{
		{"single event", "application/json", imp, 202, 1, nil},
		{"batch", "application/json", `{"events":[` + imp + `,` + click + `]}`, 202, 2, nil},
		{"batch with a bad neighbour", "application/json", `{"events":[` + imp + `,` + bad + `,` + click + `]}`, 202, 2, []string{"content_id"}},
		{"ndjson", "application/x-ndjson", imp + "\n\n" + click + "\n", 202, 2, nil},
		{"ndjson with a broken line", "application/x-ndjson", imp + "\n{broken\n" + click, 202, 2, []string{""}},
		{"beacon text/plain", "text/plain;charset=UTF-8", imp, 202, 1, nil},
		{"single invalid", "application/json", bad, 400, 0, []string{"content_id"}},
		{"all invalid", "application/json", `{"events":[` + bad + `,` + bad + `]}`, 400, 0, []string{"content_id", "content_id"}},
		{"malformed", "application/json", `{"events":[`, 400, 0, nil},
		{"array body", "application/json", `[` + imp + `]`, 400, 0, nil},
		{"empty body", "application/json", ``, 400, 0, nil},
		{"empty batch", "application/json", `{"events":[]}`, 400, 0, nil},
		{"events not an array", "application/json", `{"events":{}}`, 400, 0, nil},
		{"events beside other keys", "application/json", `{"events":[` + imp + `],"type":"click"}`, 400, 0, nil},
		{"event mentioning events", "application/json", `{"type":"page_view","page":"events","platform":"web","user_id":"u"}`, 202, 1, nil},
		{"wrong content type", "application/xml", imp, 415, 0, nil},
		{"no content type", "", imp, 415, 0, nil},
		{"latin-1 charset", "application/json; charset=iso-8859-1", imp, 415, 0, nil},
		{"too many events", "application/json", `{"events":[` + strings.TrimSuffix(strings.Repeat(imp+",", 501), ",") + `]}`, 413, 0, nil},
		{"too many ndjson lines", "application/x-ndjson", strings.Repeat(imp+"\n", 501), 413, 0, nil},
		{"body over 1 MiB", "application/json", `{"type":"page_view","page":"` + strings.Repeat("x", 1<<20) + `"}`, 413, 0, nil},
	}
	h := newHarness(t, ingest.Config{}, batch.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, http.MethodPost, tt.ctype, tt.body, nil)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %v", res.status, tt.status, res.body)
			}
			if res.header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", res.header.Get("Content-Type"))
			}
			if tt.status >= 400 {
				if msg, _ := res.body["error"].(string); msg == "" {
					t.Errorf("error response without a message: %v", res.body)
				}
			}
			if tt.status == 202 {
				if got := int(res.body["accepted"].(float64)); got != tt.accepted {
					t.Errorf("accepted %d, want %d", got, tt.accepted)
				}
			}
			rej, _ := res.body["rejected"].([]any)
			if len(rej) != len(tt.rejected) {
				t.Fatalf("rejected %v, want fields %v", rej, tt.rejected)
			}
			for i, r := range rej {
				m := r.(map[string]any)
				field, _ := m["field"].(string)
				if field != tt.rejected[i] {
					t.Errorf("rejection %d names field %q, want %q", i, field, tt.rejected[i])
				}
				if msg, _ := m["error"].(string); msg == "" {
					t.Errorf("rejection %d without error text", i)
				}
			}
		})
	}
}

func TestAcceptedEventsAreStoredOnceWithServerFields(t *testing.T) {
	h := newHarness(t, ingest.Config{}, batch.Config{})
	res := h.do(t, http.MethodPost, "application/json", `{"events":[`+imp+`,`+bad+`,`+click+`]}`, nil)
	if res.status != 202 {
		t.Fatalf("status %d", res.status)
	}
	// 202 means durable: the records are in the sink already.
	evs := h.store.events(t)
	if len(evs) != 2 {
		t.Fatalf("stored %d events, want 2", len(evs))
	}
	for _, e := range evs {
		if e.EventID == "" || e.ReceivedAt.IsZero() || e.OccurredAt.IsZero() {
			t.Errorf("server fields missing: %+v", e)
		}
	}
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	keys := map[string]bool{}
	for _, r := range h.store.recs {
		keys[r.PartitionKey] = true
	}
	if !keys["s1"] {
		t.Errorf("partition keys %v: the click's session s1 should be its key", keys)
	}
}

func TestGzip(t *testing.T) {
	h := newHarness(t, ingest.Config{}, batch.Config{})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"events":[` + imp + `,` + click + `]}`))
	_ = zw.Close()
	res := h.do(t, http.MethodPost, "application/json", buf.String(), map[string]string{"Content-Encoding": "gzip"})
	if res.status != 202 || int(res.body["accepted"].(float64)) != 2 {
		t.Fatalf("gzip body: %d %v", res.status, res.body)
	}
	if res := h.do(t, http.MethodPost, "application/json", "not gzip", map[string]string{"Content-Encoding": "gzip"}); res.status != 400 {
		t.Errorf("broken gzip: %d", res.status)
	}
	if res := h.do(t, http.MethodPost, "application/json", imp, map[string]string{"Content-Encoding": "br"}); res.status != 415 {
		t.Errorf("brotli: %d", res.status)
	}
}

func TestGzipBombIsBoundedWhileReading(t *testing.T) {
	h := newHarness(t, ingest.Config{}, batch.Config{})
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 64 { // 64 MiB of zeros inflate from about 64 KiB
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	res := h.do(t, http.MethodPost, "application/json", buf.String(), map[string]string{"Content-Encoding": "gzip"})
	if res.status != 413 {
		t.Fatalf("gzip bomb: %d %v", res.status, res.body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t, ingest.Config{}, batch.Config{})
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		if res := h.do(t, m, "application/json", imp, nil); res.status != 405 {
			t.Errorf("%s: %d, want 405", m, res.status)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	h := newHarness(t, ingest.Config{APIKeys: map[string]string{"k-0123456789abcdef": "areena-web"}}, batch.Config{})
	if res := h.do(t, http.MethodPost, "application/json", imp, nil); res.status != 401 || res.body["field"] != "X-Api-Key" {
		t.Errorf("no key: %d %v", res.status, res.body)
	}
	if res := h.do(t, http.MethodPost, "application/json", imp, map[string]string{"X-Api-Key": "wrong"}); res.status != 401 {
		t.Errorf("wrong key: %d", res.status)
	}
	if res := h.do(t, http.MethodPost, "application/json", imp, map[string]string{"X-Api-Key": "k-0123456789abcdef"}); res.status != 202 {
		t.Errorf("right key: %d", res.status)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, ingest.Config{}, batch.Config{})
	res := h.do(t, http.MethodOptions, "", "", map[string]string{"Origin": "https://areena.example", "Access-Control-Request-Method": "POST"})
	if res.status != 204 || res.header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(res.header.Get("Access-Control-Allow-Headers"), "X-Api-Key") {
		t.Errorf("preflight: %d %v", res.status, res.header)
	}
	limited := newHarness(t, ingest.Config{AllowedOrigins: []string{"https://areena.example"}}, batch.Config{})
	res = limited.do(t, http.MethodPost, "text/plain", imp, map[string]string{"Origin": "https://areena.example"})
	if res.header.Get("Access-Control-Allow-Origin") != "https://areena.example" {
		t.Errorf("allowed origin: %v", res.header)
	}
	res = limited.do(t, http.MethodPost, "text/plain", imp, map[string]string{"Origin": "https://evil.example"})
	if res.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %v", res.header)
	}
}

func TestSinkFailureIs503NotAck(t *testing.T) {
	h := newHarness(t, ingest.Config{}, batch.Config{})
	h.store.fail = true
	res := h.do(t, http.MethodPost, "application/json", imp, nil)
	if res.status != 503 || res.header.Get("Retry-After") == "" {
		t.Fatalf("sink down: %d %v", res.status, res.header)
	}
}

func TestShedsWhenBufferFull(t *testing.T) {
	h := newHarness(t, ingest.Config{}, batch.Config{MaxRecords: 1, Policy: batch.Policy{Count: 1}})
	h.store.hold = make(chan struct{})
	h.store.entered = make(chan struct{}, 1)
	first := make(chan response, 1)
	go func() { first <- h.do(t, http.MethodPost, "application/json", imp, nil) }()
	// The first request occupies the whole buffer until the sink is released.
	<-h.store.entered
	res := h.do(t, http.MethodPost, "application/json", click, nil)
	if res.status != 503 || res.header.Get("Retry-After") != "1" {
		t.Errorf("full buffer: %d %v", res.status, res.header)
	}
	close(h.store.hold)
	if r := <-first; r.status != 202 {
		t.Errorf("first request: %d", r.status)
	}
	if snap := h.api.Stats().Snapshot(); snap.Requests[503] != 1 || snap.Accepted != 1 {
		t.Errorf("stats %+v", snap)
	}
}

func TestReadiness(t *testing.T) {
	var notReady atomic.Bool
	h := newHarness(t, ingest.Config{Ready: func() bool { return !notReady.Load() }}, batch.Config{})
	get := func(path string) int {
		res, err := h.srv.Client().Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 200 {
		t.Fatal("not healthy and ready at start")
	}
	notReady.Store(true)
	if get("/readyz") != 503 {
		t.Error("ready with no sink")
	}
	notReady.Store(false)
	h.api.Drain()
	if get("/readyz") != 503 || get("/healthz") != 200 {
		t.Error("draining should be not ready but alive")
	}
}
