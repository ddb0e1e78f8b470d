package memstream

import (
	"crypto/md5"
	"fmt"
	"math/big"
	"testing"
)

func TestShardForMatchesKinesisRanges(t *testing.T) {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	for _, n := range []int{1, 3, 7, 40} {
		m := newShardMap(n)
		if len(m.ids) != n || m.ids[n-1] != fmt.Sprintf("shardId-%012d", n-1) {
			t.Fatalf("%d shards: ids %v", n, m.ids)
		}
		for i := range 2000 {
			key := fmt.Sprint("key-", i)
			sum := md5.Sum([]byte(key))
			h := new(big.Int).SetBytes(sum[:])
			want := new(big.Int).Div(new(big.Int).Mul(h, big.NewInt(int64(n))), space).Int64()
			if got := m.shardFor(key); int64(got) != want {
				t.Fatalf("%d shards: shardFor(%q) = %d, want %d", n, key, got, want)
			}
		}
	}
	// Kinesis' mapping: MD5("a") = 0cc175b9... falls in the first of two shards.
	if got := newShardMap(2).shardFor("a"); got != 0 {
		t.Errorf("shardFor(a) = %d, want 0", got)
	}
}
