package memstream

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/clock"
)

// LogConfig configures a Log; zero values take the documented defaults.
type LogConfig struct {
	// Shards is the number of shards (default 4).
	Shards int
	// Consumers names every consumer; a record is kept until each has
	// committed past it. Required.
	Consumers []string
	// MaxRecords bounds the records retained (default 200,000); beyond it
	// Put fails the batch with spate.ErrThrottled.
	MaxRecords int
	// Now is the clock for arrival timestamps; nil is the wall clock.
	Now func() time.Time
}

// Log is an in-memory stream with the durable stream's pull contract
// (diskstream): consumers Read after a sequence number and Commit their
// checkpoints and state, and records go once every consumer is past them.
// Sequence numbers start at 1 per shard. Nothing survives the process: it
// is for tests and benchmarks (`spate local --stream memory`).
type Log struct {
	cfg  LogConfig
	hash shardMap
	id   string

	mu       sync.Mutex
	shards   []logShard
	cps      map[string][]uint64
	state    map[string]map[string][]byte
	retained int
	closed   bool
	changed  chan struct{}
}

type logShard struct {
	recs    []spate.Record // recs[0] has sequence number base
	base    uint64
	head    uint64
	arrived time.Time
}

// NewLog returns an empty Log.
func NewLog(cfg LogConfig) (*Log, error) {
	if len(cfg.Consumers) == 0 {
		return nil, fmt.Errorf("memstream log: Consumers is required")
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 4
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 200_000
	}
	cfg.Now = clock.Or(cfg.Now)
	l := &Log{cfg: cfg, hash: newShardMap(cfg.Shards), id: "mem-" + strings.ToLower(rand.Text()[:12]),
		shards: make([]logShard, cfg.Shards), cps: map[string][]uint64{}, state: map[string]map[string][]byte{}, changed: make(chan struct{})}
	for i := range l.shards {
		l.shards[i].base = 1
	}
	for _, c := range cfg.Consumers {
		l.cps[c] = make([]uint64, cfg.Shards)
		l.state[c] = map[string][]byte{}
	}
	return l, nil
}

var _ spate.Sink = (*Log)(nil)

// ID names the log (random: a Log lives as long as its process).
func (l *Log) ID() string { return l.id }

// Shards returns the shard ids.
func (l *Log) Shards() []string { return slices.Clone(l.hash.ids) }

// Put appends recs, all or none: past MaxRecords every record fails with
// spate.ErrThrottled; after Seal with spate.ErrClosed.
func (l *Log) Put(ctx context.Context, recs []spate.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstream log put: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("memstream log put: %w", spate.ErrClosed)
	}
	if l.retained+len(recs) > l.cfg.MaxRecords {
		be := spate.NewBatchError(len(recs))
		for i := range recs {
			be.Failed(i, fmt.Errorf("memstream log put: full: %w", spate.ErrThrottled))
		}
		return be
	}
	now := l.cfg.Now().UTC()
	for _, r := range recs {
		idx := l.hash.shardFor(r.PartitionKey)
		sh := &l.shards[idx]
		if now.After(sh.arrived) {
			sh.arrived = now
		}
		sh.head++
		r.ShardID = l.hash.ids[idx]
		r.SequenceNumber = fmt.Sprintf("%021d", sh.head)
		r.ArrivedAt = sh.arrived
		sh.recs = append(sh.recs, r)
	}
	l.retained += len(recs)
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

// Head returns the last sequence number of shard idx.
func (l *Log) Head(idx int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shards[idx].head
}

// Read returns up to limit records of shard idx after sequence number after,
// waiting for some; once sealed and drained an error wrapping
// spate.ErrClosed.
func (l *Log) Read(ctx context.Context, idx int, after uint64, limit int) ([]spate.Record, error) {
	for {
		l.mu.Lock()
		sh := &l.shards[idx]
		if sh.head > after {
			start := int(max(after+1, sh.base) - sh.base)
			end := min(start+limit, len(sh.recs))
			out := append([]spate.Record(nil), sh.recs[start:end]...)
			l.mu.Unlock()
			return out, nil
		}
		closed, wait := l.closed, l.changed
		l.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("memstream log: sealed and drained: %w", spate.ErrClosed)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait:
		}
	}
}

// Checkpoints returns consumer's checkpoint per shard.
func (l *Log) Checkpoints(consumer string) ([]uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cp, ok := l.cps[consumer]
	if !ok {
		return nil, fmt.Errorf("memstream log: unknown consumer %q", consumer)
	}
	return append([]uint64(nil), cp...), nil
}

// State returns a copy of consumer's state keys.
func (l *Log) State(consumer string) (map[string][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.state[consumer]
	if !ok {
		return nil, fmt.Errorf("memstream log: unknown consumer %q", consumer)
	}
	out := make(map[string][]byte, len(st))
	for k, v := range st {
		out[k] = append([]byte(nil), v...)
	}
	return out, nil
}

// Commit stores consumer's checkpoints and state changes and drops the
// records every consumer is past.
func (l *Log) Commit(consumer string, checkpoints map[int]uint64, put map[string][]byte, del []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cp, ok := l.cps[consumer]
	if !ok {
		return fmt.Errorf("memstream log: unknown consumer %q", consumer)
	}
	for idx, seq := range checkpoints {
		cp[idx] = seq
	}
	for k, v := range put {
		l.state[consumer][k] = append([]byte(nil), v...)
	}
	for _, k := range del {
		delete(l.state[consumer], k)
	}
	for idx := range checkpoints {
		low := cp[idx]
		for _, c := range l.cps {
			low = min(low, c[idx])
		}
		sh := &l.shards[idx]
		if n := int(low+1) - int(sh.base); n > 0 {
			clear(sh.recs[:n])
			sh.recs = sh.recs[n:]
			sh.base += uint64(n)
			l.retained -= n
		}
	}
	return nil
}

// Seal stops accepting records; Read drains what is left.
func (l *Log) Seal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
		l.changed = make(chan struct{})
	}
}
