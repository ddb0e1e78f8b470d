package batch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/batch"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder is a sink that keeps every batch it was given.
type recorder struct {
	mu      sync.Mutex
	batches [][]spate.Record
	put     func(recs []spate.Record) error
}

func (r *recorder) Put(ctx context.Context, recs []spate.Record) error {
	r.mu.Lock()
	r.batches = append(r.batches, append([]spate.Record(nil), recs...))
	r.mu.Unlock()
	if r.put != nil {
		return r.put(recs)
	}
	return nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		out = append(out, len(b))
	}
	return out
}

func recs(n, size int) []spate.Record {
	out := make([]spate.Record, n)
	for i := range out {
		out[i] = spate.Record{PartitionKey: fmt.Sprint(i), Data: make([]byte, size)}
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestProducerCutsByCount(t *testing.T) {
	sink := &recorder{}
	p := batch.NewProducer(sink, batch.Config{Policy: batch.Policy{Count: 500, Age: time.Hour}, InFlight: 1}, discard)
	tk, err := p.Submit(recs(1000, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := sink.sizes(); len(got) != 2 || got[0] != 500 || got[1] != 500 {
		t.Errorf("batches %v, want [500 500]", got)
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestProducerCutsByBytes(t *testing.T) {
	sink := &recorder{}
	p := batch.NewProducer(sink, batch.Config{Policy: batch.Policy{Bytes: 1000, Age: time.Hour}, InFlight: 1}, discard)
	tk, _ := p.Submit(recs(10, 199)) // 200 bytes with the 1-byte key
	// The second batch is full by count of bytes only once Close cuts it.
	_ = p.Close(ctx(t))
	if err := tk.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := sink.sizes(); len(got) != 2 || got[0] != 5 || got[1] != 5 {
		t.Errorf("batches %v, want [5 5]", got)
	}
}

func TestProducerLingers(t *testing.T) {
	sink := &recorder{}
	p := batch.NewProducer(sink, batch.Config{Policy: batch.Policy{Age: 5 * time.Millisecond}}, discard)
	defer p.Close(ctx(t))
	for range 3 {
		tk, _ := p.Submit(recs(1, 10))
		// Resolves only because the linger timer cuts the partial batch.
		if err := tk.Wait(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if got := sink.sizes(); len(got) != 3 {
		t.Errorf("batches %v, want 3 single-record batches", got)
	}
}

func TestProducerShedsWhenFull(t *testing.T) {
	release := make(chan struct{})
	sink := &recorder{put: func([]spate.Record) error { <-release; return nil }}
	p := batch.NewProducer(sink, batch.Config{MaxRecords: 10, Policy: batch.Policy{Count: 5}}, discard)
	tk, err := p.Submit(recs(10, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Submit(recs(1, 1)); !errors.Is(err, spate.ErrOverloaded) {
		t.Fatalf("submit beyond MaxRecords: %v, want ErrOverloaded", err)
	}
	if st := p.Stats(); st.Shed != 1 || st.BufferedRecords != 10 {
		t.Errorf("stats %+v", st)
	}
	close(release)
	if err := tk.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Submit(recs(1, 1)); err != nil {
		t.Errorf("after the buffer drained: %v", err)
	}
	_ = p.Close(ctx(t))
	if _, err := p.Submit(recs(1, 1)); !errors.Is(err, spate.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

func TestProducerTicketFailsWhenSinkFails(t *testing.T) {
	sink := &recorder{put: func(r []spate.Record) error {
		be := spate.NewBatchError(len(r))
		be.Failed(1, errors.New("refused"))
		return be
	}}
	p := batch.NewProducer(sink, batch.Config{Policy: batch.Policy{Age: time.Millisecond}}, discard)
	defer p.Close(ctx(t))
	ok, _ := p.Submit(recs(1, 1))
	bad, _ := p.Submit(recs(1, 1))
	if err := ok.Wait(ctx(t)); err != nil {
		t.Errorf("first submission: %v", err)
	}
	if err := bad.Wait(ctx(t)); err == nil {
		t.Error("second submission resolved without error though its record failed")
	}
}

func TestCloseFlushesEverything(t *testing.T) {
	sink := &recorder{}
	p := batch.NewProducer(sink, batch.Config{Policy: batch.Policy{Age: time.Hour}}, discard)
	var tickets []*batch.Ticket
	for range 7 {
		tk, _ := p.Submit(recs(3, 1))
		tickets = append(tickets, tk)
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tickets {
		select {
		case <-tk.Done():
		default:
			t.Fatal("ticket unresolved after Close")
		}
	}
	total := 0
	for _, n := range sink.sizes() {
		total += n
	}
	if total != 21 {
		t.Errorf("wrote %d records, want 21", total)
	}
}

func TestRetryRetriesOnlyFailed(t *testing.T) {
	attempt := 0
	sink := &recorder{put: func(r []spate.Record) error {
		attempt++
		be := spate.NewBatchError(len(r))
		for i, rec := range r {
			if rec.PartitionKey == "1" && attempt < 3 {
				be.Failed(i, spate.ErrThrottled)
			}
		}
		return be.OrNil()
	}}
	s := batch.Retry(sink, batch.RetryConfig{MaxAttempts: 5, BaseDelay: time.Microsecond})
	if err := s.Put(ctx(t), recs(3, 1)); err != nil {
		t.Fatal(err)
	}
	if got := sink.sizes(); len(got) != 3 || got[0] != 3 || got[1] != 1 || got[2] != 1 {
		t.Errorf("attempt sizes %v, want [3 1 1]", got)
	}
}

func TestRetryIsBounded(t *testing.T) {
	sink := &recorder{put: func(r []spate.Record) error { return errors.New("down") }}
	s := batch.Retry(sink, batch.RetryConfig{MaxAttempts: 3, BaseDelay: time.Microsecond})
	err := s.Put(ctx(t), recs(2, 1))
	var be *spate.BatchError
	if !errors.As(err, &be) || be.Count() != 2 {
		t.Fatalf("err = %v, want both records failed", err)
	}
	if n := len(sink.sizes()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestFallbackSendsOnlyFailed(t *testing.T) {
	primary := &recorder{put: func(r []spate.Record) error {
		be := spate.NewBatchError(len(r))
		be.Failed(0, errors.New("throttled"))
		be.Failed(2, errors.New("throttled"))
		return be
	}}
	var reason string
	secondary := &reasonRecorder{recorder: recorder{}, reason: &reason}
	err := batch.Fallback(primary, secondary).Put(ctx(t), recs(3, 1))
	if err != nil {
		t.Fatal(err)
	}
	got := secondary.batches
	if len(got) != 1 || len(got[0]) != 2 || got[0][0].PartitionKey != "0" || got[0][1].PartitionKey != "2" {
		t.Errorf("fallback got %v", got)
	}
	if reason != "throttled" {
		t.Errorf("reason = %q", reason)
	}
}

func TestFallbackFailsWhenBothFail(t *testing.T) {
	down := &recorder{put: func(r []spate.Record) error { return errors.New("down") }}
	err := batch.Fallback(down, down).Put(ctx(t), recs(2, 1))
	var be *spate.BatchError
	if !errors.As(err, &be) || be.Count() != 2 {
		t.Fatalf("err = %v, want both failed", err)
	}
}

type reasonRecorder struct {
	recorder
	reason *string
}

func (r *reasonRecorder) PutReason(ctx context.Context, recs []spate.Record, reason string) error {
	*r.reason = reason
	return r.Put(ctx, recs)
}

func TestBreakerOpensAndSkips(t *testing.T) {
	down := &recorder{put: func(r []spate.Record) error { return errors.New("down") }}
	b := batch.NewBreaker(down, batch.BreakerConfig{Failures: 2, OpenFor: time.Hour})
	for range 2 {
		if err := b.Put(ctx(t), recs(1, 1)); err == nil || errors.Is(err, batch.ErrCircuitOpen) {
			t.Fatalf("closed breaker: %v", err)
		}
	}
	if b.Closed() {
		t.Fatal("breaker still closed after 2 failures")
	}
	if err := b.Put(ctx(t), recs(1, 1)); !errors.Is(err, batch.ErrCircuitOpen) {
		t.Fatalf("open breaker: %v", err)
	}
	if n := len(down.sizes()); n != 2 {
		t.Errorf("sink called %d times, want 2 (not while open)", n)
	}
}

func TestBreakerIgnoresPartialFailures(t *testing.T) {
	partial := &recorder{put: func(r []spate.Record) error {
		be := spate.NewBatchError(len(r))
		be.Failed(0, spate.ErrThrottled)
		return be
	}}
	b := batch.NewBreaker(partial, batch.BreakerConfig{Failures: 1})
	for range 3 {
		err := b.Put(ctx(t), recs(2, 1))
		var be *spate.BatchError
		if !errors.As(err, &be) || be.Count() != 1 {
			t.Fatalf("err = %v, want the partial failure passed through", err)
		}
	}
	if !b.Closed() {
		t.Error("partial failures opened the breaker")
	}
}
