package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/spate-dev/spate"
)

// RetryConfig bounds retries; zero values take the defaults.
type RetryConfig struct {
	MaxAttempts int           // tries in all, default 4
	BaseDelay   time.Duration // first backoff, default 100 ms
	MaxDelay    time.Duration // backoff cap, default 2 s
}

// Retry returns a Sink that retries only the records sink failed, with
// exponential backoff and jitter, at most MaxAttempts tries in all and never
// past ctx's deadline. What still fails is returned as a *spate.BatchError.
func Retry(sink spate.Sink, cfg RetryConfig) spate.Sink {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 100 * time.Millisecond
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 2 * time.Second
	}
	return spate.SinkFunc(func(ctx context.Context, recs []spate.Record) error {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = cfg.BaseDelay
		b.MaxInterval = cfg.MaxDelay
		b.RandomizationFactor = 0.5

		errs := make([]error, len(recs))
		todo := make([]int, len(recs)) // indexes into recs still to write
		for i := range todo {
			todo[i] = i
		}
		for attempt := 1; ; attempt++ {
			batch := make([]spate.Record, len(todo))
			for j, i := range todo {
				batch[j] = recs[i]
			}
			itemErrs := spate.ItemErrors(sink.Put(ctx, batch), len(batch))
			next := todo[:0:0]
			for j, i := range todo {
				errs[i] = itemErrs[j]
				if itemErrs[j] != nil && retryable(itemErrs[j]) {
					next = append(next, i)
				}
			}
			todo = next
			if len(todo) == 0 || attempt >= cfg.MaxAttempts {
				break
			}
			wait := b.NextBackOff()
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return batchError(errs)
			case <-t.C:
			}
		}
		return batchError(errs)
	})
}

// retryable reports whether another try could succeed: not for a circuit
// that is open (the point is to stop calling) or a request that can never
// be accepted.
func retryable(err error) bool {
	return !errors.Is(err, ErrCircuitOpen) && !errors.Is(err, spate.ErrTooLarge) && !errors.Is(err, spate.ErrInvalid)
}

func batchError(errs []error) error {
	be := &spate.BatchError{Errs: errs}
	return be.OrNil()
}

// ErrCircuitOpen is returned for every record while a Breaker is open.
var ErrCircuitOpen = errors.New("circuit open")

// BreakerConfig configures Breaker; zero values take the defaults.
type BreakerConfig struct {
	Name string
	// Failures in a row that open the circuit (default 5).
	Failures uint32
	// OpenFor is how long it stays open before a trial call (default 5 s).
	OpenFor time.Duration
	// OnStateChange, when set, observes transitions (for logs and metrics).
	OnStateChange func(name string, from, to gobreaker.State)
}

// Breaker is a Sink decorator that stops calling a failing sink for a while,
// so a Kinesis outage turns into fast fallback instead of a retry storm.
type Breaker struct {
	sink spate.Sink
	cb   *gobreaker.CircuitBreaker[struct{}]
}

// NewBreaker wraps sink. A call counts as a failure when it errs as a whole
// or fails every record; partial throttling is normal backpressure.
func NewBreaker(sink spate.Sink, cfg BreakerConfig) *Breaker {
	if cfg.Failures == 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 5 * time.Second
	}
	st := gobreaker.Settings{
		Name:    cfg.Name,
		Timeout: cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= cfg.Failures
		},
		OnStateChange: cfg.OnStateChange,
	}
	return &Breaker{sink: sink, cb: gobreaker.NewCircuitBreaker[struct{}](st)}
}

var _ spate.Sink = (*Breaker)(nil)

type allFailed struct{ err error }

func (a allFailed) Error() string { return a.err.Error() }
func (a allFailed) Unwrap() error { return a.err }

// Put calls the sink unless the circuit is open.
func (b *Breaker) Put(ctx context.Context, recs []spate.Record) error {
	var partial error
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := b.sink.Put(ctx, recs)
		var be *spate.BatchError
		if errors.As(err, &be) && be.Count() < len(recs) {
			partial = err
			return struct{}{}, nil
		}
		if err != nil {
			return struct{}{}, allFailed{err}
		}
		return struct{}{}, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%s: %w", b.cb.Name(), ErrCircuitOpen)
	}
	var af allFailed
	if errors.As(err, &af) {
		return af.err
	}
	return partial
}

// Closed reports whether calls go through (closed or half-open).
func (b *Breaker) Closed() bool { return b.cb.State() != gobreaker.StateOpen }

// State returns the circuit's state name for metrics.
func (b *Breaker) State() string { return b.cb.State().String() }

// ReasonSink is a Sink that can record why records came to it, as a
// dead-letter queue does for operators.
type ReasonSink interface {
	spate.Sink
	spate.ReasonPutter
}

// Fallback returns a Sink that writes to primary and sends only the records
// primary failed to secondary, with the failure as the reason when
// secondary is a ReasonSink. A record fails only if both failed it.
func Fallback(primary, secondary spate.Sink) spate.Sink {
	return spate.SinkFunc(func(ctx context.Context, recs []spate.Record) error {
		errs := spate.ItemErrors(primary.Put(ctx, recs), len(recs))
		var idx []int
		for i, err := range errs {
			if err != nil {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return nil
		}
		rest := make([]spate.Record, len(idx))
		for j, i := range idx {
			rest[j] = recs[i]
		}
		var err error
		if rs, ok := secondary.(ReasonSink); ok {
			err = rs.PutReason(ctx, rest, errs[idx[0]].Error())
		} else {
			err = secondary.Put(ctx, rest)
		}
		second := spate.ItemErrors(err, len(rest))
		out := make([]error, len(recs))
		for j, i := range idx {
			if second[j] != nil {
				out[i] = fmt.Errorf("primary: %v; fallback: %w", errs[i], second[j])
			}
		}
		return batchError(out)
	})
}
