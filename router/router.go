// Package router sends every event on the stream to the delivery stream of
// its type: one Firehose per type in AWS, the on-disk lake locally. It packs
// small events of a type into few large records (Firehose bills each record
// as at least 5 KB), retries only what the destination refused, and reports
// per input record what is still undone so the caller can checkpoint before
// it — Lambda's ReportBatchItemFailures, or local mode's consumer re-reading from its checkpoint.
//
// The package knows nothing of AWS: the Lambda handler (awslambda) and the
// Firehose adapter (firehose) wire it to the cloud, the lake to the disk.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
)

// Destination writes records to named delivery streams. PutBatch returns
// nil when every record was accepted, a *spate.BatchError aligned with
// records when only some were, or another error when none were; errors that
// retrying cannot fix wrap ErrPermanent. It must not keep the records
// slice after it returns: the router reuses it for the next call.
type Destination interface {
	PutBatch(ctx context.Context, stream string, records [][]byte) error
}

// DeadLetter keeps records that can never be routed, with why.
type DeadLetter = spate.ReasonPutter

// ErrPermanent marks a destination error that retrying within the
// invocation cannot fix (a missing delivery stream, a rejected request).
var ErrPermanent = errors.New("permanent destination error")

// Why a record went to the dead-letter target.
const (
	ReasonUndecodable = "undecodable"  // not one JSON object with a string type
	ReasonUnknownType = "unknown_type" // a type the registry does not know
	ReasonTooLarge    = "too_large"    // bigger than one destination record
)

// Firehose's PutRecordBatch limits, and the unit it bills records in.
const (
	MaxRecordBytes  = 1_000 << 10 // one record, before base64
	MaxBatchRecords = 500
	MaxBatchBytes   = 4 << 20 // one call, the records' data summed
	BillingUnit     = 5 << 10 // each record is billed rounded up to this
)

// Config holds the router's knobs; zero values take the documented defaults.
type Config struct {
	// Streams maps every event type of the registry to the delivery stream
	// its events go to. Required; see StreamNames.
	Streams map[string]string
	// MaxRecordBytes bounds one packed record (default MaxRecordBytes).
	MaxRecordBytes int
	// MaxBatchRecords and MaxBatchBytes bound one PutBatch call (defaults
	// MaxBatchRecords and MaxBatchBytes).
	MaxBatchRecords int
	MaxBatchBytes   int
	// NoPacking sends one event per record, for comparison.
	NoPacking bool
	// MaxAttempts bounds the PutBatch attempts of a record (default 8); the
	// context's deadline bounds them too.
	MaxAttempts int
	// MinBackoff is the pause before the first retry (default 50 ms); it
	// doubles per attempt up to MaxBackoff (default 2 s), with full jitter.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// DeadlineMargin is kept free before the context's deadline, so that the
	// result can still be reported when the destination is slow (default
	// 500 ms; at most half of the time left).
	DeadlineMargin time.Duration
	// RecentIDs bounds the event_ids remembered per shard as delivered, so
	// that a redelivered record whose event was delivered already is
	// skipped (default DefaultRecentIDs; negative: off). RecentShards
	// bounds the shards remembered (default DefaultRecentShards). Memory:
	// about RecentShards × RecentIDs × RecentBytesPerID bytes.
	RecentIDs    int
	RecentShards int
}

func (c *Config) defaults() {
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = MaxRecordBytes
	}
	if c.MaxBatchRecords <= 0 {
		c.MaxBatchRecords = MaxBatchRecords
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = MaxBatchBytes
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(2*time.Second, c.MinBackoff)
	}
	if c.DeadlineMargin <= 0 {
		c.DeadlineMargin = 500 * time.Millisecond
	}
	if c.RecentIDs == 0 {
		c.RecentIDs = DefaultRecentIDs
	}
	if c.RecentShards <= 0 {
		c.RecentShards = DefaultRecentShards
	}
}

