package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/memstream"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewarddemo"
)

type rewardsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *rewardsClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *rewardsClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var rewardsT0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// rewardsEvent is the canonical JSON of one interaction.
func rewardsEvent(typ, content, variant, session string) spate.Record {
	e := spate.Event{Type: typ, EventID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", OccurredAt: rewardsT0, ReceivedAt: rewardsT0,
		SessionID: session, Platform: "web", ContentID: content, ImageVariant: variant}
	return spate.Record{PartitionKey: session, Data: e.AppendJSON(nil)}
}

// rewardsSent tallies what a test sends, as the receiver should total it.
type rewardsSent map[string]rewarddemo.Counts

func (s rewardsSent) add(typ, content, variant string) {
	k := content + "/" + variant + "/web"
	c := s[k]
	switch typ {
	case "impression":
		c.Impressions++
	case "click":
		c.Clicks++
	case "play_start":
		c.PlayStarts++
	default:
		return
	}
	s[k] = c
}

func rewardsTotals(t *testing.T, h http.Handler) (rewarddemo.Totals, map[string]rewarddemo.Counts) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/rewards/totals", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET totals: %d %s", w.Code, w.Body)
	}
	var tot rewarddemo.Totals
	if err := json.Unmarshal(w.Body.Bytes(), &tot); err != nil {
		t.Fatal(err)
	}
	got := map[string]rewarddemo.Counts{}
	for _, r := range tot.Rewards {
		if r.Model != localModel {
			t.Errorf("model %q, want %q", r.Model, localModel)
		}
		got[r.ContentID+"/"+r.ImageVariant+"/"+r.Platform] = r.Counts
	}
	return tot, got
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestLocalRewardsClosesWindowsByTheClock(t *testing.T) {
	clock := &rewardsClock{t: rewardsT0}
	mux := chi.NewRouter()
	eps, err := localRewarders(nil, mux, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := newLocalRewards(localRewardsConfig{Window: time.Minute, Rewarders: eps, Now: clock.now, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	sent := rewardsSent{}
	at := func(d time.Duration, shard, typ, content, variant string) spate.Record {
		r := rewardsEvent(typ, content, variant, "s")
		r.ShardID, r.SequenceNumber, r.ArrivedAt = shard, fmt.Sprintf("%021d", d), rewardsT0.Add(d)
		sent.add(typ, content, variant)
		return r
	}
	lr.handle(t.Context(), []spate.Record{
		at(time.Second, "shardId-000000000000", "impression", "c1", "a"),
		at(59*time.Second, "shardId-000000000000", "click", "c1", "a"),
		at(60*time.Second, "shardId-000000000000", "impression", "c1", "b"),
	})
	lr.handle(t.Context(), []spate.Record{
		at(2*time.Second, "shardId-000000000001", "impression", "c1", "a"),
		at(61*time.Second, "shardId-000000000001", "play_start", "c1", "b"),
	})
	if got := lr.tumbler.Open(); got != 4 {
		t.Fatalf("%d open windows, want 4", got)
	}
	// The grace after a 1-minute window is 2 s.
	clock.set(rewardsT0.Add(time.Minute + time.Second))
	lr.closeDue()
	if got := lr.tumbler.Open(); got != 4 {
		t.Errorf("%d open windows within the grace, want 4", got)
	}
	clock.set(rewardsT0.Add(time.Minute + 2*time.Second))
	lr.closeDue()
	if got := lr.tumbler.Open(); got != 2 {
		t.Errorf("%d open windows after the first closed, want 2", got)
	}
	if err := lr.stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	tot, got := rewardsTotals(t, mux)
	if fmt.Sprint(got) != fmt.Sprint(map[string]rewarddemo.Counts(sent)) {
		t.Errorf("totals\n got %v\nwant %v", got, sent)
	}
	if tot.Requests != 4 || tot.Duplicates != 0 {
		t.Errorf("%d requests, %d duplicates: want one per shard and window, no repeats", tot.Requests, tot.Duplicates)
	}
}

func TestLocalRewardsThroughTheStream(t *testing.T) {
	clock := &rewardsClock{t: rewardsT0}
	stream := memstream.New(memstream.Config{Shards: 3, Now: clock.now})
	mux := chi.NewRouter()
	// Ingest owns "/" in local mode; the demo routes live beside it.
	ingestLike := chi.NewRouter()
	ingestLike.Post("/v1/events", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	mux.Mount("/", ingestLike)
	eps, err := localRewarders(nil, mux, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := newLocalRewards(localRewardsConfig{Window: 10 * time.Second, Rewarders: eps, Now: clock.now, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	stream.Subscribe(memstream.ConsumerConfig{Name: "aggregator"}, lr.handle)
	done := make(chan error, 1)
	go func() { done <- stream.Run(context.Background()) }()

	sent := rewardsSent{}
	typs := []string{"impression", "impression", "impression", "click", "play_start", "page_view", "play_progress"}
	for step := range 5 {
		clock.set(rewardsT0.Add(time.Duration(step) * 7 * time.Second))
		var batch []spate.Record
		for i := range 60 {
			typ := typs[i%len(typs)]
			content, variant := fmt.Sprintf("c%d", i%3), []string{"a", "b"}[i%2]
			batch = append(batch, rewardsEvent(typ, content, variant, fmt.Sprintf("session-%d", i)))
			sent.add(typ, content, variant)
		}
		if err := stream.Put(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	stream.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := lr.stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	tot, got := rewardsTotals(t, mux)
	if fmt.Sprint(got) != fmt.Sprint(map[string]rewarddemo.Counts(sent)) {
		t.Errorf("totals\n got %v\nwant %v", got, sent)
	}
	if tot.Duplicates != 0 || tot.Requests < 3 {
		t.Errorf("totals %+v: want one request per shard and window (3 windows)", tot)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/thumbnails/c1", nil))
	var ch rewarddemo.Choice
	if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil || w.Code != http.StatusOK || (ch.ImageVariant != "a" && ch.ImageVariant != "b") {
		t.Errorf("GET thumbnail: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/events", nil))
	if w.Code != http.StatusAccepted {
		t.Errorf("ingest route shadowed: %d", w.Code)
	}
}

func TestLocalRewardsToRewardURLs(t *testing.T) {
	rc := rewarddemo.New(rewarddemo.Config{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		rc.Routes().ServeHTTP(w, r)
	}))
	defer srv.Close()
	mux := chi.NewRouter()
	clock := &rewardsClock{t: rewardsT0}
	eps, err := localRewarders([]string{srv.URL + "/v1/rewards"}, mux, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := newLocalRewards(localRewardsConfig{Window: time.Minute, Rewarders: eps, Now: clock.now, Log: quietLog(),
		Sender: reward.Config{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	r := rewardsEvent("click", "c9", "z", "s")
	r.ShardID, r.SequenceNumber, r.ArrivedAt = "shardId-000000000000", "1", rewardsT0
	lr.handle(t.Context(), []spate.Record{r})
	if err := lr.stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tot := rc.Totals(); tot.Requests != 1 || len(tot.Rewards) != 1 || tot.Rewards[0].Clicks != 1 {
		t.Errorf("external receiver %+v", tot)
	}
	// No demo receiver when reward URLs are given.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/rewards/totals", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("demo totals served with --reward-url: %d", w.Code)
	}
}

func TestLocalRewardsStopIsBoundedByItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	clock := &rewardsClock{t: rewardsT0}
	eps, err := localRewarders([]string{srv.URL}, chi.NewRouter(), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := newLocalRewards(localRewardsConfig{Window: time.Minute, Rewarders: eps, Now: clock.now, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	r := rewardsEvent("impression", "c1", "a", "s")
	r.ShardID, r.SequenceNumber, r.ArrivedAt = "shardId-000000000000", "1", rewardsT0
	lr.handle(t.Context(), []spate.Record{r})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = lr.stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 aggregates not delivered") {
		t.Errorf("stop = %v, want one undelivered aggregate reported", err)
	}
}

// TestLocalRewardsMaxAgeReadsTheLocalClock: the reward sender measures an
// aggregate's age with local mode's clock, not the machine's, so the same
// window is retried while that clock says it is young and given up on once
// it says it is older than MaxAge — whatever day the suite runs.
func TestLocalRewardsMaxAgeReadsTheLocalClock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		now     time.Time
		expired bool
	}{
		{"young window is retried", rewardsT0.Add(2 * time.Minute), false},
		{"old window is given up on", rewardsT0.Add(3 * time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "down", http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			clock := &rewardsClock{t: tc.now}
			eps, err := localRewarders([]string{srv.URL}, chi.NewRouter(), clock.now)
			if err != nil {
				t.Fatal(err)
			}
			lr, err := newLocalRewards(localRewardsConfig{Window: time.Minute, Rewarders: eps, Now: clock.now, Log: quietLog(),
				Sender: reward.Config{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxElapsed: 20 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			r := rewardsEvent("impression", "c1", "a", "s")
			r.ShardID, r.SequenceNumber, r.ArrivedAt = "shardId-000000000000", "1", rewardsT0
			lr.handle(t.Context(), []spate.Record{r})
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			err = lr.stop(ctx)
			st := lr.sender.Stats()
			if tc.expired {
				if err != nil || st.Expired != 1 {
					t.Errorf("stop = %v, stats %+v; want the aggregate expired by the local clock", err, st)
				}
				return
			}
			if err == nil || st.Expired != 0 {
				t.Errorf("stop = %v, stats %+v; want the young aggregate still retried, not expired", err, st)
			}
		})
	}
}

func TestStartRewardsMountsTheDemo(t *testing.T) {
	stream := memstream.New(memstream.Config{Shards: 1})
	mux := chi.NewRouter()
	cfg := localConfig{Window: time.Minute}
	stop, err := startRewards(t.Context(), cfg, stream, mux, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if tot, _ := rewardsTotals(t, mux); tot.Requests != 0 {
		t.Errorf("fresh totals %+v", tot)
	}
	if err := stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg.RewardURLs = []string{"not a url"}
	if _, err := startRewards(t.Context(), cfg, stream, chi.NewRouter(), quietLog()); err == nil {
		t.Error("startRewards accepted a bad reward URL")
	}
}
