// Package kinesis adapts Kinesis Data Streams to spate: a Sink over
// PutRecords that reads every record's result, and the capacity controls
// prescaling uses.
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/kpl"
)

// PutRecords' limits.
const (
	MaxRecords     = 500
	MaxCallBytes   = 5 << 20
	MaxRecordBytes = 1 << 20
)

// API is the part of the Kinesis client the Sink uses.
type API interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// SinkConfig holds optional hooks and the aggregation settings.
type SinkConfig struct {
	// Observe, when set, sees every PutRecords call: its duration, records
	// sent and records failed (failed == sent when the call erred).
	Observe func(d time.Duration, records, failed int)
	// Shards, when set, turns aggregation on: the records of a Put are
	// grouped by the shard their partition key lands on and packed into
	// KPL aggregated records (package kpl) of at most AggregateBytes, each
	// with an explicit hash key inside its shard's range, so per-key order
	// survives. Without it every record is written as it is.
	Shards *ShardMap
	// AggregateBytes is the most an aggregated record holds, partition key
	// included (default DefaultAggregateBytes, one 25 KB PUT payload unit;
	// at most MaxRecordBytes).
	AggregateBytes int
}

// DefaultAggregateBytes fills one PUT payload unit (25 KB, which AWS
// counts as 25 KiB) per aggregated record.
const DefaultAggregateBytes = 25 << 10

// Sink writes records to one stream with PutRecords.
type Sink struct {
	api    API
	stream string
	cfg    SinkConfig
	pool   sync.Pool // *kpl.Builder

	calls, records, events, bytes, failed, unexpected atomic.Int64
}

var _ spate.Sink = (*Sink)(nil)

// NewSink returns a Sink for stream, a stream name or ARN.
func NewSink(api API, stream string, cfg SinkConfig) *Sink {
	if cfg.AggregateBytes <= 0 {
		cfg.AggregateBytes = DefaultAggregateBytes
	}
	cfg.AggregateBytes = min(cfg.AggregateBytes, MaxRecordBytes)
	s := &Sink{api: api, stream: stream, cfg: cfg}
	s.pool.New = func() any { return new(kpl.Builder) }
	return s
}

// SinkStats counts what the sink wrote. Events per record is Events /
// Records; with aggregation off they are equal.
type SinkStats struct {
	Calls   int64 // PutRecords calls
	Records int64 // Kinesis records written
	Events  int64 // records given to Put that those carried
	Bytes   int64 // partition keys and data of the records written
	Failed  int64 // Kinesis records refused (each fails all its events)
	// Unexpected counts records that landed on another shard than the
	// shard map predicted (each triggers a refresh).
	Unexpected int64
}

// Stats returns the counters.
func (s *Sink) Stats() SinkStats {
	return SinkStats{
		Calls: s.calls.Load(), Records: s.records.Load(), Events: s.events.Load(), Bytes: s.bytes.Load(),
		Failed: s.failed.Load(), Unexpected: s.unexpected.Load(),
	}
}

// entry is one Kinesis record to write: a record given to Put, or an
// aggregated record carrying the records order[lo:hi].
type entry struct {
	pk, ehk string
	data    []byte
	lo, hi  int
	shard   string // predicted shard, "" when unknown
}

func (e entry) size() int { return len(e.pk) + len(e.data) }

// Put writes recs in calls of at most 500 records and 5 MiB. Records
// Kinesis refuses come back in a *spate.BatchError, throttled ones wrapping
// spate.ErrThrottled; a record over 1 MiB fails with spate.ErrTooLarge.
// With aggregation, a refused aggregated record fails every record in it.
func (s *Sink) Put(ctx context.Context, recs []spate.Record) error {
	be := spate.NewBatchError(len(recs))
	var entries []entry
	var order []int
	if s.cfg.Shards != nil {
		if t := s.cfg.Shards.snapshot(ctx); t != nil {
			entries, order = s.aggregate(t, recs, be)
		}
	}
	if order == nil {
		entries = make([]entry, 0, len(recs))
		order = make([]int, len(recs))
		for i, r := range recs {
			order[i] = i
			if r.Size() > MaxRecordBytes {
				be.Failed(i, fmt.Errorf("kinesis put %s: record of %d bytes: %w", s.stream, r.Size(), spate.ErrTooLarge))
				continue
			}
			entries = append(entries, entry{pk: r.PartitionKey, data: r.Data, lo: i, hi: i + 1})
		}
	}
	start := 0
	for start < len(entries) {
		end, size := start, 0
		for end < len(entries) && end-start < MaxRecords && size+entries[end].size() <= MaxCallBytes {
			size += entries[end].size()
			end++
		}
		s.put(ctx, entries[start:end], order, be)
		start = end
	}
	return be.OrNil()
}

