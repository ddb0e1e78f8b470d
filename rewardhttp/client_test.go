package rewardhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewarddemo"
)

var w0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// clockFrom is a clock that reads at when called first and then moves with
// real time: fixture windows stay young however long after their date the
// suite runs, while backoff and MaxElapsed keep real durations.
func clockFrom(at time.Time) func() time.Time {
	start := time.Now()
	return func() time.Time { return at.Add(time.Since(start)) }
}

func sampleRequest() reward.Request {
	return reward.Request{Model: "thumbnails", WindowStart: w0, WindowEnd: w0.Add(time.Minute),
		Rewards: []reward.Reward{{ContentID: "c1", ImageVariant: "a", Platform: "web", Impressions: 3, Clicks: 1}}}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y", "localhost:8080/v1/rewards", "http://", "://"} {
		if _, err := New(u, Config{}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if c, err := New("http://127.0.0.1:8080/v1/rewards", Config{}); err != nil || c.URL() != "http://127.0.0.1:8080/v1/rewards" {
		t.Errorf("New = %v, %v", c, err)
	}
}

func TestRewardPostsJSONWithKey(t *testing.T) {
	var got struct {
		method, ctype, key, auth string
		body                     []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.ctype = r.Method, r.Header.Get("Content-Type")
		got.key, got.auth = r.Header.Get("Idempotency-Key"), r.Header.Get("Authorization")
		got.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c, err := New(srv.URL, Config{Header: http.Header{"Authorization": {"Bearer t"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reward(t.Context(), "key-1", sampleRequest()); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(sampleRequest())
	if got.method != http.MethodPost || got.ctype != "application/json" || got.key != "key-1" || got.auth != "Bearer t" || string(got.body) != string(want) {
		t.Errorf("request %+v body %s", got, got.body)
	}
}

func TestRewardClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		retryable  bool
		retryAfter time.Duration
		reason     string
	}{
		{"bad request", 400, nil, `{"error":"unknown model"}` + "\x00\n", false, 0, `{"error":"unknown model"}`},
		{"not found", 404, nil, "", false, 0, ""},
		{"throttled", 429, map[string]string{"Retry-After": "7"}, "", true, 7 * time.Second, ""},
		{"unavailable", 503, map[string]string{"Retry-After": "garbage"}, "down", true, 0, "down"},
		{"server error", 500, nil, "", true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, _ := New(srv.URL, Config{})
			err := c.Reward(t.Context(), "k", sampleRequest())
			var se *reward.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a StatusError", err)
			}
			if se.Status != tt.status || se.RetryAfter != tt.retryAfter || se.Reason != tt.reason {
				t.Errorf("StatusError %+v", se)
			}
			if reward.Retryable(err) != tt.retryable {
				t.Errorf("Retryable = %v, want %v", reward.Retryable(err), tt.retryable)
			}
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if got := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); got != 90*time.Second {
		t.Errorf("retryAfter(date) = %s", got)
	}
	if got := retryAfter(now.Add(-time.Second).Format(http.TimeFormat), now); got != 0 {
		t.Errorf("retryAfter(past) = %s", got)
	}
	if got := retryAfter("-5", now); got != 0 {
		t.Errorf("retryAfter(-5) = %s", got)
	}
}

func TestRewardTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hang(r, release)
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(srv.URL, Config{Timeout: 50 * time.Millisecond})
	err := c.Reward(t.Context(), "k", sampleRequest())
	if !errors.Is(err, context.DeadlineExceeded) || !reward.Retryable(err) {
		t.Errorf("err = %v, want a retryable deadline error", err)
	}
}

// hang never answers r: it returns once the client gave up (the server
// notices the closed connection only after the body was read) or release
// is closed, whichever comes first.
func hang(r *http.Request, release <-chan struct{}) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-release:
	}
}

// flaky fronts the demo receiver: the first calls of every key fail in
// turn with a 503, a timeout after the receiver already counted the call
// (the case idempotency keys exist for), a dropped connection and a 500;
// later calls pass.
type flaky struct {
	next    http.Handler
	release chan struct{}
	mu      sync.Mutex
	seen    map[string]int
	hits    int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	n := f.seen[key]
	f.seen[key]++
	f.hits++
	f.mu.Unlock()
	switch n {
	case 0:
		http.Error(w, "warming up", http.StatusServiceUnavailable)
	case 1:
		// Counted, but the answer never arrives in time.
		f.next.ServeHTTP(httptest.NewRecorder(), r)
		hang(r, f.release)
	case 2:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	case 3:
		http.Error(w, "oops", http.StatusInternalServerError)
	default:
		f.next.ServeHTTP(w, r)
	}
}

func TestFailingTimingOutRecoveringAPICountsEachAggregateOnce(t *testing.T) {
	rc := rewarddemo.New(rewarddemo.Config{})
	api := &flaky{next: rc.Routes(), release: make(chan struct{}), seen: make(map[string]int)}
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer close(api.release)

	client, err := New(srv.URL+"/v1/rewards", Config{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := reward.New([]reward.Endpoint{{Model: "thumbnails", Name: srv.URL, Rewarder: client}}, reward.Config{
		InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxElapsed: 20 * time.Second,
		BreakerFailures: 3, BreakerOpen: 20 * time.Millisecond,
		// The last fixture window has just closed: every aggregate is well
		// inside MaxAge, so each failure is retried, never expired.
		Now: clockFrom(w0.Add(13 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}

	const n = 12
	var aggs []aggregate.Aggregate
	want := make(map[string]rewarddemo.Counts)
	for i := range n {
		a := aggregate.Aggregate{
			ID: fmt.Sprintf("agg-%02d", i), Source: "shardId-000000000000", Chunks: 1,
			Window: aggregate.Window{Start: w0.Add(time.Duration(i) * time.Minute), End: w0.Add(time.Duration(i+1) * time.Minute)},
			Rows: []aggregate.Row{
				{ContentID: "c1", ImageVariant: "a", Platform: "web", Impressions: int64(10 + i), Clicks: int64(i % 3)},
				{ContentID: fmt.Sprintf("c%d", i%4), ImageVariant: "b", Platform: "tv", Impressions: 5, PlayStarts: 1},
			},
		}
		aggs = append(aggs, a)
		for _, r := range a.Rows {
			k := r.ContentID + "/" + r.ImageVariant + "/" + r.Platform
			c := want[k]
			c.Impressions += r.Impressions
			c.Clicks += r.Clicks
			c.PlayStarts += r.PlayStarts
			want[k] = c
		}
	}

	// Deliver concurrently, as parallel shards would, then deliver all again,
	// as a stream redelivers after a partial batch failure.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, a := range aggs {
		wg.Go(func() { errs[i] = sender.Deliver(t.Context(), a) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("aggregate %d: %v", i, err)
		}
	}
	for _, a := range aggs {
		if err := sender.Deliver(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}

	tot := rc.Totals()
	if tot.Requests != n {
		t.Errorf("receiver counted %d requests, want %d: one per idempotency key", tot.Requests, n)
	}
	// Each key: the timed-out call counted once; the successful call and the
	// redelivery were duplicates — at least: on a loaded machine a success
	// can outlast the 100 ms client timeout and be retried, one duplicate
	// more, which the idempotency key absorbs (Requests and totals above
	// and below stay exact).
	if tot.Duplicates < 2*n {
		t.Errorf("duplicates %d, want at least %d", tot.Duplicates, 2*n)
	}
	got := make(map[string]rewarddemo.Counts)
	for _, r := range tot.Rewards {
		got[r.ContentID+"/"+r.ImageVariant+"/"+r.Platform] = r.Counts
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals\n got %v\nwant %v", got, want)
	}
	st := sender.Stats()
	if st.Delivered != 2*n || st.Rejected != 0 || st.Expired != 0 {
		t.Errorf("sender stats %+v", st)
	}
	t.Logf("sender %+v, API hits %d", st, api.hits)
}