// StreamNames maps each type to prefix+type, e.g. "spate-" gives
// "spate-page_view". An empty prefix names each stream after its type, as
// the local lake does.
func StreamNames(types []string, prefix string) map[string]string {
	m := make(map[string]string, len(types))
	for _, t := range types {
		m[t] = prefix + t
	}
	return m
}

// Router routes batches of stream records. It is safe for concurrent use:
// local mode calls it from one goroutine per shard.
type Router struct {
	dest    Destination
	dlq     DeadLetter
	cfg     Config
	log     *slog.Logger
	dec     decoder
	streams map[string]string // type -> stream
	recent  *recent           // nil when off
	stats   counters
}

// New returns a router sending events of reg's types to dest and records it
// cannot route to dlq.
func New(reg *registry.Registry, dest Destination, dlq DeadLetter, cfg Config, log *slog.Logger) (*Router, error) {
	if dest == nil || dlq == nil {
		return nil, errors.New("router: destination and dead-letter target are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.defaults()
	if cfg.MaxRecordBytes > cfg.MaxBatchBytes {
		return nil, fmt.Errorf("router: MaxRecordBytes %d exceeds MaxBatchBytes %d", cfg.MaxRecordBytes, cfg.MaxBatchBytes)
	}
	r := &Router{dest: dest, dlq: dlq, cfg: cfg, log: log, dec: decoder{types: map[string]string{}}, streams: map[string]string{}}
	for _, t := range reg.Types() {
		s := cfg.Streams[t]
		if s == "" {
			return nil, fmt.Errorf("router: no delivery stream for type %s", t)
		}
		r.dec.types[t] = t
		r.streams[t] = s
	}
	if cfg.RecentIDs > 0 {
		r.recent = newRecent(cfg.RecentIDs, cfg.RecentShards)
	}
	return r, nil
}

// group is one delivery stream's share of a batch: its events packed back to
// back in buf, newline-terminated.
type group struct {
	stream string
	buf    []byte
	packs  []pack
	idx    []int // input record of each event, pack by pack
}

// pack is one destination record: buf[start:end], holding the events of
// input records idx[lo:hi].
type pack struct {
	start, end int
	lo, hi     int
	// unpacked is what its events would be billed sent one per record.
	unpacked int64
}

func (g *group) add(i int, event []byte, maxRecord int, noPacking bool) {
	need := len(event) + 1
	if n := len(g.packs); n == 0 || noPacking || g.packs[n-1].end-g.packs[n-1].start+need > maxRecord {
		g.packs = append(g.packs, pack{start: len(g.buf), end: len(g.buf), lo: len(g.idx), hi: len(g.idx)})
	}
	g.buf = append(g.buf, event...)
	g.buf = append(g.buf, '\n')
	p := &g.packs[len(g.packs)-1]
	p.end = len(g.buf)
	g.idx = append(g.idx, i)
	p.hi = len(g.idx)
	p.unpacked += billed(need)
}

func (g *group) data(p int) []byte {
	pk := g.packs[p]
	return g.buf[pk.start:pk.end:pk.end]
}

func billed(n int) int64 { return int64((n + BillingUnit - 1) / BillingUnit * BillingUnit) }

// Route delivers recs. It returns nil when every record is done — routed,
// or dead-lettered with its reason — and otherwise a *spate.BatchError
// aligned with recs marking those still to be redelivered. Failed
// destination records are retried with backoff within the context's
// deadline, less DeadlineMargin, and at most MaxAttempts times.
func (r *Router) Route(ctx context.Context, recs []spate.Record) error {
	r.stats.batches.Add(1)
	r.stats.records.Add(int64(len(recs)))
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()

	var groups []*group
	byStream := map[string]*group{}
	dead := map[string][]int{}
	ids := r.newBatchIDs(len(recs))
	for i := range recs {
		typ, event, err := r.dec.decode(recs[i].Data)
		switch {
		case errors.Is(err, spate.ErrUnknownType):
			dead[ReasonUnknownType] = append(dead[ReasonUnknownType], i)
			continue
		case err != nil:
			dead[ReasonUndecodable] = append(dead[ReasonUndecodable], i)
			continue
		case len(event)+1 > r.cfg.MaxRecordBytes:
			dead[ReasonTooLarge] = append(dead[ReasonTooLarge], i)
			continue
		case ids.skip(i, recs[i].ShardID, event):
			continue // delivered already
		}
		stream := r.streams[typ]
		g := byStream[stream]
		if g == nil {
			g = &group{stream: stream}
			byStream[stream] = g
			groups = append(groups, g)
		}
		g.add(i, event, r.cfg.MaxRecordBytes, r.cfg.NoPacking)
	}

	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	if len(dead) > 0 {
		wg.Go(func() { r.deadLetter(ctx, recs, dead, errs) })
	}
	for _, g := range groups {
		wg.Go(func() { r.send(ctx, g, errs, recs, ids) })
	}
	wg.Wait()
	ids.settle(errs)

	be := &spate.BatchError{Errs: errs}
	if n := be.Count(); n > 0 {
		r.stats.failed.Add(int64(n))
		r.log.Warn("route: records left for redelivery", "failed", n, "records", len(recs))
		return be
	}
	return nil
}

// bound keeps DeadlineMargin of ctx's deadline for reporting the result.
func (r *Router) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := r.cfg.DeadlineMargin
	if left := time.Until(deadline); left < 2*margin {
		margin = left / 2
	}
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

func (r *Router) deadLetter(ctx context.Context, recs []spate.Record, dead map[string][]int, errs []error) {
	for reason, idx := range dead {
		sub := make([]spate.Record, len(idx))
		for j, i := range idx {
			sub[j] = recs[i]
		}
		itemErrs := spate.ItemErrors(r.dlq.PutReason(ctx, sub, reason), len(sub))
		failed := 0
		for j, err := range itemErrs {
			if err != nil {
				errs[idx[j]] = fmt.Errorf("router dead letter %s: %w", reason, err)
				failed++
			}
		}
		r.stats.deadLettered.Add(int64(len(idx) - failed))
		r.stats.reason(reason).Add(int64(len(idx)))
		r.log.Warn("route: dead-lettered", "reason", reason, "records", len(idx), "failed", failed)
	}
}

// send puts g's packs, retrying the refused ones, and marks the input
// records of packs that never made it in errs.
func (r *Router) send(ctx context.Context, g *group, errs []error, recs []spate.Record, ids *batchIDs) {
	packErrs := make([]error, len(g.packs))
	pending := make([]int, len(g.packs))
	for p := range pending {
		pending[p] = p
	}
	datas := make([][]byte, 0, min(len(g.packs), r.cfg.MaxBatchRecords))
	backoff := r.cfg.MinBackoff
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 1 {
			if attempt > r.cfg.MaxAttempts || !sleep(ctx, jitter(backoff)) {
				break
			}
			backoff = min(2*backoff, r.cfg.MaxBackoff)
		}
		var retry []int
		for len(pending) > 0 {
			n, size := 0, 0
			datas = datas[:0]
			for n < len(pending) && n < r.cfg.MaxBatchRecords {
				d := g.data(pending[n])
				if n > 0 && size+len(d) > r.cfg.MaxBatchBytes {
					break
				}
				datas = append(datas, d)
				size += len(d)
				n++
			}
			batch := pending[:n]
			pending = pending[n:]
			err := r.dest.PutBatch(ctx, g.stream, datas)
			r.stats.calls.Add(1)
			r.stats.putRecords.Add(int64(n))
			if attempt > 1 {
				r.stats.retries.Add(1)
			}
			itemErrs := spate.ItemErrors(err, n)
			for j, p := range batch {
				if packErrs[p] = itemErrs[j]; packErrs[p] == nil {
					r.accepted(g, p)
					ids.delivered(g.idx[g.packs[p].lo:g.packs[p].hi], recs)
					continue
				}
				if !errors.Is(packErrs[p], ErrPermanent) {
					retry = append(retry, p)
				}
			}
			if err != nil {
				r.log.Warn("route: put failed", "stream", g.stream, "attempt", attempt, "records", n,
					"failed", countErrs(itemErrs), "error", err)
			}
		}
		pending = retry
	}
	for p, err := range packErrs {
		if err == nil {
			continue
		}
		err = fmt.Errorf("router put %s: %w", g.stream, err)
		pk := g.packs[p]
		for _, i := range g.idx[pk.lo:pk.hi] {
			errs[i] = err
		}
	}
}

func (r *Router) accepted(g *group, p int) {
	pk := g.packs[p]
	n := pk.end - pk.start
	r.stats.routed.Add(int64(pk.hi - pk.lo))
	r.stats.bytes.Add(int64(n))
	r.stats.billed.Add(billed(n))
	r.stats.unpackedBilled.Add(pk.unpacked)
}

func countErrs(errs []error) int {
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
		}
	}
	return n
}

