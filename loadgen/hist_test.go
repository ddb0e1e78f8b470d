package loadgen_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/spate-dev/spate/loadgen"
)

// nearestRank is the exact q-quantile of sorted values.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, draw := range map[string]func() time.Duration{
		"uniform ms": func() time.Duration { return time.Duration(rng.Int64N(int64(50 * time.Millisecond))) },
		"long tail": func() time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*1.5) * float64(time.Millisecond))
		},
		"tiny":            func() time.Duration { return time.Duration(rng.IntN(200)) },
		"seconds-minutes": func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Minute))) },
	} {
		t.Run(name, func(t *testing.T) {
			var h loadgen.Histogram
			var all []time.Duration
			var sum time.Duration
			for range 20_000 {
				d := draw()
				h.Record(d)
				all = append(all, d)
				sum += d
			}
			slices.Sort(all)
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				want, got := nearestRank(all, q), h.Quantile(q)
				// Bucket precision: within 1/64 of the value.
				if diff := math.Abs(float64(got - want)); diff > float64(want)/64+1 {
					t.Errorf("q%.3f = %v, exact %v", q, got, want)
				}
			}
			if h.Max() != all[len(all)-1] {
				t.Errorf("max %v, want %v", h.Max(), all[len(all)-1])
			}
			if h.Count() != int64(len(all)) || h.Mean() != sum/time.Duration(len(all)) {
				t.Errorf("count %d mean %v, want %d and %v", h.Count(), h.Mean(), len(all), sum/time.Duration(len(all)))
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	var h loadgen.Histogram
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Mean() != 0 || h.CountAbove(0) != 0 {
		t.Error("empty histogram is not all zeros")
	}
	h.Record(3 * time.Hour) // beyond the top bucket
	h.Record(-time.Millisecond)
	if h.Quantile(1) != 3*time.Hour || h.Max() != 3*time.Hour {
		t.Errorf("q1 %v max %v, want the 3h outlier exactly", h.Quantile(1), h.Max())
	}
	if h.Quantile(0.5) != 0 {
		t.Errorf("negative durations count as 0, got %v", h.Quantile(0.5))
	}

	var a, b, all loadgen.Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Millisecond
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	a.Merge(&b)
	for _, q := range []float64{0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%v %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != 1000 || a.Max() != 999*time.Millisecond {
		t.Errorf("merged count %d max %v", a.Count(), a.Max())
	}
	// 100 ms sits in a bucket of [99.6, 101.2) ms or so: only the values
	// certainly above it count.
	if got := all.CountAbove(100 * time.Millisecond); got < 897 || got > 899 {
		t.Errorf("CountAbove(100ms) = %d, want 897 to 899", got)
	}
}
