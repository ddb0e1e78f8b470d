// Package failed keeps the events ingest rejects: each becomes a record of
// the failed-events table (registry.Failed) with the reason, the field, the
// schema it was validated against, its receipt time and up to 32 KiB of
// what the client sent, written to a delivery stream — the failed Firehose
// stream in AWS, Parquet under <data>/failed locally. The HTTP answer does
// not wait for it: keeping is bounded and best effort, counted when it
// cannot keep up, and never logs a payload.
package failed

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
)

// MaxPayload bounds the bytes of a failed event that are kept.
// Keep's queue is bounded in events and bytes (Config), so keeping never
// grows memory without bound.
const MaxPayload = 32 << 10

// Destination writes records to a named delivery stream (router.Destination,
// firehose.Destination, lake.Lake).
type Destination interface {
	PutBatch(ctx context.Context, stream string, records [][]byte) error
}

// Config holds the knobs; zero values take the defaults.
type Config struct {
	Stream    string        // delivery stream name (default "failed")
	Queue     int           // failed events waiting to be written before new ones are dropped (default 10,000)
	BatchSize int           // records per PutBatch (default 500, Firehose's limit)
	Linger    time.Duration // longest a failed event waits for its batch (default 1 s)
	// QueueBytes bounds the payload bytes waiting (default 16 MiB), so a
	// flood of large invalid events cannot grow memory.
	QueueBytes int64
}

// Stats counts what the keeper did.
type Stats struct {
	Kept    int64 // written to the destination
	Dropped int64 // not kept: queue full, or the destination failed
}

type item struct {
	raw       []byte
	truncated bool
	reason    string
	field     string
	at        time.Time
}

// Keeper batches failed events to a Destination. Keep never blocks.
type Keeper struct {
	dest    Destination
	reg     *registry.Registry
	cfg     Config
	log     *slog.Logger
	ch      chan item
	done    chan struct{}
	once    sync.Once
	kept    atomic.Int64
	dropped atomic.Int64
	queued  atomic.Int64 // payload bytes waiting
}

// New returns a Keeper validating against reg (for schema ids) and writing
// to dest; Run it, then Close it.
func New(dest Destination, reg *registry.Registry, cfg Config, log *slog.Logger) *Keeper {
	if cfg.Stream == "" {
		cfg.Stream = registry.FailedType
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 10_000
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 16 << 20
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > 500 {
		cfg.BatchSize = 500
	}
	if cfg.Linger <= 0 {
		cfg.Linger = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{dest: dest, reg: reg, cfg: cfg, log: log, ch: make(chan item, cfg.Queue), done: make(chan struct{})}
}

// Keep queues a rejected event: raw as the client sent it (copied, at most
// MaxPayload bytes), err the rejection. It never blocks; a full queue
// drops the event and counts it.
func (k *Keeper) Keep(raw []byte, err error, receivedAt time.Time) {
	it := item{at: receivedAt.UTC().Truncate(time.Millisecond), reason: err.Error()}
	if len(raw) > MaxPayload {
		raw, it.truncated = raw[:MaxPayload], true
	}
	if k.queued.Add(int64(len(raw))) > k.cfg.QueueBytes {
		k.queued.Add(-int64(len(raw)))
		k.dropped.Add(1)
		return
	}
	it.raw = append([]byte(nil), raw...)
	var fe *spate.FieldError
	if errors.As(err, &fe) {
		it.field = fe.Field
	}
	select {
	case k.ch <- it:
	default:
		k.queued.Add(-int64(len(it.raw)))
		k.dropped.Add(1)
	}
}

// Stats returns a snapshot of the counters.
func (k *Keeper) Stats() Stats { return Stats{Kept: k.kept.Load(), Dropped: k.dropped.Load()} }

// Run writes queued failed events until Close, in batches of BatchSize or
// every Linger.
func (k *Keeper) Run(ctx context.Context) {
	defer close(k.done)
	tick := time.NewTicker(k.cfg.Linger)
	defer tick.Stop()
	var batch [][]byte
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := k.dest.PutBatch(context.WithoutCancel(ctx), k.cfg.Stream, batch); err != nil {
			n := len(batch)
			if be := (*spate.BatchError)(nil); errors.As(err, &be) {
				n = be.Count()
			}
			k.dropped.Add(int64(n))
			k.kept.Add(int64(len(batch) - n))
			k.log.Warn("failed events not kept", "records", n, "err", err)
		} else {
			k.kept.Add(int64(len(batch)))
		}
		batch = batch[:0]
	}
	for {
		select {
		case it, ok := <-k.ch:
			if !ok {
				flush()
				return
			}
			k.queued.Add(-int64(len(it.raw)))
			batch = append(batch, k.Record(it.raw, it.truncated, it.reason, it.field, it.at))
			if len(batch) >= k.cfg.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// Close stops taking failed events and waits, up to ctx, for the queued
// ones to be written.
func (k *Keeper) Close(ctx context.Context) error {
	k.once.Do(func() { close(k.ch) })
	select {
	case <-k.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Record builds the failed-events row for raw: the envelope fields that
// could be read from it, bounded, and the failure's.
func (k *Keeper) Record(raw []byte, truncated bool, reason, field string, at time.Time) []byte {
	e := &spate.Event{Type: registry.FailedType, OccurredAt: at, ReceivedAt: at}
	if fields, err := objectFields(raw); !truncated && err == nil {
		str := func(name string, max int) string {
			var s string
			if json.Unmarshal(fields[name], &s) != nil || !utf8.ValidString(s) {
				return ""
			}
			if len(s) > max {
				return ""
			}
			return s
		}
		e.EventID = strings.ToLower(str("event_id", 36))
		e.UserID, e.AnonymousID, e.SessionID = str("user_id", 128), str("anonymous_id", 128), str("session_id", 128)
		e.Platform, e.AppVersion = str("platform", 16), str("app_version", 64)
		if t := str("type", 64); t != "" {
			e.Props = append(e.Props, spate.Str("event_type", t))
			if s, ok := k.reg.Schema(t); ok {
				e.Props = append(e.Props, spate.Str("schema_id", s.ID))
			}
		}
	}
	if _, err := uuid.Parse(e.EventID); err != nil || len(e.EventID) != 36 {
		// The id recover sends the event with, so recovering twice
		// sends the same event twice, never two events.
		id, _ := uuid.NewV7()
		e.EventID = id.String()
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	e.Props = append(e.Props, spate.Str("reason", strings.ToValidUTF8(reason, "\uFFFD")), spate.Str("field", field),
		spate.Str("payload", strings.ToValidUTF8(string(raw), "\uFFFD")), spate.Bool("truncated", truncated))
	return append(e.AppendJSON(nil), '\n')
}
