package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/memstream"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewarddemo"
	"github.com/spate-dev/spate/rewardhttp"
)

// localModel is the model name of local mode's reward calls.
const localModel = "thumbnails"

// startRewards subscribes the aggregator to stream and delivers its
// aggregates to the reward APIs, or to the demo receiver mounted on mux
// when no --reward-url was given: the same fold the aggregator Lambda
// runs, with its state in memory, and the same reward code the reward
// Lambda runs. The stop func, called once the stream has drained, closes
// the open windows and delivers them before returning.
func startRewards(ctx context.Context, cfg localConfig, stream *memstream.Stream, mux chi.Router, log *slog.Logger) (func(context.Context) error, error) {
	log = log.With("stage", "rewards")
	rewarders, err := localRewarders(cfg.RewardURLs, mux, cfg.Now)
	if err != nil {
		return nil, err
	}
	tick := min(max(cfg.Window/10, 100*time.Millisecond), time.Second)
	ticker := time.NewTicker(tick)
	lr, err := newLocalRewards(localRewardsConfig{
		Window:    cfg.Window,
		Rewarders: rewarders,
		Now:       cfg.Now,
		Tick:      ticker.C,
		Log:       log,
	})
	if err != nil {
		ticker.Stop()
		return nil, err
	}
	stream.Subscribe(memstream.ConsumerConfig{Name: "aggregator", BatchSize: 500}, lr.handle)
	if len(cfg.RewardURLs) == 0 {
		log.Info("demo reward receiver", "post", "/v1/rewards", "totals", "/v1/rewards/totals", "thumbnails", "/v1/thumbnails/{content_id}")
	}
	return func(ctx context.Context) error {
		defer ticker.Stop()
		return lr.stop(ctx)
	}, nil
}

// localRewarders returns a client per reward URL, or one for the demo
// receiver registered on mux. The demo is called in process, through the
// same HTTP client code, so the stop func can still deliver once the HTTP
// server has shut down.
func localRewarders(urls []string, mux chi.Router, now func() time.Time) ([]reward.Endpoint, error) {
	var out []reward.Endpoint
	for _, u := range urls {
		c, err := rewardhttp.New(u, rewardhttp.Config{Now: now})
		if err != nil {
			return nil, err
		}
		out = append(out, reward.Endpoint{Model: localModel, Name: u, Rewarder: c})
	}
	if len(out) > 0 {
		return out, nil
	}
	rc := rewarddemo.New(rewarddemo.Config{})
	rc.Register(mux)
	const demoURL = "http://spate-local/v1/rewards"
	c, err := rewardhttp.New(demoURL, rewardhttp.Config{HTTP: &http.Client{Transport: inProcess{rc.Routes()}}, Now: now})
	if err != nil {
		return nil, err
	}
	return []reward.Endpoint{{Model: localModel, Name: "demo", Rewarder: c}}, nil
}

// inProcess is an http.RoundTripper that serves requests with a handler.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	w := &memResponse{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: r,
	}, nil
}

