package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/registry"
)

// fakeClock is time that moves only when the test moves it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
	// set receives the deadline of every timer set in the future, so a
	// test knows what the runner waits for.
	set chan time.Time
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

var epoch = time.Date(2026, 6, 2, 18, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock {
	return &fakeClock{now: epoch, timers: map[*fakeTimer]bool{}, set: make(chan time.Time, 1<<16)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(at time.Time) (<-chan time.Time, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	if !at.After(f.now) {
		c <- f.now
		return c, func() {}
	}
	ft := &fakeTimer{at: at, c: c}
	f.timers[ft] = true
	f.set <- at
	return c, func() {
		f.mu.Lock()
		delete(f.timers, ft)
		f.mu.Unlock()
	}
}

func (f *fakeClock) advance(to time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = to
	for ft := range f.timers {
		if !ft.at.After(to) {
			ft.c <- to
			delete(f.timers, ft)
		}
	}
}

// waitTimer blocks until someone sets a timer for at; false if done
// closes first.
func (f *fakeClock) waitTimer(at time.Time, done <-chan struct{}) bool {
	for {
		select {
		case t := <-f.set:
			if t.Equal(at) {
				return true
			}
		case <-done:
			return false
		}
	}
}

func accept(w http.ResponseWriter, events int) {
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d,"rejected":[]}`, events)
}

// TestCoordinatedOmission stalls the server on the first request while
// more fall due. With one slot and a backlog of four, four requests wait
// and five are dropped; each latency counts from when the request was due,
// so the stall shows in every one of them, not only in the first.
func TestCoordinatedOmission(t *testing.T) {
	clk := newFakeClock()
	arrived := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		first := requests == 1
		mu.Unlock()
		if first {
			close(arrived)
			<-release
		}
		accept(w, 1)
	}))
	defer srv.Close()

	cfg := Config{
		URL:         srv.URL,
		Scenario:    Scenario{Name: "steady", Profile: Constant(100, 100*time.Millisecond), Limits: Limits{ErrorRate: 0.001, Share503: 0.001, P99: 50 * time.Millisecond}},
		MaxInFlight: 1, Backlog: 4, Timeout: 10 * time.Second,
		Traffic: TrafficConfig{EventsPerRequest: 1},
		clock:   clk,
	}
	type ran struct {
		res *Result
		err error
	}
	out := make(chan ran, 1)
	done := make(chan struct{})
	go func() {
		res, err := Run(context.Background(), cfg)
		out <- ran{res, err}
		close(done)
	}()
	<-arrived
	if !clk.waitTimer(epoch.Add(10*time.Millisecond), done) {
		t.Fatal("run ended before the second request was due")
	}
	// 150 ms pass with the first request unanswered: requests 1 to 9 fall
	// due meanwhile.
	clk.advance(epoch.Add(150 * time.Millisecond))
	// The schedule is over once the runner waits for its drain deadline.
	if !clk.waitTimer(epoch.Add(100*time.Millisecond+cfg.Timeout), done) {
		t.Fatal("run ended before draining")
	}
	close(release)
	r := <-out
	if r.err != nil {
		t.Fatal(r.err)
	}
	res := r.res
	want := Requests{Scheduled: 10, Sent: 5, Answered: 5, Queued: 4, Dropped: 5}
	if res.Requests != want {
		t.Errorf("requests %+v, want %+v", res.Requests, want)
	}
	// Due at 0, 10, 20, 30, 40 ms, all answered at 150 ms.
	if res.Latency.Max != 150 {
		t.Errorf("max latency %v ms, want 150 (the stall, from when the first was due)", res.Latency.Max)
	}
	if res.Latency.P50 < 128 || res.Latency.P50 > 132 {
		t.Errorf("p50 %v ms, want 130 (the third of 110..150), within bucket precision", res.Latency.P50)
	}
	if res.StartLag.Max != 140 {
		t.Errorf("start lag max %v ms, want 140 (due at 10 ms, sent at 150)", res.StartLag.Max)
	}
	if res.Status["202"] != 5 || res.Events.Accepted != 5 {
		t.Errorf("status %v, accepted %d", res.Status, res.Events.Accepted)
	}
	for _, c := range res.Thresholds {
		if wantOK := c.Name == "share_503"; c.OK != wantOK {
			t.Errorf("threshold %s: ok %v, want %v", c.Name, c.OK, wantOK)
		}
	}
	if res.Seconds != 0.1 || len(res.Windows) != 1 || res.Windows[0].Failed != 5 || res.Windows[0].Verdict != "errors" {
		t.Errorf("seconds %v, windows %+v", res.Seconds, res.Windows)
	}
}

// TestBreakpointAborts has a server that sheds everything: the third
// failing window in a row stops the ramp long before its end.
func TestBreakpointAborts(t *testing.T) {
	clk := newFakeClock()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	sc, err := NewScenario("breakpoint", 100, 200, 10*time.Second, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{URL: srv.URL, Scenario: sc, Window: time.Second, Timeout: time.Second, clock: clk}
	out := make(chan *Result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Error(err)
		}
		out <- res
	}()
	// Step through the schedule request by request until the run stops.
	for i := 1; ; i++ {
		at, ok := sc.Profile.Arrival(i)
		if !ok || !clk.waitTimer(epoch.Add(at), done) {
			break
		}
		clk.advance(epoch.Add(at))
	}
	<-done
	res := <-out
	if res == nil {
		t.FailNow()
	}
	bp := res.Breakpoint
	if bp == nil || !bp.Broke || bp.At != 0 || bp.Reason != "errors" || bp.Rate != 0 {
		t.Fatalf("breakpoint %+v, want broken from the first window", bp)
	}
	if total := int64(sc.Profile.Count(sc.Profile.Duration())); res.Requests.Scheduled >= total/2 || res.Requests.Scheduled < 200 {
		t.Errorf("%d of %d requests scheduled: want the run stopped after its third window", res.Requests.Scheduled, total)
	}
	if res.Status["503"] != res.Requests.Answered || res.Status["503"] == 0 {
		t.Errorf("status %v, answered %d", res.Status, res.Requests.Answered)
	}
}

func TestJudge(t *testing.T) {
	l := Limits{ErrorRate: 0.01, Share503: 0.005, P99: 100 * time.Millisecond}
	fast := func(n int) *windowStats {
		w := &windowStats{ok: int64(n)}
		for range n {
			w.latency.Record(10 * time.Millisecond)
		}
		return w
	}
	for _, tc := range []struct {
		name string
		n    int64
		w    *windowStats
		want string
	}{
		{"empty", 0, &windowStats{}, ""},
		{"all fast", 1000, fast(1000), ""},
		{"one slow in a hundred", 100, func() *windowStats { w := fast(99); w.latency.Record(time.Second); w.ok++; return w }(), ""},
		{"two slow in a hundred", 100, func() *windowStats {
			w := fast(98)
			w.latency.Record(time.Second)
			w.latency.Record(time.Second)
			w.ok += 2
			return w
		}(), "p99"},
		{"two unanswered in a hundred", 100, fast(98), "p99"},
		{"errors", 100, func() *windowStats { w := fast(98); w.failed = 2; return w }(), "errors"},
		{"dropped count as errors", 100, func() *windowStats { w := fast(98); w.dropped = 2; return w }(), "errors"},
		{"503s", 1000, func() *windowStats {
			w := fast(994)
			w.s503, w.failed = 6, 6
			for range 6 {
				w.latency.Record(time.Millisecond)
			}
			return w
		}(), "503s"},
	} {
		if got := judge(tc.n, tc.w, l); got != tc.want {
			t.Errorf("%s: judge = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// stubProducer makes every submitted record durable at once and keeps it.
type stubProducer struct {
	mu   sync.Mutex
	recs []spate.Record
}

func (p *stubProducer) Submit(recs []spate.Record) (*batch.Ticket, error) {
	p.mu.Lock()
	p.recs = append(p.recs, recs...)
	p.mu.Unlock()
	return batch.Resolved(), nil
}

// TestRunAgainstIngest drives the real ingest handler: every request is
// accepted whole, and the ids written are exactly the stored events' ids
// that came from the client.
func TestRunAgainstIngest(t *testing.T) {
	reg := registry.New(registry.Limits{})
	prod := &stubProducer{}
	srv := httptest.NewServer(ingest.New(reg, prod, ingest.Config{}, slog.New(slog.DiscardHandler)).Routes())
	defer srv.Close()
	sc, err := NewScenario("steady", 400, 0, 500*time.Millisecond, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ids bytes.Buffer
	res, err := Run(context.Background(), Config{URL: srv.URL + "/", Scenario: sc, Seed: 9, IDs: &ids})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests.Scheduled != 200 || res.Status["202"] != 200 || res.Events.Rejected != 0 {
		t.Fatalf("requests %+v, status %v, events %+v", res.Requests, res.Status, res.Events)
	}
	if res.Events.Accepted != int64(len(prod.recs)) || res.Events.Sent != res.Events.Accepted {
		t.Errorf("events %+v, %d stored", res.Events, len(prod.recs))
	}
	stored := map[string]int{}
	for _, rec := range prod.recs {
		var e spate.Event
		if err := json.Unmarshal(rec.Data, &e); err != nil {
			t.Fatal(err)
		}
		stored[e.EventID]++
	}
	written := 0
	sc2 := bufio.NewScanner(&ids)
	for sc2.Scan() {
		if stored[sc2.Text()] != 1 {
			t.Errorf("id %s written, stored %d times", sc2.Text(), stored[sc2.Text()])
		}
		written++
	}
	if int64(written) != res.IDs || res.IDs+res.Events.ServerIDs != res.Events.Accepted || res.Events.ServerIDs == 0 {
		t.Errorf("%d ids written (reported %d), %d server-assigned, %d accepted", written, res.IDs, res.Events.ServerIDs, res.Events.Accepted)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil || !strings.Contains(table.String(), "202: 200") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
}

// TestRejectedNotWritten: events a 202 lists as rejected are not
// acknowledged, so their ids stay out of the file.
func TestRejectedNotWritten(t *testing.T) {
	var first []string
	reg := registry.New(registry.Limits{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"accepted":19,"rejected":[{"index":0,"error":"nope"}]}`)
	}))
	defer srv.Close()
	// The same seed makes the same first request: learn its ids.
	first = NewTraffic(reg, 5, TrafficConfig{EventsPerRequest: 20}).Next(time.Now()).IDs
	var ids bytes.Buffer
	sc := Scenario{Name: "steady", Profile: Constant(1, time.Second), Limits: Limits{P99: time.Second}}
	res, err := Run(context.Background(), Config{URL: srv.URL, Scenario: sc, Seed: 5, Traffic: TrafficConfig{EventsPerRequest: 20}, IDs: &ids, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events.Rejected != 1 || res.Events.Accepted != 19 {
		t.Fatalf("events %+v", res.Events)
	}
	got := ids.String()
	if first[0] != "" && strings.Contains(got, first[0]) {
		t.Errorf("rejected event's id %s written", first[0])
	}
	for _, id := range first[1:] {
		if id != "" && !strings.Contains(got, id+"\n") {
			t.Errorf("accepted id %s not written", id)
		}
	}
}

// TestStopsBySelf: a server that never answers cannot keep the run going
// past the request timeout, and the requests count as timeouts.
func TestStopsBySelf(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	sc := Scenario{Name: "steady", Profile: Constant(50, 100*time.Millisecond), Limits: Limits{P99: time.Millisecond}}
	res, err := Run(context.Background(), Config{URL: srv.URL, Scenario: sc, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status[errTimeout]+res.Requests.Unfinished != res.Requests.Scheduled || res.Requests.Scheduled != 5 {
		t.Errorf("requests %+v, status %v", res.Requests, res.Status)
	}
	if res.OK() {
		t.Error("thresholds passed with no answers")
	}
}

func TestRunRejectsConfig(t *testing.T) {
	sc := Scenario{Profile: Constant(1, time.Second)}
	for _, cfg := range []Config{
		{URL: "127.0.0.1:8080", Scenario: sc},
		{URL: "ftp://x", Scenario: sc},
		{URL: "http://127.0.0.1:1"},
		{URL: "http://127.0.0.1:1", Scenario: Scenario{Profile: Constant(0, time.Second)}},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) accepted", cfg)
		}
	}
}

// TestInterrupted: cancelling the context ends the run at once with what
// it has.
func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(cancel)
		accept(w, 1)
	}))
	defer srv.Close()
	sc := Scenario{Name: "soak", Profile: Constant(100, time.Hour), Limits: Limits{P99: time.Second}}
	res, err := Run(ctx, Config{URL: srv.URL, Scenario: sc, Traffic: TrafficConfig{EventsPerRequest: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Requests.Scheduled >= 360_000 || res.Seconds >= 3600 {
		t.Errorf("interrupted %v after %v s, %d scheduled", res.Interrupted, res.Seconds, res.Requests.Scheduled)
	}
}