// jitter picks a pause in [d/2, d]: spread out, yet never so short that a
// throttled destination is hit again at once.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(half+1)
}

// sleep pauses for d unless ctx ends first or its deadline would pass
// before d does; it reports whether the pause was taken.
func sleep(ctx context.Context, d time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stats is a snapshot of the router's counters since it was created.
type Stats struct {
	Batches      int64 // Route calls
	Records      int64 // input records
	Routed       int64 // events a destination accepted
	DeadLettered int64 // records the dead-letter target accepted
	Failed       int64 // input records reported for redelivery
	// Dead-letter reasons, counted when sent.
	Undecodable int64
	UnknownType int64
	TooLarge    int64
	// Calls to the destination, and those of them that were retries.
	Calls   int64
	Retries int64
	// PutRecords counts destination records sent, retries included.
	PutRecords int64
	// Bytes of destination records accepted; BilledBytes the same rounded
	// up per record to BillingUnit, as Firehose bills ingestion;
	// UnpackedBilledBytes what the same events would be billed one per
	// record. Their difference is what packing saves.
	Bytes               int64
	BilledBytes         int64
	UnpackedBilledBytes int64
	// Duplicates are input records skipped because their event_id was
	// delivered lately from the same shard (Config.RecentIDs) or earlier
	// in the same batch; RememberedIDs is how many ids are held now.
	Duplicates    int64
	RememberedIDs int64
}

type counters struct {
	batches, records, routed, deadLettered, failed atomic.Int64
	undecodable, unknownType, tooLarge             atomic.Int64
	calls, retries, putRecords                     atomic.Int64
	bytes, billed, unpackedBilled                  atomic.Int64
	duplicates                                     atomic.Int64
}

func (c *counters) reason(reason string) *atomic.Int64 {
	switch reason {
	case ReasonUnknownType:
		return &c.unknownType
	case ReasonTooLarge:
		return &c.tooLarge
	default:
		return &c.undecodable
	}
}

// Stats returns the counters now.
func (r *Router) Stats() Stats {
	c := &r.stats
	return Stats{
		Batches: c.batches.Load(), Records: c.records.Load(), Routed: c.routed.Load(),
		DeadLettered: c.deadLettered.Load(), Failed: c.failed.Load(),
		Undecodable: c.undecodable.Load(), UnknownType: c.unknownType.Load(), TooLarge: c.tooLarge.Load(),
		Calls: c.calls.Load(), Retries: c.retries.Load(), PutRecords: c.putRecords.Load(),
		Bytes: c.bytes.Load(), BilledBytes: c.billed.Load(), UnpackedBilledBytes: c.unpackedBilled.Load(),
		Duplicates: c.duplicates.Load(), RememberedIDs: r.remembered(),
	}
}
