// Package diskstream is the durable stream of local mode: Kinesis'
// semantics (records hashed to shards by partition key, per-shard order,
// sequence numbers, arrival timestamps) kept in one embedded B+tree file
// (go.etcd.io/bbolt) under <data>/stream/, so that a record Put has
// acknowledged survives kill -9 and a restart.
//
// Writes are group-committed: every Put waiting while a transaction is
// being synced goes into the next one, so there is one commit (bbolt's
// fdatasync of the pages, then of the meta page) per group of producer
// batches, never one per event. Put returns only after that commit.
//
// Consumers pull: Read returns a shard's records after a sequence number,
// and Commit stores a consumer's checkpoints, with any state of its own
// (an outbox, an intent record), in one transaction. Records are deleted
// once every consumer named in Config.Consumers has committed past them,
// and Put refuses records with spate.ErrThrottled while the retained
// records fill MaxBytes/2 of the file, as a full Kinesis shard would.
//
// bbolt rather than a hand-written segment format: its copy-on-write pages
// and checksummed meta pages make a torn write impossible to read back, the
// same transaction carries records, checkpoints and consumer state, and
// its file lock keeps a second process off the same data directory.
package diskstream

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/clock"
)

// FileName is the stream's file inside its directory.
const FileName = "stream.db"

// Config holds the stream's knobs; zero values take the documented defaults.
type Config struct {
	// Shards is the number of shards (default 4). It is fixed when the
	// stream is created; reopening with another count is an error.
	Shards int
	// Consumers names every consumer; a record is kept until each has
	// committed past it. Required.
	Consumers []string
	// MaxBytes bounds the stream's file (default 1 GiB). Put refuses
	// records once those retained reach half of it: the other half is room
	// for the tree's pages, commits and fragmentation.
	MaxBytes int64
	// Now is the clock for arrival timestamps; nil is the wall clock
	// (internal/clock).
	Now func() time.Time
	// NoSync skips fsync: for benchmarks only, a crash then loses records.
	NoSync bool
}

// ErrClosed is returned by Read once the stream is sealed and the shard
// has been read to its end; it wraps spate.ErrClosed.
var ErrClosed = fmt.Errorf("diskstream: sealed and drained: %w", spate.ErrClosed)

var (
	bucketMeta = []byte("meta")
	keyShards  = []byte("shards")
	keyID      = []byte("id")
)

func logBucket(i int) []byte    { return []byte("log/" + strconv.Itoa(i)) }
func cpBucket(c string) []byte  { return []byte("cp/" + c) }
func stBucket(c string) []byte  { return []byte("state/" + c) }
func headKey(i int) []byte      { return []byte("head/" + strconv.Itoa(i)) }
func be(n uint64) []byte        { return binary.BigEndian.AppendUint64(nil, n) }
func unbe(b []byte) uint64      { return binary.BigEndian.Uint64(b) }
func shardID(i int) string      { return fmt.Sprintf("shardId-%012d", i) }
func formatSeq(n uint64) string { return fmt.Sprintf("%021d", n) }

