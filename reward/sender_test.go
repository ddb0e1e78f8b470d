package reward

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
)

var winStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func agg(id string) aggregate.Aggregate {
	return aggregate.Aggregate{
		ID: id, Source: "shardId-000000000000",
		Window: aggregate.Window{Start: winStart, End: winStart.Add(time.Minute)},
		Chunks: 1,
		Rows: []aggregate.Row{
			{ContentID: "c1", ImageVariant: "a", Platform: "web", Impressions: 10, Clicks: 2, PlayStarts: 1},
			{ContentID: "c1", ImageVariant: "b", Platform: "web", Impressions: 9},
		},
	}
}

// script is a fake reward API answering from a list, then with ok.
type script struct {
	mu      sync.Mutex
	answers []error
	calls   []string // idempotency keys, in order
	reqs    []Request
	times   []time.Time
}

func (s *script) Reward(_ context.Context, key string, req Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, key)
	s.reqs = append(s.reqs, req)
	s.times = append(s.times, time.Now())
	if len(s.answers) == 0 {
		return nil
	}
	err := s.answers[0]
	s.answers = s.answers[1:]
	return err
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

type letters struct {
	mu   sync.Mutex
	got  []Letter
	fail error
}

func (l *letters) DeadLetter(_ context.Context, x Letter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	l.got = append(l.got, x)
	return nil
}

