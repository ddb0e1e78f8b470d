package memstream_test

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/memstream"
)

func recs(n int, prefix string) []spate.Record {
	out := make([]spate.Record, n)
	for i := range out {
		out[i] = spate.Record{PartitionKey: fmt.Sprintf("%s-%d", prefix, i%13), Data: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return out
}

type collector struct {
	mu   sync.Mutex
	seen map[string][]spate.Record // by shard
}

func (c *collector) handle(ctx context.Context, rs []spate.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rs {
		c.seen[r.ShardID] = append(c.seen[r.ShardID], r)
	}
	return nil
}

func TestEveryConsumerSeesEveryRecordInShardOrder(t *testing.T) {
	s := memstream.New(memstream.Config{Shards: 3})
	a, b := &collector{seen: map[string][]spate.Record{}}, &collector{seen: map[string][]spate.Record{}}
	s.Subscribe(memstream.ConsumerConfig{Name: "a", BatchSize: 7}, a.handle)
	s.Subscribe(memstream.ConsumerConfig{Name: "b"}, b.handle)
	done := make(chan error)
	go func() { done <- s.Run(context.Background()) }()
	if err := s.Put(context.Background(), recs(500, "x")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*collector{"a": a, "b": b} {
		total := 0
		for shard, rs := range c.seen {
			total += len(rs)
			for i := 1; i < len(rs); i++ {
				if rs[i].SequenceNumber <= rs[i-1].SequenceNumber {
					t.Errorf("%s %s: sequence %s after %s", name, shard, rs[i].SequenceNumber, rs[i-1].SequenceNumber)
				}
			}
			for _, r := range rs {
				if r.ArrivedAt.IsZero() || r.ShardID != shard {
					t.Errorf("%s: record without stream metadata: %+v", name, r)
				}
			}
		}
		if total != 500 {
			t.Errorf("consumer %s saw %d records, want 500", name, total)
		}
	}
	if len(a.seen) != 3 {
		t.Errorf("records spread over %d shards, want 3", len(a.seen))
	}
}

func TestSameKeySameShard(t *testing.T) {
	s := memstream.New(memstream.Config{Shards: 8})
	for i := range 100 {
		k := fmt.Sprint("session-", i)
		if s.ShardFor(k) != s.ShardFor(k) {
			t.Fatal("unstable shard")
		}
	}
	// Kinesis' mapping: MD5("a") = 0cc175b9... falls in the first of two shards.
	if got := memstream.New(memstream.Config{Shards: 2}).ShardFor("a"); got != 0 {
		t.Errorf("ShardFor(a) = %d, want 0", got)
	}
}

func TestBatchItemFailureRedeliversFromFirstFailed(t *testing.T) {
	s := memstream.New(memstream.Config{Shards: 1})
	var mu sync.Mutex
	var deliveries [][]string
	failOnce := true
	s.Subscribe(memstream.ConsumerConfig{Name: "c", BatchSize: 10, RetryBackoff: time.Millisecond}, func(ctx context.Context, rs []spate.Record) error {
		mu.Lock()
		defer mu.Unlock()
		var d []string
		for _, r := range rs {
			d = append(d, string(r.Data))
		}
		deliveries = append(deliveries, d)
		if failOnce && len(rs) == 5 {
			failOnce = false
			be := spate.NewBatchError(len(rs))
			be.Failed(2, errors.New("firehose throttled"))
			be.Failed(4, errors.New("firehose throttled"))
			return be
		}
		return nil
	})
	if err := s.Put(context.Background(), recs(5, "y")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Run(context.Background()) }()
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(deliveries) != 2 || len(deliveries[1]) != 3 || deliveries[1][0] != "y-2" {
		t.Errorf("deliveries %v, want the retry to start at y-2", deliveries)
	}
}

func TestPutThrottlesWhenConsumersLag(t *testing.T) {
	s := memstream.New(memstream.Config{Shards: 1, MaxRecords: 10})
	s.Subscribe(memstream.ConsumerConfig{Name: "slow"}, func(context.Context, []spate.Record) error { return nil })
	err := s.Put(context.Background(), recs(15, "z"))
	var be *spate.BatchError
	if !errors.As(err, &be) || be.Count() != 5 || !errors.Is(be.Errs[14], spate.ErrThrottled) || be.Errs[0] != nil {
		t.Fatalf("err %v, want the last 5 throttled", err)
	}
	s.Close()
	if err := s.Put(context.Background(), recs(1, "z")); !errors.Is(err, spate.ErrClosed) {
		t.Errorf("put after close: %v", err)
	}
}

// TestShardForMatchesKinesisRanges checks the byte comparison against the
// hash key ranges computed with big integers, as Kinesis splits 2^128.
func TestShardForMatchesKinesisRanges(t *testing.T) {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	for _, n := range []int{1, 3, 7, 40} {
		s := memstream.New(memstream.Config{Shards: n})
		for i := range 2000 {
			key := fmt.Sprint("key-", i)
			sum := md5.Sum([]byte(key))
			h := new(big.Int).SetBytes(sum[:])
			want := new(big.Int).Div(new(big.Int).Mul(h, big.NewInt(int64(n))), space).Int64()
			if got := s.ShardFor(key); int64(got) != want {
				t.Fatalf("%d shards: ShardFor(%q) = %d, want %d", n, key, got, want)
			}
		}
	}
}