// ParseSequence returns the number of a sequence number Read gave out.
func ParseSequence(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

// Stream is a durable stream. It is safe for concurrent use.
type Stream struct {
	db     *bolt.DB
	cfg    Config
	path   string
	id     string
	bounds [][md5.Size]byte
	limit  int64

	reqs      chan *putReq
	committed chan struct{}
	writers   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	heads    []uint64 // last committed sequence number per shard
	arrived  []time.Time
	retained int64
	changed  chan struct{} // closed and replaced on every commit and on Seal

	commits, records, throttled, deleted atomic.Int64
}

type putReq struct {
	recs []spate.Record
	size int64
	done chan error
}

// Recovered is what Open found on disk.
type Recovered struct {
	Records int64 // records retained, not yet past every consumer
	Bytes   int64
}

// Open opens or creates the stream in dir.
func Open(dir string, cfg Config) (*Stream, Recovered, error) {
	var rec Recovered
	if len(cfg.Consumers) == 0 {
		return nil, rec, errors.New("diskstream: Consumers is required")
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 4
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.MaxBytes < 1<<20 {
		return nil, rec, fmt.Errorf("diskstream: MaxBytes %d is below 1 MiB", cfg.MaxBytes)
	}
	cfg.Now = clock.Or(cfg.Now)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, rec, fmt.Errorf("diskstream open: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o644, &bolt.Options{
		// A second process on the same directory fails instead of waiting.
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		MaxSize:        int(cfg.MaxBytes),
		NoSync:         cfg.NoSync,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, rec, fmt.Errorf("diskstream open %s: locked by another process (one spate local per data directory)", path)
		}
		return nil, rec, fmt.Errorf("diskstream open %s: %w", path, err)
	}
	db.AllocSize = int(min(16<<20, cfg.MaxBytes/16))
	s := &Stream{db: db, cfg: cfg, path: path, limit: cfg.MaxBytes / 2,
		reqs: make(chan *putReq, 64), committed: make(chan struct{}), changed: make(chan struct{}),
		heads: make([]uint64, cfg.Shards), arrived: make([]time.Time, cfg.Shards)}
	if err := s.load(&rec); err != nil {
		_ = db.Close()
		return nil, rec, err
	}
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	for i := 1; i < cfg.Shards; i++ {
		hi := new(big.Int).Mul(space, big.NewInt(int64(i)))
		hi.Div(hi, big.NewInt(int64(cfg.Shards)))
		var b [md5.Size]byte
		hi.FillBytes(b[:])
		s.bounds = append(s.bounds, b)
	}
	go s.commitLoop()
	return s, rec, nil
}

// load creates the buckets, checks the shard count and reads the heads and
// the retained size.
func (s *Stream) load(rec *Recovered) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyShards); v != nil {
			if n := int(unbe(v)); n != s.cfg.Shards {
				return fmt.Errorf("diskstream: %s has %d shards, not %d", s.path, n, s.cfg.Shards)
			}
		} else if err := meta.Put(keyShards, be(uint64(s.cfg.Shards))); err != nil {
			return err
		}
		if v := meta.Get(keyID); v != nil {
			s.id = string(v)
		} else {
			s.id = strings.ToLower(rand.Text()[:12])
			if err := meta.Put(keyID, []byte(s.id)); err != nil {
				return err
			}
		}
		for i := range s.cfg.Shards {
			if v := meta.Get(headKey(i)); v != nil {
				s.heads[i] = unbe(v)
			}
			b, err := tx.CreateBucketIfNotExists(logBucket(i))
			if err != nil {
				return err
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				n, _ := binary.Uvarint(v)
				rec.Records += int64(n)
				s.retained += int64(len(k) + len(v))
			}
		}
		for _, c := range s.cfg.Consumers {
			if _, err := tx.CreateBucketIfNotExists(cpBucket(c)); err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(stBucket(c)); err != nil {
				return err
			}
		}
		rec.Bytes = s.retained
		return nil
	})
}

// ID is the stream's identity, made when it was created: stable across
// restarts, different for every data directory.
func (s *Stream) ID() string { return s.id }

// Shards returns the shard ids.
func (s *Stream) Shards() []string {
	ids := make([]string, s.cfg.Shards)
	for i := range ids {
		ids[i] = shardID(i)
	}
	return ids
}

// ShardFor returns the index of the shard a partition key maps to: the MD5
// of the key as a 128-bit integer, in evenly split ranges, as Kinesis does.
func (s *Stream) ShardFor(key string) int {
	sum := md5.Sum([]byte(key))
	for i := range s.bounds {
		if bytes.Compare(sum[:], s.bounds[i][:]) < 0 {
			return i
		}
	}
	return s.cfg.Shards - 1
}

var _ spate.Sink = (*Stream)(nil)

// Put appends recs durably: it returns nil once they are committed to
// disk. When the retained records are at the bound every record fails with
// spate.ErrThrottled in a *spate.BatchError and nothing is written; after
// Seal, Put fails with spate.ErrClosed.
func (s *Stream) Put(ctx context.Context, recs []spate.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("diskstream put: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	var size int64
	for _, r := range recs {
		size += int64(len(r.PartitionKey) + len(r.Data) + 2*binary.MaxVarintLen32)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("diskstream put: %w", spate.ErrClosed)
	}
	full := s.retained+size > s.limit
	if !full {
		s.writers.Add(1)
	}
	s.mu.Unlock()
	if full {
		return s.throttle(len(recs))
	}
	defer s.writers.Done()
	req := &putReq{recs: recs, size: size, done: make(chan error, 1)}
	s.reqs <- req
	// Once queued, wait for the commit whatever ctx says: answering an
	// error for records that then become durable would make the client
	// send them twice.
	if err := <-req.done; err != nil {
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			return s.throttle(len(recs))
		}
		return fmt.Errorf("diskstream put: %w", err)
	}
	return nil
}