// newSender builds a Sender for the fixtures. Without a Now of the test's
// own, its clock starts just after the fixture window ends and moves with
// the (synctest or real) clock: MaxAge is then measured from the fixtures,
// never from the day the suite happens to run on, nor from synctest's
// epoch in 2000, which lies before the window and hides expiry altogether.
func newSender(t *testing.T, cfg Config, eps ...Endpoint) *Sender {
	t.Helper()
	if cfg.Now == nil {
		start := time.Now()
		cfg.Now = func() time.Time { return winStart.Add(2 * time.Minute).Add(time.Since(start)) }
	}
	s, err := New(eps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRequestJSONContract(t *testing.T) {
	raw, err := json.Marshal(NewRequest("thumbnails", agg("a1")))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"thumbnails","window_start":"2026-11-27T12:00:00.000Z","window_end":"2026-11-27T12:01:00.000Z","rewards":[` +
		`{"content_id":"c1","image_variant":"a","platform":"web","impressions":10,"clicks":2,"play_starts":1},` +
		`{"content_id":"c1","image_variant":"b","platform":"web","impressions":9,"clicks":0,"play_starts":0}]}`
	if string(raw) != want {
		t.Errorf("request\n got %s\nwant %s", raw, want)
	}
	var back Request
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Model != "thumbnails" || !back.WindowStart.Equal(winStart) || len(back.Rewards) != 2 || back.Rewards[0].Clicks != 2 {
		t.Errorf("round trip %+v", back)
	}
	empty, _ := json.Marshal(Request{Model: "m", WindowStart: winStart, WindowEnd: winStart})
	if !strings.Contains(string(empty), `"rewards":[]`) {
		t.Errorf("no rewards encodes as %s, want an empty array", empty)
	}
}

func TestIdempotencyKey(t *testing.T) {
	k := IdempotencyKey("agg-1", "thumbnails")
	if k != IdempotencyKey("agg-1", "thumbnails") {
		t.Error("key not deterministic")
	}
	for _, other := range []string{IdempotencyKey("agg-2", "thumbnails"), IdempotencyKey("agg-1", "other"), IdempotencyKey("agg-1t", "humbnails")} {
		if other == k {
			t.Errorf("key collision: %s", other)
		}
	}
	if len(k) != 32 {
		t.Errorf("key %q: want 32 hex characters", k)
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("connection refused"), true},
		{context.DeadlineExceeded, true},
		{&StatusError{Status: 500}, true},
		{&StatusError{Status: 503}, true},
		{&StatusError{Status: 429}, true},
		{&StatusError{Status: 408}, true},
		{&StatusError{Status: 400}, false},
		{&StatusError{Status: 404}, false},
		{&StatusError{Status: 422}, false},
	}
	for _, tt := range tests {
		if got := Retryable(tt.err); got != tt.want {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(nil, Config{}); err == nil {
		t.Error("no endpoints accepted")
	}
	if _, err := New([]Endpoint{{Model: "m"}}, Config{}); err == nil {
		t.Error("endpoint without rewarder accepted")
	}
	if _, err := New([]Endpoint{{Rewarder: &script{}}}, Config{}); err == nil {
		t.Error("endpoint without model accepted")
	}
}

func TestRetriesServerErrorsWithTheSameKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &script{answers: []error{&StatusError{Status: 503}, errors.New("timeout"), &StatusError{Status: 500}}}
		dl := &letters{}
		s := newSender(t, Config{DeadLetters: dl}, Endpoint{Model: "thumbnails", Rewarder: api})
		if err := s.Deliver(t.Context(), agg("a1")); err != nil {
			t.Fatal(err)
		}
		if api.count() != 4 {
			t.Fatalf("%d calls, want 4 (3 failures, then success)", api.count())
		}
		want := IdempotencyKey("a1", "thumbnails")
		for i, k := range api.calls {
			if k != want {
				t.Errorf("call %d key %s, want %s", i, k, want)
			}
		}
		for i := 1; i < len(api.times); i++ {
			if gap := api.times[i].Sub(api.times[i-1]); gap < 100*time.Millisecond {
				t.Errorf("attempt %d only %s after the previous: no backoff", i, gap)
			}
		}
		if st := s.Stats(); st.Delivered != 1 || st.Attempts != 4 || st.Rejected != 0 {
			t.Errorf("stats %+v", st)
		}
		if len(dl.got) != 0 {
			t.Errorf("dead letters %+v", dl.got)
		}
	})
}

func TestRefusalIsDeadLetteredWithoutRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &script{answers: []error{&StatusError{Status: 422, Reason: "unknown model"}}}
		dl := &letters{}
		s := newSender(t, Config{DeadLetters: dl}, Endpoint{Model: "thumbnails", Name: "https://api/rewards", Rewarder: api})
		if err := s.Deliver(t.Context(), agg("a1")); err != nil {
			t.Fatalf("Deliver = %v, want nil: a refusal is final", err)
		}
		if api.count() != 1 {
			t.Errorf("%d calls, want 1", api.count())
		}
		if len(dl.got) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dl.got))
		}
		l := dl.got[0]
		if l.Status != 422 || !strings.Contains(l.Reason, "unknown model") || l.Endpoint != "https://api/rewards" ||
			l.AggregateID != "a1" || l.IdempotencyKey != IdempotencyKey("a1", "thumbnails") || l.Request == nil || len(l.Request.Rewards) != 2 {
			t.Errorf("letter %+v", l)
		}
		if st := s.Stats(); st.Rejected != 1 || st.Delivered != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &script{answers: []error{&StatusError{Status: 429, RetryAfter: 3 * time.Second}}}
		s := newSender(t, Config{}, Endpoint{Model: "m", Rewarder: api})
		if err := s.Deliver(t.Context(), agg("a1")); err != nil {
			t.Fatal(err)
		}
		if gap := api.times[1].Sub(api.times[0]); gap != 3*time.Second {
			t.Errorf("retried after %s, want the API's 3s", gap)
		}
	})
}

func TestGivesUpAfterMaxElapsedThenCallerRedelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := make([]error, 1000)
		for i := range down {
			down[i] = &StatusError{Status: 502}
		}
		api := &script{answers: down}
		dl := &letters{}
		now := winStart.Add(2 * time.Minute)
		s := newSender(t, Config{DeadLetters: dl, MaxElapsed: 10 * time.Second, BreakerFailures: 1000, Now: func() time.Time { return now }},
			Endpoint{Model: "m", Rewarder: api})
		start := time.Now()
		err := s.Deliver(t.Context(), agg("a1"))
		if err == nil {
			t.Fatal("Deliver succeeded against a dead API")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Deliver took %s, over MaxElapsed", d)
		}
		if len(dl.got) != 0 {
			t.Errorf("dead-lettered before MaxAge: %+v", dl.got)
		}
		if st := s.Stats(); st.Failed != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestExpiredAggregateIsDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := RewarderFunc(func(context.Context, string, Request) error { return &StatusError{Status: 503} })
		dl := &letters{}
		now := winStart.Add(time.Minute + 2*time.Hour)
		s := newSender(t, Config{DeadLetters: dl, MaxElapsed: time.Second, Now: func() time.Time { return now }},
			Endpoint{Model: "m", Rewarder: api})
		if err := s.Deliver(t.Context(), agg("a1")); err != nil {
			t.Fatalf("Deliver = %v, want nil after dead-lettering an expired aggregate", err)
		}
		if len(dl.got) != 1 || !strings.HasPrefix(dl.got[0].Reason, "expired") || dl.got[0].Status != 503 {
			t.Fatalf("letters %+v", dl.got)
		}
		if st := s.Stats(); st.Expired != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestDeadLetterFailureKeepsTheAggregate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &script{answers: []error{&StatusError{Status: 400}}}
		s := newSender(t, Config{DeadLetters: &letters{fail: errors.New("sqs down")}}, Endpoint{Model: "m", Rewarder: api})
		err := s.Deliver(t.Context(), agg("a1"))
		if err == nil || !strings.Contains(err.Error(), "sqs down") {
			t.Errorf("Deliver = %v, want the dead-letter failure", err)
		}
	})
}

func TestBreakerOpensPerEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		healthy := false
		deadCalls := 0
		dead := RewarderFunc(func(context.Context, string, Request) error {
			mu.Lock()
			defer mu.Unlock()
			deadCalls++
			if healthy {
				return nil
			}
			return &StatusError{Status: 503}
		})
		good := &script{}
		s := newSender(t, Config{BreakerFailures: 3, BreakerOpen: time.Minute, MaxElapsed: 20 * time.Second, InitialBackoff: time.Second, MaxBackoff: time.Second},
			Endpoint{Model: "m", Name: "dead", Rewarder: dead}, Endpoint{Model: "m", Name: "good", Rewarder: good})

		if err := s.Deliver(t.Context(), agg("a1")); err == nil || !strings.Contains(err.Error(), "dead") {
			t.Fatalf("Deliver = %v, want the dead endpoint's failure", err)
		}
		mu.Lock()
		calls := deadCalls
		mu.Unlock()
		// 3 calls trip the breaker; the remaining ~17 s of retries are
		// refused without calling the API.
		if calls != 3 {
			t.Errorf("dead endpoint called %d times, want 3 before the breaker opened", calls)
		}
		st := s.Stats()
		if st.BreakerShort == 0 {
			t.Errorf("no attempts refused by the breaker: %+v", st)
		}
		if good.count() != 1 {
			t.Errorf("good endpoint called %d times, want 1: its breaker is its own", good.count())
		}

		// The API recovers; once the breaker's open period passes, a probe
		// goes through and the aggregate is delivered, same key.
		mu.Lock()
		healthy = true
		mu.Unlock()
		time.Sleep(time.Minute) // advances the bubble's fake clock only
		if err := s.Deliver(t.Context(), agg("a1")); err != nil {
			t.Fatal(err)
		}
		if good.count() != 2 || good.calls[0] != good.calls[1] {
			t.Errorf("redelivery to the good endpoint: %v, want the same key twice", good.calls)
		}
	})
}

func TestCancelledContextStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := RewarderFunc(func(context.Context, string, Request) error { return &StatusError{Status: 503} })
		dl := &letters{}
		now := winStart.Add(3 * time.Hour) // expired, but cancellation must not dead-letter
		s := newSender(t, Config{DeadLetters: dl, Now: func() time.Time { return now }}, Endpoint{Model: "m", Rewarder: api})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := s.Deliver(ctx, agg("a1")); err == nil {
			t.Fatal("Deliver succeeded")
		}
		if len(dl.got) != 0 {
			t.Errorf("dead-lettered on cancellation: %+v", dl.got)
		}
	})
}

func TestDiscardAndSinkLetters(t *testing.T) {
	var got []spate.Record
	sink := spate.SinkFunc(func(_ context.Context, recs []spate.Record) error {
		got = append(got, recs...)
		return nil
	})
	s := newSender(t, Config{DeadLetters: SinkLetters(sink)}, Endpoint{Model: "m", Rewarder: &script{}})
	if err := s.Discard(t.Context(), []byte("{garbage"), "bad json"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PartitionKey != "undecodable" {
		t.Fatalf("records %+v", got)
	}
	var l Letter
	if err := json.Unmarshal(got[0].Data, &l); err != nil {
		t.Fatal(err)
	}
	if string(l.Raw) != "{garbage" || !strings.Contains(l.Reason, "bad json") {
		t.Errorf("letter %+v", l)
	}
	if s.Stats().Undecodable != 1 {
		t.Errorf("stats %+v", s.Stats())
	}
}

// FuzzRequestJSON fuzzes the request decoder receivers use: whatever it
// accepts re-encodes to a request that decodes the same.
func FuzzRequestJSON(f *testing.F) {
	raw, _ := json.Marshal(NewRequest("thumbnails", agg("a1")))
	f.Add(raw)
	f.Add([]byte(`{"model":"m","window_start":"2026-11-27T12:00:00+02:00","window_end":"2026-11-27T12:01:00.5Z","rewards":null}`))
	f.Add([]byte(`{"window_start":1}`))
	f.Add([]byte(`{"model":"m","window_start":"0000-01-01T00:00:00+01:00","window_end":"9999-12-31T23:59:59-01:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal %+v: %v", r, err)
		}
		var back Request
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(out) {
			t.Fatalf("unstable\n%s\n%s", out, again)
		}
	})
}
