package kinesis

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/spate-dev/spate/internal/clock"
)

// ShardLister is the part of the Kinesis client a ShardMap uses.
type ShardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// ShardMap predicts which open shard a partition key lands on, from the
// stream's hash key ranges (ListShards). A shard owns the MD5 hashes of
// partition keys from its StartingHashKey to its EndingHashKey, as 128-bit
// big-endian integers. The map goes stale when the stream is resharded
// (prescale does it several times a day): it is refreshed in the background
// once older than its refresh interval, and at once when a put lands on a
// shard other than the predicted one.
type ShardMap struct {
	api    ShardLister
	stream string
	every  time.Duration
	now    func() time.Time

	table      atomic.Pointer[shardTable]
	refreshing atomic.Bool
	mu         sync.Mutex // serialises refreshes
	retryAt    atomic.Int64
	refreshes  atomic.Int64
	failures   atomic.Int64
}

type shardTable struct {
	shards []shardRange // open shards, by StartingHashKey
	at     time.Time
}

type shardRange struct {
	id         string
	start, end [16]byte
	startKey   string // decimal StartingHashKey, an explicit hash key inside the range
}

// DefaultShardRefresh is how old a shard map may get before a refresh.
const DefaultShardRefresh = time.Minute

// NewShardMap returns an empty map of stream's shards; the first Lookup
// that finds it empty loads it. every is the refresh interval (default
// DefaultShardRefresh); now is the clock (nil: clock.Wall).
func NewShardMap(api ShardLister, stream string, every time.Duration, now func() time.Time) *ShardMap {
	if every <= 0 {
		every = DefaultShardRefresh
	}
	return &ShardMap{api: api, stream: stream, every: every, now: clock.Or(now)}
}

// Refresh lists the stream's open shards and replaces the map.
func (m *ShardMap) Refresh(ctx context.Context) error { return m.refresh(ctx, func() {}) }

// refresh lists and replaces the map, calling listed between the two: the
// background refresh clears its flag there, so that whoever sees the new
// map can trigger the next refresh.
func (m *ShardMap) refresh(ctx context.Context, listed func()) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	shards, err := m.list(ctx)
	listed()
	if err != nil {
		m.failures.Add(1)
		// A failing ListShards is retried at most once a second.
		m.retryAt.Store(m.now().Add(time.Second).UnixNano())
		return err
	}
	m.table.Store(&shardTable{shards: shards, at: m.now()})
	m.refreshes.Add(1)
	return nil
}

func (m *ShardMap) list(ctx context.Context) ([]shardRange, error) {
	var shards []shardRange
	in := &kinesis.ListShardsInput{}
	setStream(&in.StreamName, &in.StreamARN, m.stream)
	for {
		out, err := m.api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("kinesis list shards %s: %w", m.stream, err)
		}
		for _, sh := range out.Shards {
			if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed by a reshard: takes no more writes
			}
			if sh.HashKeyRange == nil {
				continue
			}
			start, err1 := hashKey(aws.ToString(sh.HashKeyRange.StartingHashKey))
			end, err2 := hashKey(aws.ToString(sh.HashKeyRange.EndingHashKey))
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("kinesis list shards %s: shard %s: bad hash key range", m.stream, aws.ToString(sh.ShardId))
			}
			shards = append(shards, shardRange{id: aws.ToString(sh.ShardId), start: start, end: end, startKey: aws.ToString(sh.HashKeyRange.StartingHashKey)})
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	slices.SortFunc(shards, func(a, b shardRange) int { return bytes.Compare(a.start[:], b.start[:]) })
	return shards, nil
}

// hashKey parses a decimal 128-bit hash key into big-endian bytes.
func hashKey(s string) ([16]byte, error) {
	var out [16]byte
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return out, fmt.Errorf("hash key %q: not a 128-bit decimal", s)
	}
	n.FillBytes(out[:])
	return out, nil
}

// HashOf is the hash Kinesis routes a partition key by.
func HashOf(partitionKey string) [16]byte { return md5.Sum([]byte(partitionKey)) }

// shard is a prediction: the shard's index in its table, its ID and an
// explicit hash key inside its range.
type shard struct {
	idx      int
	id, key  string
	resolved bool
}

// snapshot returns the current table, loading it synchronously if there
// is none yet and starting a background refresh when it is old. It returns
// nil when no table could be loaded.
func (m *ShardMap) snapshot(ctx context.Context) *shardTable {
	t := m.table.Load()
	now := m.now()
	if t == nil {
		if now.UnixNano() < m.retryAt.Load() {
			return nil
		}
		if err := m.Refresh(ctx); err != nil {
			return nil
		}
		return m.table.Load()
	}
	if now.Sub(t.at) >= m.every {
		m.refreshSoon()
	}
	return t
}

// lookup finds the open shard owning hash in t.
func (t *shardTable) lookup(hash [16]byte) shard {
	// The last shard starting at or before hash.
	i, found := slices.BinarySearchFunc(t.shards, hash, func(s shardRange, h [16]byte) int { return bytes.Compare(s.start[:], h[:]) })
	if !found {
		i--
	}
	if i < 0 || bytes.Compare(hash[:], t.shards[i].end[:]) > 0 {
		return shard{} // a gap: the map is mid-reshard
	}
	return shard{idx: i, id: t.shards[i].id, key: t.shards[i].startKey, resolved: true}
}

// Unexpected tells the map a put landed on a shard it did not predict: it
// is refreshed in the background.
func (m *ShardMap) Unexpected() { m.refreshSoon() }

func (m *ShardMap) refreshSoon() {
	if !m.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A failure is counted; the old map serves meanwhile.
		_ = m.refresh(ctx, func() { m.refreshing.Store(false) })
	}()
}

// ShardMapStats counts refreshes.
type ShardMapStats struct {
	Shards    int   // open shards in the current map
	Refreshes int64 // successful ListShards refreshes
	Failures  int64 // failed ones
}

// Stats returns the map's counters.
func (m *ShardMap) Stats() ShardMapStats {
	st := ShardMapStats{Refreshes: m.refreshes.Load(), Failures: m.failures.Load()}
	if t := m.table.Load(); t != nil {
		st.Shards = len(t.shards)
	}
	return st
}

func setStream(name, arn **string, stream string) {
	if len(stream) > 4 && stream[:4] == "arn:" {
		*arn = aws.String(stream)
	} else {
		*name = aws.String(stream)
	}
}
