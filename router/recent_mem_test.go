package router

import (
	"fmt"
	"runtime"
	"testing"
)

// TestRecentBytesPerIDHolds backs RecentBytesPerID (and the bound in
// docs/lake.md): the live heap of full rings that have turned over several
// times, per remembered id.
func TestRecentBytesPerIDHolds(t *testing.T) {
	const perShard, shards = 20_000, 4
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newRecent(perShard, shards)
	for turn := range 3 {
		for s := range shards {
			shard := fmt.Sprintf("shardId-%012d", s)
			for i := range perShard {
				r.add(shard, []idHash{r.hash(fmt.Appendf(nil, "%d-%d-%d", turn, s, i))})
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	ids := r.size()
	if ids != perShard*shards {
		t.Fatalf("%d ids remembered, want %d", ids, perShard*shards)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(ids)
	t.Logf("%.1f bytes per remembered id", per)
	if per > RecentBytesPerID {
		t.Errorf("%.1f bytes per id, RecentBytesPerID says %d", per, RecentBytesPerID)
	}
	runtime.KeepAlive(r)
}
