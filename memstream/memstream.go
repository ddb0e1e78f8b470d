// Package memstream is the in-process stream of local mode: a spate.Sink
// with Kinesis' semantics (records hashed to shards by partition key, per
// shard ordering, sequence numbers, arrival timestamps) that delivers
// Lambda-sized batches to consumers the way an event source mapping does,
// including checkpointing past the records a handler reports as done.
//
// It is deliberately single-process: users who outgrow it deploy the same
// consumers on Kinesis, not a home-made distributed stream.
package memstream

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/clock"
)

// Config holds the stream's knobs; zero values take the documented defaults.
type Config struct {
	// Shards is the number of shards (default 4).
	Shards int
	// MaxRecords bounds the records retained and not yet consumed by every
	// consumer, across shards (default 200,000). Beyond it Put fails the
	// excess records with spate.ErrThrottled, as a full Kinesis shard would.
	MaxRecords int
	// Now is the clock for arrival timestamps; nil is the wall clock
	// (internal/clock).
	Now func() time.Time
}

// Stream is an in-process stream. Subscribe consumers, then Run.
type Stream struct {
	cfg    Config
	shards []*shard
	// bounds are the exclusive upper ends of each shard's hash key range,
	// as 128-bit big-endian numbers; the last shard takes the rest.
	bounds [][md5.Size]byte

	mu        sync.Mutex
	consumers []*consumer
	closed    bool
	retained  int
}

type shard struct {
	id string

	mu      sync.Mutex
	recs    []spate.Record // recs[0] has offset base
	base    int64
	next    int64         // next sequence number
	changed chan struct{} // closed and replaced on every append or close
}

// New returns a stream with cfg.
func New(cfg Config) *Stream {
	if cfg.Shards <= 0 {
		cfg.Shards = 4
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 200_000
	}
	cfg.Now = clock.Or(cfg.Now)
	s := &Stream{cfg: cfg}
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	for i := range cfg.Shards {
		s.shards = append(s.shards, &shard{id: fmt.Sprintf("shardId-%012d", i), changed: make(chan struct{})})
		if i == cfg.Shards-1 {
			break // 2^128 does not fit; the last shard is the default
		}
		hi := new(big.Int).Mul(space, big.NewInt(int64(i+1)))
		hi.Div(hi, big.NewInt(int64(cfg.Shards)))
		var b [md5.Size]byte
		hi.FillBytes(b[:])
		s.bounds = append(s.bounds, b)
	}
	return s
}

var _ spate.Sink = (*Stream)(nil)

// ShardFor returns the index of the shard a partition key maps to: the MD5
// of the key as a 128-bit integer, in evenly split ranges, as Kinesis does.
func (s *Stream) ShardFor(key string) int {
	sum := md5.Sum([]byte(key))
	for i := range s.bounds {
		if bytes.Compare(sum[:], s.bounds[i][:]) < 0 {
			return i
		}
	}
	return len(s.shards) - 1
}

// Put appends recs to their shards. Records beyond MaxRecords fail with
// spate.ErrThrottled in a *spate.BatchError; after Close every record fails
// with spate.ErrClosed.
func (s *Stream) Put(ctx context.Context, recs []spate.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstream put: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstream put: %w", spate.ErrClosed)
	}
	room := s.cfg.MaxRecords - s.retained
	if room < 0 {
		room = 0
	}
	n := min(room, len(recs))
	s.retained += n
	s.mu.Unlock()

	// Group by shard first: each shard is locked, and its consumers woken,
	// once per Put rather than once per record.
	now := s.cfg.Now().UTC()
	byShard := make([][]int, len(s.shards))
	for i := range recs[:n] {
		idx := s.ShardFor(recs[i].PartitionKey)
		byShard[idx] = append(byShard[idx], i)
	}
	for idx, members := range byShard {
		if len(members) == 0 {
			continue
		}
		sh := s.shards[idx]
		sh.mu.Lock()
		for _, i := range members {
			r := recs[i]
			r.ShardID = sh.id
			r.SequenceNumber = sequence(sh.next)
			r.ArrivedAt = now
			sh.next++
			sh.recs = append(sh.recs, r)
		}
		close(sh.changed)
		sh.changed = make(chan struct{})
		sh.mu.Unlock()
	}
	if n == len(recs) {
		return nil
	}
	be := spate.NewBatchError(len(recs))
	for i := n; i < len(recs); i++ {
		be.Failed(i, fmt.Errorf("memstream put: %w", spate.ErrThrottled))
	}
	return be
}

