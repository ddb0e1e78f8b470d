package reward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/internal/clock"
)

// Endpoint is one reward API of one model.
type Endpoint struct {
	// Model names the model in the request body and the idempotency key.
	Model string
	// Name identifies the endpoint in logs, stats and dead letters, and
	// names its circuit breaker: the URL, say (default "<model>#<index>").
	Name     string
	Rewarder Rewarder
}

// Config holds the Sender's knobs; zero values take the documented
// defaults.
type Config struct {
	// InitialBackoff and MaxBackoff shape the jittered exponential backoff
	// between attempts (defaults 200 ms and 5 s). A 429 or 503's
	// Retry-After is honoured up to MaxBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxElapsed bounds one Deliver's retries of an endpoint (default 30 s).
	// Deliver then returns an error and the caller redelivers later, with
	// the same idempotency key.
	MaxElapsed time.Duration
	// MaxAge bounds how long an aggregate is retried at all, measured from
	// its window's end (default 1 h). Once older, an endpoint that still
	// fails gets a dead letter instead, so one dead API cannot hold a shard
	// forever.
	MaxAge time.Duration
	// BreakerFailures consecutive failures open an endpoint's breaker
	// (default 5); it stays open for BreakerOpen (default 30 s), then lets
	// one call through to probe. Refusals (4xx) do not count: they say
	// nothing about the API's health.
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// DeadLetters receives what is given up on. Nil logs the letter and
	// drops it.
	DeadLetters DeadLetterer
	// Now is the clock MaxAge and dead letters' At are measured with; nil
	// is the wall clock (internal/clock). A caller with its own clock (local
	// mode, tests) must pass it.
	Now func() time.Time
	// Log receives one line per dead letter and breaker change (default:
	// discard). Never payloads: ids, models, endpoints and reasons.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.MaxElapsed <= 0 {
		c.MaxElapsed = 30 * time.Second
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Hour
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpen <= 0 {
		c.BreakerOpen = 30 * time.Second
	}
	c.Now = clock.Or(c.Now)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Letter is a dead letter: a request given up on, or an aggregate record
// that could not be read, and why.
type Letter struct {
	Reason         string    `json:"reason"`
	At             time.Time `json:"at"`
	Model          string    `json:"model,omitempty"`
	Endpoint       string    `json:"endpoint,omitempty"`
	AggregateID    string    `json:"aggregate_id,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Status         int       `json:"status,omitempty"`
	Request        *Request  `json:"request,omitempty"`
	// Raw is the undecodable record, when that is what was given up on.
	Raw []byte `json:"raw,omitempty"`
}

// DeadLetterer keeps dead letters.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, l Letter) error
}

// SinkLetters keeps dead letters as JSON records in a spate.Sink (an SQS
// queue of their own, say), partitioned by idempotency key.
func SinkLetters(sink spate.Sink) DeadLetterer { return sinkLetters{sink} }

type sinkLetters struct{ sink spate.Sink }

func (s sinkLetters) DeadLetter(ctx context.Context, l Letter) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("dead letter encode: %w", err)
	}
	key := l.IdempotencyKey
	if key == "" {
		key = "undecodable"
	}
	rec := spate.Record{PartitionKey: key, Data: data}
	if src, ok := ctx.Value(sourceKey{}).(Source); ok {
		rec.ShardID, rec.SequenceNumber, rec.ArrivedAt = src.Shard, src.Sequence, src.ArrivedAt
	}
	if rs, ok := s.sink.(spate.ReasonPutter); ok {
		// The queue's message then says why, as the router's do.
		err = rs.PutReason(ctx, []spate.Record{rec}, l.Reason)
	} else {
		err = s.sink.Put(ctx, []spate.Record{rec})
	}
	if err != nil {
		return fmt.Errorf("dead letter put: %w", err)
	}
	return nil
}

// Source is where on its stream the record being delivered was read.
type Source struct {
	Shard, Sequence string
	ArrivedAt       time.Time
}

type sourceKey struct{}

// WithSource returns ctx carrying src: the dead letters SinkLetters writes
// under it carry the record's shard and sequence number, so a letter too
// big for its queue can still be found on the stream.
func WithSource(ctx context.Context, src Source) context.Context {
	return context.WithValue(ctx, sourceKey{}, src)
}

// Stats is a snapshot of the Sender's counters.
type Stats struct {
	Attempts     int64 // calls made to Rewarders
	Delivered    int64 // requests an API accepted
	Rejected     int64 // requests an API refused (4xx), dead-lettered
	Expired      int64 // requests past MaxAge still failing, dead-lettered
	Undecodable  int64 // records that were not aggregates, dead-lettered
	Failed       int64 // Deliver calls that left an endpoint to redeliver
	BreakerShort int64 // attempts refused by an open breaker
}

// Sender delivers aggregates to every endpoint. It is safe for concurrent
// use.
type Sender struct {
	cfg       Config
	endpoints []*endpoint

	attempts, delivered, rejected, expired, undecodable, failed, short atomic.Int64
}

type endpoint struct {
	Endpoint
	breaker *gobreaker.CircuitBreaker[struct{}]
}

// New returns a Sender for endpoints.
func New(endpoints []Endpoint, cfg Config) (*Sender, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("reward: no endpoints")
	}
	s := &Sender{cfg: cfg.withDefaults()}
	for i, ep := range endpoints {
		if ep.Model == "" || ep.Rewarder == nil {
			return nil, fmt.Errorf("reward endpoint %d: model and rewarder required", i)
		}
		if ep.Name == "" {
			ep.Name = fmt.Sprintf("%s#%d", ep.Model, i)
		}
		log := s.cfg.Log
		s.endpoints = append(s.endpoints, &endpoint{
			Endpoint: ep,
			breaker: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
				Name:    ep.Name,
				Timeout: s.cfg.BreakerOpen,
				ReadyToTrip: func(c gobreaker.Counts) bool {
					return c.ConsecutiveFailures >= s.cfg.BreakerFailures
				},
				// A refusal is the API working: it does not count against it.
				IsSuccessful: func(err error) bool { return err == nil || !Retryable(err) },
				// Our own cancellation says nothing about the API.
				IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
				OnStateChange: func(name string, from, to gobreaker.State) {
					log.Warn("reward breaker", "endpoint", name, "from", from.String(), "to", to.String())
				},
			}),
		})
	}
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Sender) Stats() Stats {
	return Stats{
		Attempts:     s.attempts.Load(),
		Delivered:    s.delivered.Load(),
		Rejected:     s.rejected.Load(),
		Expired:      s.expired.Load(),
		Undecodable:  s.undecodable.Load(),
		Failed:       s.failed.Load(),
		BreakerShort: s.short.Load(),
	}
}

// Deliver sends a to every endpoint, concurrently, retrying each with
// backoff. It returns nil once every endpoint accepted the request or it
// was dead-lettered (refused, or failing past MaxAge); otherwise an error,
// and the caller delivers a again later: endpoints that already accepted
// it see the same idempotency key again.
func (s *Sender) Deliver(ctx context.Context, a aggregate.Aggregate) error {
	errs := make([]error, len(s.endpoints))
	var wg sync.WaitGroup
	for i, ep := range s.endpoints {
		wg.Go(func() { errs[i] = s.deliver(ctx, ep, a) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.failed.Add(1)
		return fmt.Errorf("reward deliver aggregate %s: %w", a.ID, err)
	}
	return nil
}

func (s *Sender) deliver(ctx context.Context, ep *endpoint, a aggregate.Aggregate) error {
	key := IdempotencyKey(a.ID, ep.Model)
	req := NewRequest(ep.Model, a)
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.cfg.InitialBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         s.cfg.MaxBackoff,
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		s.attempts.Add(1)
		_, err := ep.breaker.Execute(func() (struct{}, error) {
			return struct{}{}, ep.Rewarder.Reward(ctx, key, req)
		})
		switch {
		case err == nil:
			return struct{}{}, nil
		case isBreakerRefusal(err):
			s.short.Add(1)
			return struct{}{}, err
		case !Retryable(err):
			return struct{}{}, backoff.Permanent(err)
		}
		if se, ok := asStatus(err); ok && se.RetryAfter > 0 {
			return struct{}{}, errors.Join(err, &backoff.RetryAfterError{Duration: min(se.RetryAfter, s.cfg.MaxBackoff)})
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(s.cfg.MaxElapsed))
	if err == nil {
		s.delivered.Add(1)
		return nil
	}
	letter := Letter{
		At: s.cfg.Now().UTC(), Model: ep.Model, Endpoint: ep.Name,
		AggregateID: a.ID, IdempotencyKey: key, Request: &req,
	}
	switch {
	case !Retryable(err):
		letter.Reason = "rejected: " + err.Error()
		if se, ok := asStatus(err); ok {
			letter.Status = se.Status
		}
		if derr := s.deadLetter(ctx, letter); derr != nil {
			return derr
		}
		s.rejected.Add(1)
		return nil
	case ctx.Err() == nil && s.cfg.Now().Sub(a.Window.End) > s.cfg.MaxAge:
		letter.Reason = fmt.Sprintf("expired: still failing %s after the window ended: %v", s.cfg.MaxAge, err)
		if se, ok := asStatus(err); ok {
			letter.Status = se.Status
		}
		if derr := s.deadLetter(ctx, letter); derr != nil {
			return derr
		}
		s.expired.Add(1)
		return nil
	}
	return fmt.Errorf("%s: %w", ep.Name, err)
}

// Discard dead-letters a record that is not a readable aggregate, so the
// caller can move past it.
func (s *Sender) Discard(ctx context.Context, data []byte, reason string) error {
	if err := s.deadLetter(ctx, Letter{Reason: "undecodable: " + reason, At: s.cfg.Now().UTC(), Raw: data}); err != nil {
		return err
	}
	s.undecodable.Add(1)
	return nil
}

func (s *Sender) deadLetter(ctx context.Context, l Letter) error {
	s.cfg.Log.Warn("reward dead letter", "model", l.Model, "endpoint", l.Endpoint,
		"aggregate_id", l.AggregateID, "status", l.Status, "reason", l.Reason)
	if s.cfg.DeadLetters == nil {
		return nil
	}
	if err := s.cfg.DeadLetters.DeadLetter(ctx, l); err != nil {
		return fmt.Errorf("reward dead letter %s: %w", l.Endpoint, err)
	}
	return nil
}

func isBreakerRefusal(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

func asStatus(err error) (*StatusError, bool) {
	var se *StatusError
	ok := errors.As(err, &se)
	return se, ok
}