// aggregate groups recs by predicted shard into aggregated records, in
// order within each shard. A group of one is written as the plain record
// it is. Records over the size limit fail at once.
func (s *Sink) aggregate(t *shardTable, recs []spate.Record, be *spate.BatchError) ([]entry, []int) {
	type open struct {
		b   *kpl.Builder
		idx []int
		pk  string
	}
	// One group per shard, and a last one for keys no shard of the map
	// owns (mid-reshard): its records carry no explicit hash key and land
	// where their first event's partition key does.
	groups := make([]open, len(t.shards)+1)
	var entries []entry
	order := make([]int, 0, len(recs))
	flush := func(g *open, sh shard) {
		if len(g.idx) == 0 {
			return
		}
		lo := len(order)
		order = append(order, g.idx...)
		e := entry{lo: lo, hi: len(order), shard: sh.id}
		if len(g.idx) == 1 {
			r := recs[g.idx[0]]
			e.pk, e.data = r.PartitionKey, r.Data
		} else {
			e.pk, e.ehk, e.data = g.pk, sh.key, g.b.Bytes()
		}
		entries = append(entries, e)
		g.b.Reset()
		g.idx = g.idx[:0]
	}
	shardOf := func(i int) shard {
		if i == len(t.shards) {
			return shard{}
		}
		return shard{id: t.shards[i].id, key: t.shards[i].startKey}
	}
	for i, r := range recs {
		if r.Size() > MaxRecordBytes {
			be.Failed(i, fmt.Errorf("kinesis put %s: record of %d bytes: %w", s.stream, r.Size(), spate.ErrTooLarge))
			continue
		}
		sh := t.lookup(HashOf(r.PartitionKey))
		gi := len(t.shards)
		if sh.resolved {
			gi = sh.idx
		}
		g := &groups[gi]
		if g.b == nil {
			g.b = s.pool.Get().(*kpl.Builder)
			g.b.Reset()
		}
		u := kpl.Record{PartitionKey: r.PartitionKey, Data: r.Data}
		// The Kinesis record's own partition key counts against the
		// size target too.
		if len(g.idx) > 0 && !g.b.AddWithin(u, s.cfg.AggregateBytes-len(g.pk)) {
			flush(g, shardOf(gi))
		}
		if len(g.idx) == 0 {
			g.pk = r.PartitionKey
			g.b.Add(u)
		}
		g.idx = append(g.idx, i)
	}
	if groups[len(t.shards)].b != nil {
		s.cfg.Shards.Unexpected() // a gap in the map: refresh it
	}
	for gi := range groups {
		g := &groups[gi]
		if g.b == nil {
			continue
		}
		flush(g, shardOf(gi))
		s.pool.Put(g.b)
	}
	return entries, order
}

func (s *Sink) put(ctx context.Context, entries []entry, order []int, be *spate.BatchError) {
	in := &kinesis.PutRecordsInput{Records: make([]types.PutRecordsRequestEntry, len(entries))}
	setStream(&in.StreamName, &in.StreamARN, s.stream)
	for i, e := range entries {
		in.Records[i] = types.PutRecordsRequestEntry{Data: e.data, PartitionKey: aws.String(e.pk)}
		if e.ehk != "" {
			in.Records[i].ExplicitHashKey = aws.String(e.ehk)
		}
	}
	fail := func(e entry, err error) {
		for _, i := range order[e.lo:e.hi] {
			be.Failed(i, err)
		}
	}
	s.calls.Add(1)
	began := time.Now()
	out, err := s.api.PutRecords(ctx, in)
	if err != nil {
		err = fmt.Errorf("kinesis put %s: %w", s.stream, classify(err))
		for _, e := range entries {
			fail(e, err)
		}
		s.failed.Add(int64(len(entries)))
		s.observe(began, len(entries), len(entries))
		return
	}
	failed, unexpected := 0, false
	var okRecords, okEvents, okBytes int64
	for j, e := range entries {
		if j >= len(out.Records) {
			// A response with fewer entries than requested would be a
			// broken endpoint; never count the missing ones as written.
			failed++
			fail(e, fmt.Errorf("kinesis put %s: no result for record", s.stream))
			continue
		}
		res := out.Records[j]
		if res.ErrorCode == nil {
			okRecords++
			okEvents += int64(e.hi - e.lo)
			okBytes += int64(e.size())
			if e.shard != "" && res.ShardId != nil && *res.ShardId != e.shard {
				s.unexpected.Add(1)
				unexpected = true
			}
			continue
		}
		failed++
		var cause error = errors.New(aws.ToString(res.ErrorMessage))
		if aws.ToString(res.ErrorCode) == "ProvisionedThroughputExceededException" {
			cause = spate.ErrThrottled
		}
		fail(e, fmt.Errorf("kinesis put %s: %s: %w", s.stream, aws.ToString(res.ErrorCode), cause))
	}
	if unexpected {
		s.cfg.Shards.Unexpected()
	}
	s.records.Add(okRecords)
	s.events.Add(okEvents)
	s.bytes.Add(okBytes)
	s.failed.Add(int64(failed))
	s.observe(began, len(entries), failed)
}

func (s *Sink) observe(began time.Time, records, failed int) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(time.Since(began), records, failed)
	}
}

// classify maps throttling API errors to spate.ErrThrottled.
func classify(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException":
			return fmt.Errorf("%w: %w", spate.ErrThrottled, err)
		}
	}
	return err
}