type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *memResponse) Header() http.Header { return w.header }
func (w *memResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *memResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

type localRewardsConfig struct {
	Window    time.Duration
	Rewarders []reward.Endpoint
	// Now stamps window closes and is the reward sender's clock for MaxAge
	// (unless Sender.Now overrides it); nil is the wall clock. Tick drives
	// closes (nil: only stop closes).
	Now  func() time.Time
	Tick <-chan time.Time
	// Sender overrides the reward.Sender's defaults (tests).
	Sender reward.Config
	Log    *slog.Logger
}

// localRewards runs the fold over the in-process stream. Three parties
// touch it: the stream's consumer goroutines (handle), the window ticker,
// and stop; aggregates go through one bounded queue to one delivery loop,
// so a slow reward API holds back the aggregator (and, through the
// stream's bound, ingest) instead of growing memory.
type localRewards struct {
	tumbler *aggregate.Tumbler
	sender  *reward.Sender
	now     func() time.Time
	log     *slog.Logger

	// mu guards closing queue: senders hold it shared.
	mu     sync.RWMutex
	closed bool
	queue  chan aggregate.Aggregate

	tickStop, tickDone chan struct{}
	deliverCtx         context.Context
	cancelDeliver      context.CancelFunc
	delivered          chan struct{}
	dropped            int
}

func newLocalRewards(cfg localRewardsConfig) (*localRewards, error) {
	folder, err := aggregate.New(aggregate.Config{Window: cfg.Window})
	if err != nil {
		return nil, err
	}
	cfg.Now = clock.Or(cfg.Now)
	sc := cfg.Sender
	sc.Log = cfg.Log
	if sc.Now == nil {
		// One clock for window closes and their expiry: with the wall
		// clock here, a fake local clock would never reach MaxAge.
		sc.Now = cfg.Now
	}
	sender, err := reward.New(cfg.Rewarders, sc)
	if err != nil {
		return nil, err
	}
	// A window closes a little after its end, so records put just before
	// it are delivered to the fold first; later ones make a partial.
	grace := min(cfg.Window/4, 2*time.Second)
	lr := &localRewards{
		// Every run its own source: aggregate ids, and so idempotency keys,
		// of a restarted `spate local` never repeat an earlier run's.
		tumbler:   aggregate.NewTumbler(folder, "local-"+uuid.NewString(), grace),
		sender:    sender,
		now:       cfg.Now,
		log:       cfg.Log,
		queue:     make(chan aggregate.Aggregate, 256),
		tickStop:  make(chan struct{}),
		tickDone:  make(chan struct{}),
		delivered: make(chan struct{}),
	}
	lr.deliverCtx, lr.cancelDeliver = context.WithCancel(context.Background())
	go lr.deliverLoop()
	go lr.tickLoop(cfg.Tick)
	return lr, nil
}

// handle is the stream consumer. It always succeeds: the records are in
// the fold once Add returns, and a redelivery would count them twice.
func (lr *localRewards) handle(ctx context.Context, recs []spate.Record) error {
	lr.enqueue(lr.tumbler.Add(recs))
	return nil
}

func (lr *localRewards) tickLoop(tick <-chan time.Time) {
	defer close(lr.tickDone)
	for {
		select {
		case <-lr.tickStop:
			return
		case <-tick:
			lr.closeDue()
		}
	}
}

// closeDue closes the windows that have ended and queues their aggregates.
func (lr *localRewards) closeDue() {
	lr.enqueue(lr.tumbler.CloseDue(lr.now()))
}

func (lr *localRewards) enqueue(aggs []aggregate.Aggregate) {
	if len(aggs) == 0 {
		return
	}
	lr.mu.RLock()
	defer lr.mu.RUnlock()
	if lr.closed {
		lr.log.Error("rewards: aggregates after stop, dropped", "aggregates", len(aggs))
		return
	}
	for _, a := range aggs {
		lr.queue <- a
	}
}

func (lr *localRewards) deliverLoop() {
	defer close(lr.delivered)
	for a := range lr.queue {
		// Deliver retries within its own bound and gives up on an aggregate
		// past its maximum age (dead letter); until then, keep trying.
		for {
			err := lr.sender.Deliver(lr.deliverCtx, a)
			if err == nil {
				break
			}
			if lr.deliverCtx.Err() != nil {
				lr.dropped++
				break
			}
			lr.log.Warn("rewards: delivery failed, retrying", "aggregate_id", a.ID, "error", err.Error())
		}
	}
}

// stop closes every window, delivers what is queued and returns; if ctx
// ends first, what is left is dropped and counted.
func (lr *localRewards) stop(ctx context.Context) error {
	close(lr.tickStop)
	<-lr.tickDone
	flushed := lr.tumbler.Flush(lr.now())
	// Queue from another goroutine: with a slow API the queue may be full,
	// and ctx must still bound the wait.
	go func() {
		lr.enqueue(flushed)
		lr.mu.Lock()
		lr.closed = true
		close(lr.queue)
		lr.mu.Unlock()
	}()
	var err error
	select {
	case <-lr.delivered:
	case <-ctx.Done():
		lr.cancelDeliver()
		<-lr.delivered
		err = fmt.Errorf("rewards: %d aggregates not delivered: %w", lr.dropped, ctx.Err())
	}
	lr.cancelDeliver()
	st := lr.sender.Stats()
	lr.log.Info("rewards: stopped", "flushed", len(flushed), "delivered", st.Delivered,
		"rejected", st.Rejected, "expired", st.Expired, "attempts", st.Attempts)
	return err
}
