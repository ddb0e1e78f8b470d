// Package spate holds the domain types every part of the pipeline shares:
// the record that travels on the stream, the Sink that writes records, and
// the sentinel errors callers decide on. It imports only the standard
// library, so local mode, the Lambdas and the tests all speak it.
package spate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Callers test them with errors.Is; ingest maps them to
// HTTP status codes in one place.
var (
	ErrUnknownType = errors.New("unknown event type")
	ErrInvalid     = errors.New("invalid event")
	ErrTooLarge    = errors.New("too large")
	ErrOverloaded  = errors.New("overloaded")
	ErrClosed      = errors.New("closed")
	ErrThrottled   = errors.New("throttled")
)

// Record is one event on the stream: the partition key that picks its
// shard, the canonical event JSON, and what the stream adds on arrival.
type Record struct {
	PartitionKey string
	Data         []byte

	// Set by the stream on delivery to consumers; zero on the way in.
	ShardID        string
	SequenceNumber string
	ArrivedAt      time.Time
}

// Size is what the record counts against Kinesis' per-record and per-call
// limits: the partition key plus the data blob.
func (r Record) Size() int { return len(r.PartitionKey) + len(r.Data) }

// Sink writes records somewhere durable: Kinesis, an SQS dead-letter queue,
// the in-process stream. Put returns nil when every record was written, a
// *BatchError when only some were (aligned with recs), or another error when
// none were.
type Sink interface {
	Put(ctx context.Context, recs []Record) error
}

// ReasonPutter keeps records with why they came to it, as a dead-letter
// queue does for operators. It returns like Sink.Put: nil, a *BatchError
// aligned with recs, or an error for all. sqs.DLQ and lake.Lake implement
// it; the router, the reward sender and batch.Fallback consume it.
type ReasonPutter interface {
	PutReason(ctx context.Context, recs []Record, reason string) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, recs []Record) error

// Put calls f.
func (f SinkFunc) Put(ctx context.Context, recs []Record) error { return f(ctx, recs) }

// BatchError reports per-item failures of a batch write. Errs is aligned
// with the input; a nil entry means that item was written.
type BatchError struct {
	Errs []error
}

// NewBatchError returns a BatchError for n items, all successful so far.
func NewBatchError(n int) *BatchError { return &BatchError{Errs: make([]error, n)} }

// Failed marks item i as failed with err.
func (e *BatchError) Failed(i int, err error) { e.Errs[i] = err }

// Count returns how many items failed.
func (e *BatchError) Count() int {
	n := 0
	for _, err := range e.Errs {
		if err != nil {
			n++
		}
	}
	return n
}

// OrNil returns nil when no item failed, so callers can return it directly.
func (e *BatchError) OrNil() error {
	if e == nil || e.Count() == 0 {
		return nil
	}
	return e
}

func (e *BatchError) Error() string {
	n := e.Count()
	var first error
	for _, err := range e.Errs {
		if err != nil {
			first = err
			break
		}
	}
	return fmt.Sprintf("%d of %d items failed (first: %v)", n, len(e.Errs), first)
}

// ItemErrors expands err from a Put of n items into one error per item:
// nil means written. A non-batch error fails every item.
func ItemErrors(err error, n int) []error {
	errs := make([]error, n)
	if err == nil {
		return errs
	}
	var be *BatchError
	if errors.As(err, &be) && len(be.Errs) == n {
		copy(errs, be.Errs)
		return errs
	}
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// FieldError names the field and the rule an event broke. It wraps
// ErrInvalid (or ErrUnknownType for the type field).
type FieldError struct {
	Field string
	Rule  string
	Err   error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Rule)
	return b.String()
}

func (e *FieldError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrInvalid
}
