package loadgen_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/loadgen"
	"github.com/spate-dev/spate/registry"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// events splits a request's body into its events' raw JSON, as ingest
// reads it: gunzip, then one bare event or {"events":[…]}.
func events(t *testing.T, req loadgen.Request) (raws []json.RawMessage, batched bool) {
	t.Helper()
	body := req.Body
	if req.Gzip {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, body)
	}
	if evs, ok := probe["events"]; ok {
		if err := json.Unmarshal(evs, &raws); err != nil {
			t.Fatalf("events: %v", err)
		}
		return raws, true
	}
	return []json.RawMessage{body}, false
}

// TestTrafficValid checks that every generated event is one ingest
// accepts, that the ids reported match the bodies, and that the traffic
// covers every type, every column of every type, and every request shape.
func TestTrafficValid(t *testing.T) {
	reg := registry.New(registry.Limits{})
	now := time.Date(2026, 6, 2, 19, 30, 0, 0, time.UTC)
	tr := loadgen.NewTraffic(reg, 7, loadgen.TrafficConfig{})
	seenCol := map[string]map[string]bool{}
	for _, typ := range reg.Types() {
		seenCol[typ] = map[string]bool{}
	}
	kinds := map[string]int{}
	var beacons, gzipped, batches, serverIDs, total int
	const n = 3000
	for range n {
		req := tr.Next(now)
		kinds[req.Kind]++
		raws, batched := events(t, req)
		if len(raws) != req.Events() {
			t.Fatalf("%s: %d events in body, %d ids", req.Kind, len(raws), req.Events())
		}
		if req.Gzip != (len(raws) >= 10) {
			t.Errorf("%s with %d events: gzip %v", req.Kind, len(raws), req.Gzip)
		}
		if batched {
			batches++
		}
		if batched == (req.Kind == loadgen.KindProgress || req.Kind == loadgen.KindPageView || req.Kind == loadgen.KindClick || req.Kind == loadgen.KindPlayStart || req.Kind == loadgen.KindPlayEnd) {
			t.Errorf("%s: batched %v", req.Kind, batched)
		}
		switch req.ContentType {
		case "application/json":
		case "text/plain;charset=UTF-8":
			beacons++
			if batched {
				t.Errorf("beacon with a batch")
			}
		default:
			t.Errorf("content type %q", req.ContentType)
		}
		if req.Gzip {
			gzipped++
		}
		switch req.Kind {
		case loadgen.KindImpressions:
			if len(raws) < 5 || len(raws) > 20 {
				t.Errorf("shelf of %d impressions", len(raws))
			}
		case loadgen.KindOfflineFlush:
			if len(raws) < 2 || len(raws) > 50 {
				t.Errorf("offline flush of %d events", len(raws))
			}
		}
		for i, raw := range raws {
			total++
			if bytes.Contains(raw, []byte(`"received_at"`)) {
				t.Fatalf("client event carries received_at: %s", raw)
			}
			e, err := reg.Decode(raw, now)
			if err != nil {
				t.Fatalf("generated event rejected: %v\n%s", err, raw)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				t.Fatal(err)
			}
			if id := req.IDs[i]; id == "" {
				serverIDs++
				if _, ok := fields["event_id"]; ok {
					t.Errorf("id reported empty but body has one: %s", raw)
				}
			} else if id != e.EventID || !uuid4.MatchString(id) {
				t.Errorf("id %q reported, %q in body", id, e.EventID)
			}
			for name := range fields {
				seenCol[e.Type][name] = true
			}
		}
	}
	for typ, seen := range seenCol {
		s, _ := reg.Schema(typ)
		for _, c := range s.Columns {
			if c.Name != "received_at" && !seen[c.Name] {
				t.Errorf("%s: column %s never generated", typ, c.Name)
			}
		}
	}
	// The mix of loadtest/lib/events.js, by share of requests.
	for kind, pct := range map[string]float64{"progress": 45, "impressions": 20, "page_view": 12, "click": 8, "play_start": 6, "play_end": 4, "offline_flush": 5} {
		if got := 100 * float64(kinds[kind]) / n; math.Abs(got-pct) > 2 {
			t.Errorf("%s: %.1f %% of requests, want about %.0f %%", kind, got, pct)
		}
	}
	if share := float64(serverIDs) / float64(total); share < 0.07 || share > 0.13 {
		t.Errorf("%.3f of events without a client id, want about 0.1", share)
	}
	if beacons == 0 || gzipped == 0 || batches == 0 {
		t.Errorf("beacons %d, gzipped %d, batches %d: every shape should occur", beacons, gzipped, batches)
	}
}

func TestTrafficEventsPerRequest(t *testing.T) {
	reg := registry.New(registry.Limits{})
	now := time.Now()
	for _, per := range []int{1, 20} {
		tr := loadgen.NewTraffic(reg, 1, loadgen.TrafficConfig{EventsPerRequest: per})
		types := map[string]bool{}
		for range 300 {
			req := tr.Next(now)
			raws, batched := events(t, req)
			if len(raws) != per || batched != (per > 1) || req.Kind != loadgen.KindFixed {
				t.Fatalf("events-per-request %d: got %d events, batched %v, kind %s", per, len(raws), batched, req.Kind)
			}
			for _, raw := range raws {
				e, err := reg.Decode(raw, now)
				if err != nil {
					t.Fatalf("rejected: %v\n%s", err, raw)
				}
				types[e.Type] = true
			}
		}
		if len(types) != len(reg.Types()) {
			t.Errorf("events-per-request %d: types %v, want all of %v", per, types, reg.Types())
		}
	}
}

func TestTrafficRepeatsPerSeed(t *testing.T) {
	reg := registry.New(registry.Limits{})
	now := time.Date(2026, 6, 2, 19, 30, 0, 0, time.UTC)
	a, b, c := loadgen.NewTraffic(reg, 3, loadgen.TrafficConfig{}), loadgen.NewTraffic(reg, 3, loadgen.TrafficConfig{}), loadgen.NewTraffic(reg, 4, loadgen.TrafficConfig{})
	same := true
	for range 200 {
		ra, rb, rc := a.Next(now), b.Next(now), c.Next(now)
		if !bytes.Equal(ra.Body, rb.Body) || strings.Join(ra.IDs, ",") != strings.Join(rb.IDs, ",") {
			t.Fatal("same seed, different traffic")
		}
		same = same && bytes.Equal(ra.Body, rc.Body)
	}
	if same {
		t.Error("different seeds, same traffic")
	}
}