func (s *Stream) throttle(n int) error {
	s.throttled.Add(int64(n))
	be := spate.NewBatchError(n)
	for i := range n {
		be.Failed(i, fmt.Errorf("diskstream put: stream full: %w", spate.ErrThrottled))
	}
	return be
}

// commitLoop writes queued Puts, as many per transaction as are waiting.
func (s *Stream) commitLoop() {
	defer close(s.committed)
	for req := range s.reqs {
		group := []*putReq{req}
		var size int64 = req.size
	more:
		for size < 16<<20 {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break more
				}
				group = append(group, r)
				size += r.size
			default:
				break more
			}
		}
		err := s.commit(group)
		for _, r := range group {
			r.done <- err
		}
	}
}

// commit writes group as one chunk per shard it touches, in one
// transaction, then publishes the new heads to readers.
func (s *Stream) commit(group []*putReq) error {
	now := s.cfg.Now().UTC()
	s.mu.Lock()
	heads := append([]uint64(nil), s.heads...)
	arrived := append([]time.Time(nil), s.arrived...)
	s.mu.Unlock()

	byShard := make([][]*spate.Record, s.cfg.Shards)
	n := 0
	for _, r := range group {
		for i := range r.recs {
			idx := s.ShardFor(r.recs[i].PartitionKey)
			byShard[idx] = append(byShard[idx], &r.recs[i])
			n++
		}
	}
	var added int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for idx, recs := range byShard {
			if len(recs) == 0 {
				continue
			}
			// Arrival never goes back within a shard, so each shard's
			// tumbling windows are contiguous runs of sequence numbers.
			at := now
			if at.Before(arrived[idx]) {
				at = arrived[idx]
			}
			arrived[idx] = at
			v := binary.AppendUvarint(nil, uint64(len(recs)))
			v = binary.AppendVarint(v, at.UnixNano())
			for _, r := range recs {
				v = binary.AppendUvarint(v, uint64(len(r.PartitionKey)))
				v = append(v, r.PartitionKey...)
				v = binary.AppendUvarint(v, uint64(len(r.Data)))
				v = append(v, r.Data...)
			}
			first := heads[idx] + 1
			b := tx.Bucket(logBucket(idx))
			b.FillPercent = 1 // append-only keys: full pages
			if err := b.Put(be(first), v); err != nil {
				return err
			}
			heads[idx] += uint64(len(recs))
			if err := meta.Put(headKey(idx), be(heads[idx])); err != nil {
				return err
			}
			added += int64(8 + len(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.commits.Add(1)
	s.records.Add(int64(n))
	s.mu.Lock()
	s.heads, s.arrived = heads, arrived
	s.retained += added
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Read returns up to max records of shard idx after sequence number after,
// waiting until there are some. It returns ErrClosed once the stream is
// sealed and the shard read to its end, or ctx's error.
func (s *Stream) Read(ctx context.Context, idx int, after uint64, max int) ([]spate.Record, error) {
	for {
		s.mu.Lock()
		head, closed, wait := s.heads[idx], s.closed, s.changed
		s.mu.Unlock()
		if head > after {
			return s.read(idx, after, head, max)
		}
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait:
		}
	}
}

// Head returns the last sequence number committed to shard idx.
func (s *Stream) Head(idx int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heads[idx]
}

func (s *Stream) read(idx int, after, head uint64, max int) ([]spate.Record, error) {
	var out []spate.Record
	id := shardID(idx)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(logBucket(idx)).Cursor()
		k, v := c.Seek(be(after + 1))
		if k == nil || unbe(k) > after+1 {
			if pk, pv := c.Prev(); pk != nil {
				k, v = pk, pv
			} else if k == nil {
				return nil
			}
		}
		for ; k != nil && len(out) < max; k, v = c.Next() {
			seq := unbe(k)
			cnt, n := binary.Uvarint(v)
			at, m := binary.Varint(v[n:])
			if n <= 0 || m <= 0 {
				return fmt.Errorf("diskstream read %s chunk %d: bad header", id, seq)
			}
			arrived := time.Unix(0, at).UTC()
			buf := bytes.Clone(v[n+m:])
			for j := uint64(0); j < cnt && len(out) < max; j, seq = j+1, seq+1 {
				pk, rest, err := field(buf)
				if err != nil {
					return fmt.Errorf("diskstream read %s record %d: %w", id, seq, err)
				}
				data, rest, err := field(rest)
				if err != nil {
					return fmt.Errorf("diskstream read %s record %d: %w", id, seq, err)
				}
				buf = rest
				if seq <= after || seq > head {
					continue
				}
				out = append(out, spate.Record{PartitionKey: string(pk), Data: data[:len(data):len(data)],
					ShardID: id, SequenceNumber: formatSeq(seq), ArrivedAt: arrived})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func field(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errors.New("truncated record")
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// Commit stores, in one transaction, consumer's progress: checkpoints maps
// a shard index to the last sequence number it is done with (its output
// durable); put and del change its own state keys. Then it deletes the
// records every consumer is past.
func (s *Stream) Commit(consumer string, checkpoints map[int]uint64, put map[string][]byte, del []string) error {
	var freed, recs int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		cp := tx.Bucket(cpBucket(consumer))
		st := tx.Bucket(stBucket(consumer))
		if cp == nil || st == nil {
			return fmt.Errorf("unknown consumer %q", consumer)
		}
		for idx, seq := range checkpoints {
			if err := cp.Put(be(uint64(idx)), be(seq)); err != nil {
				return err
			}
		}
		for k, v := range put {
			if err := st.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for _, k := range del {
			if err := st.Delete([]byte(k)); err != nil {
				return err
			}
		}
		for idx := range checkpoints {
			low := uint64(1<<63 - 1)
			for _, name := range s.cfg.Consumers {
				var seq uint64
				if v := tx.Bucket(cpBucket(name)).Get(be(uint64(idx))); v != nil {
					seq = unbe(v)
				}
				low = min(low, seq)
			}
			b := tx.Bucket(logBucket(idx))
			var dead [][]byte
			cur := b.Cursor()
			for k, v := cur.First(); k != nil; k, v = cur.Next() {
				cnt, _ := binary.Uvarint(v)
				if unbe(k)+cnt-1 > low {
					break
				}
				dead = append(dead, bytes.Clone(k))
				freed += int64(len(k) + len(v))
				recs += int64(cnt)
			}
			for _, k := range dead {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("diskstream commit %s: %w", consumer, err)
	}
	if freed > 0 {
		s.deleted.Add(recs)
		s.mu.Lock()
		s.retained -= freed
		s.mu.Unlock()
	}
	return nil
}

// Checkpoints returns consumer's checkpoint per shard (0: nothing done).
func (s *Stream) Checkpoints(consumer string) ([]uint64, error) {
	out := make([]uint64, s.cfg.Shards)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(cpBucket(consumer))
		if b == nil {
			return fmt.Errorf("unknown consumer %q", consumer)
		}
		for i := range out {
			if v := b.Get(be(uint64(i))); v != nil {
				out[i] = unbe(v)
			}
		}
		return nil
	})
	return out, err
}

// State returns consumer's state keys.
func (s *Stream) State(consumer string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(stBucket(consumer))
		if b == nil {
			return fmt.Errorf("unknown consumer %q", consumer)
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}

// Seal stops accepting records: Put fails with spate.ErrClosed, waiting
// Puts are committed, and Read returns ErrClosed at each shard's end.
func (s *Stream) Seal() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.writers.Wait()
	close(s.reqs)
	<-s.committed
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Close seals the stream and closes its file.
func (s *Stream) Close() error {
	s.Seal()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("diskstream close: %w", err)
	}
	return nil
}

// Stats is a snapshot of the stream's counters.
type Stats struct {
	Commits   int64 // transactions committed with records: one fsync group each
	Records   int64 // records written
	Throttled int64 // records refused because the stream was full
	Deleted   int64 // records deleted past every consumer
	Retained  int64 // bytes of records retained
	FileBytes int64 // size of the stream's file
}

// Stats returns the counters now.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	retained := s.retained
	s.mu.Unlock()
	st := Stats{Commits: s.commits.Load(), Records: s.records.Load(), Throttled: s.throttled.Load(),
		Deleted: s.deleted.Load(), Retained: retained}
	if fi, err := os.Stat(s.path); err == nil {
		st.FileBytes = fi.Size()
	}
	return st
}