// sequence formats n so that string order is numeric order.
func sequence(n int64) string {
	const width = 21
	s := strconv.FormatInt(n, 10)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// Handler processes one batch of records from one shard, in order. It
// returns nil when every record is done; a *spate.BatchError to checkpoint
// before the first failed record and redeliver from there (Lambda's
// ReportBatchItemFailures); any other error to redeliver the whole batch.
type Handler func(ctx context.Context, recs []spate.Record) error

// ConsumerConfig configures one consumer.
type ConsumerConfig struct {
	Name string
	// BatchSize is the most records per call (default 100, Lambda's default).
	BatchSize int
	// RetryBackoff is the pause before redelivering a failed batch
	// (default 100 ms, doubling up to 5 s).
	RetryBackoff time.Duration
}

type consumer struct {
	cfg     ConsumerConfig
	handler Handler
	cursor  []int64 // per shard: the offset of the next record to deliver
	mu      sync.Mutex
}

// Subscribe adds a consumer that will see every record put after Run starts.
// Call it before Run.
func (s *Stream) Subscribe(cfg ConsumerConfig, h Handler) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consumers = append(s.consumers, &consumer{cfg: cfg, handler: h, cursor: make([]int64, len(s.shards))})
}

// Close stops accepting records. Run returns once every consumer has
// processed everything already put.
func (s *Stream) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for _, sh := range s.shards {
		sh.mu.Lock()
		close(sh.changed)
		sh.changed = make(chan struct{})
		sh.mu.Unlock()
	}
}

// Run delivers records to every consumer, one goroutine per consumer and
// shard, until Close has been called and everything is consumed, or ctx is
// done (then it returns ctx's error and undelivered records are dropped).
func (s *Stream) Run(ctx context.Context) error {
	s.mu.Lock()
	consumers := append([]*consumer(nil), s.consumers...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(consumers)*len(s.shards))
	for _, c := range consumers {
		for i := range s.shards {
			wg.Go(func() {
				if err := s.deliver(ctx, c, i); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	return errors.Join(drain(errs)...)
}

func drain(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

func (s *Stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// deliver runs one consumer over one shard.
func (s *Stream) deliver(ctx context.Context, c *consumer, idx int) error {
	sh := s.shards[idx]
	backoff := c.cfg.RetryBackoff
	for {
		sh.mu.Lock()
		start := c.cursor[idx] - sh.base
		var batch []spate.Record
		if start < int64(len(sh.recs)) {
			end := min(start+int64(c.cfg.BatchSize), int64(len(sh.recs)))
			batch = append(batch, sh.recs[start:end]...)
		}
		wait := sh.changed
		sh.mu.Unlock()

		if len(batch) == 0 {
			if s.isClosed() {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wait:
			}
			continue
		}

		err := c.handler(ctx, batch)
		done := len(batch)
		if err != nil {
			var be *spate.BatchError
			if errors.As(err, &be) && len(be.Errs) == len(batch) {
				done = firstFailed(be)
			} else {
				done = 0
			}
		}
		if done > 0 {
			c.mu.Lock()
			c.cursor[idx] += int64(done)
			c.mu.Unlock()
			s.trim(idx)
		}
		if done == len(batch) {
			backoff = c.cfg.RetryBackoff
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func firstFailed(be *spate.BatchError) int {
	for i, err := range be.Errs {
		if err != nil {
			return i
		}
	}
	return len(be.Errs)
}

// trim drops the records of shard idx that every consumer has passed.
func (s *Stream) trim(idx int) {
	s.mu.Lock()
	low := int64(-1)
	for _, c := range s.consumers {
		c.mu.Lock()
		if low < 0 || c.cursor[idx] < low {
			low = c.cursor[idx]
		}
		c.mu.Unlock()
	}
	s.mu.Unlock()
	sh := s.shards[idx]
	sh.mu.Lock()
	n := int(low - sh.base)
	if n > 0 {
		// Reslice rather than copy; clearing lets the payloads go, and the
		// next growing append drops the array's dead front.
		clear(sh.recs[:n])
		sh.recs = sh.recs[n:]
		sh.base = low
	}
	sh.mu.Unlock()
	if n > 0 {
		s.mu.Lock()
		s.retained -= n
		s.mu.Unlock()
	}
}

// Shards returns the shard ids.
func (s *Stream) Shards() []string {
	ids := make([]string, len(s.shards))
	for i, sh := range s.shards {
		ids[i] = sh.id
	}
	return ids
}
