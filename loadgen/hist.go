package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a recorded value is off by at most 1/64 (1.6 %) of itself.
const subBits = 6

const (
	subCount = 1 << subBits
	// maxExp covers up to 2^43 ns (about 2.4 h); longer values land in
	// the top bucket, Max keeps them exact.
	maxExp      = 43 - subBits
	bucketCount = (maxExp + 2) * subCount
)

// Histogram counts durations in log-linear buckets of bounded relative
// error: fixed memory however long the run, for percentiles of latency.
// The zero value is empty and ready; it is not safe for concurrent use.
type Histogram struct {
	counts []int64
	n      int64
	sum    time.Duration
	max    time.Duration
}

func bucketOf(v int64) int {
	if v < subCount {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - subBits - 1
	if e > maxExp {
		return bucketCount - 1
	}
	return (e+1)*subCount + int(v>>e) - subCount
}

// bucketRange is the values [lo, hi] bucket i holds.
func bucketRange(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	e := i/subCount - 1
	m := int64(i%subCount + subCount)
	return m << e, (m+1)<<e - 1
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]int64, bucketCount)
	}
	h.counts[bucketOf(int64(d))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]int64, bucketCount)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is how many durations were recorded.
func (h *Histogram) Count() int64 { return h.n }

// Max is the largest duration recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average duration.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile is the q-quantile (0 < q ≤ 1) by nearest rank: the smallest
// recorded value with at least q·n values at or below it, to within the
// bucket precision and never above Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return h.max
	}
	var seen int64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			if i == bucketCount-1 {
				return h.max // the overflow bucket has no midpoint
			}
			lo, hi := bucketRange(i)
			// The midpoint halves the worst-case error of either edge.
			return min(time.Duration(lo+(hi-lo)/2), h.max)
		}
	}
	return h.max
}

// CountAbove is how many recorded durations are certainly above d: those
// in buckets that start above it.
func (h *Histogram) CountAbove(d time.Duration) int64 {
	if h.n == 0 {
		return 0
	}
	var n int64
	for i := bucketOf(int64(d)) + 1; i < bucketCount; i++ {
		n += h.counts[i]
	}
	return n
}
