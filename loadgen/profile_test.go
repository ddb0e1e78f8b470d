package loadgen_test

import (
	"math"
	"testing"
	"time"

	"github.com/spate-dev/spate/loadgen"
)

func TestConstantArrivals(t *testing.T) {
	p := loadgen.Constant(250, 2*time.Second)
	n := 0
	for i := 0; ; i++ {
		at, ok := p.Arrival(i)
		if !ok {
			break
		}
		if want := time.Duration(i) * 4 * time.Millisecond; at != want {
			t.Fatalf("arrival %d at %v, want %v", i, at, want)
		}
		n++
	}
	if n != 500 {
		t.Errorf("%d arrivals in 2 s at 250/s, want 500", n)
	}
}

// TestRampArrivals checks the pacing of ramps against the integral of the
// rate: request i is due when Count reaches i, arrivals never go back in
// time, and their number is the profile's total.
func TestRampArrivals(t *testing.T) {
	for name, p := range map[string]loadgen.Profile{
		"up":        {Start: 10, Stages: []loadgen.Stage{{Duration: 3 * time.Second, Target: 400}}},
		"down":      {Start: 300, Stages: []loadgen.Stage{{Duration: 2 * time.Second, Target: 20}}},
		"from zero": {Start: 0, Stages: []loadgen.Stage{{Duration: 2 * time.Second, Target: 100}}},
		"spike":     mustScenario(t, "spike", 100, 0, 21*time.Second).Profile,
		"stairs":    {Start: 50, Stages: []loadgen.Stage{{time.Second, 50}, {0, 0}, {time.Second, 0}, {time.Second, 200}}},
	} {
		t.Run(name, func(t *testing.T) {
			var prev time.Duration
			n := 0
			for i := 0; ; i++ {
				at, ok := p.Arrival(i)
				if !ok {
					break
				}
				if at < prev {
					t.Fatalf("arrival %d at %v before arrival %d at %v", i, at, i-1, prev)
				}
				if c := p.Count(at); math.Abs(c-float64(i)) > 1e-6*float64(i+1) {
					t.Fatalf("arrival %d at %v, but Count there is %.6f", i, at, c)
				}
				prev = at
				n++
			}
			if want := math.Ceil(p.Count(p.Duration())); float64(n) != want {
				t.Errorf("%d arrivals, the rate integrates to %.3f", n, p.Count(p.Duration()))
			}
		})
	}
}

func TestRateAt(t *testing.T) {
	p := loadgen.Profile{Start: 100, Stages: []loadgen.Stage{{Duration: 10 * time.Second, Target: 200}, {Duration: 5 * time.Second, Target: 200}}}
	for at, want := range map[time.Duration]float64{0: 100, 5 * time.Second: 150, 10 * time.Second: 200, 14 * time.Second: 200, time.Hour: 200} {
		if got := p.RateAt(at); math.Abs(got-want) > 1e-9 {
			t.Errorf("RateAt(%v) = %v, want %v", at, got, want)
		}
	}
	if got, want := p.Count(15*time.Second), 1500+1000.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("Count = %v, want %v", got, want)
	}
}

func mustScenario(t *testing.T, name string, rate, peak float64, d time.Duration) loadgen.Scenario {
	t.Helper()
	s, err := loadgen.NewScenario(name, rate, peak, d, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScenarios(t *testing.T) {
	d := 42 * time.Second
	for _, name := range loadgen.Scenarios {
		s := mustScenario(t, name, 100, 0, d)
		if s.Profile.Duration() != d {
			t.Errorf("%s lasts %v, want %v", name, s.Profile.Duration(), d)
		}
		if s.Abort != (name == "breakpoint") {
			t.Errorf("%s: abort %v", name, s.Abort)
		}
	}
	// The k6 shapes: spike to the highest peak over prime time (2.5 M /
	// 600 k), breakpoint to twice that.
	spike := mustScenario(t, "spike", 120, 0, d)
	if got := spike.Profile.RateAt(d / 2); math.Abs(got-500) > 1e-9 {
		t.Errorf("spike peak %v, want 500", got)
	}
	if got := spike.Profile.RateAt(d - time.Second); got != 120 {
		t.Errorf("spike ends at %v, want back at 120", got)
	}
	if spike.Limits.P99 != time.Second || spike.Limits.ErrorRate != 0.02 {
		t.Errorf("spike limits %+v", spike.Limits)
	}
	bp := mustScenario(t, "breakpoint", 120, 0, d)
	if got := bp.Profile.RateAt(d); math.Abs(got-1000) > 1e-9 {
		t.Errorf("breakpoint ends at %v, want 1000", got)
	}
	if got := mustScenario(t, "breakpoint", 120, 700, d).Profile.RateAt(d); got != 700 {
		t.Errorf("breakpoint with a peak ends at %v, want 700", got)
	}
	for _, bad := range []struct {
		name       string
		rate, peak float64
		d, p99     time.Duration
	}{
		{"flood", 1, 0, time.Second, time.Second},
		{"steady", 0, 0, time.Second, time.Second},
		{"steady", math.Inf(1), 0, time.Second, time.Second},
		{"steady", 1, 0, 0, time.Second},
		{"steady", 1, 0, time.Second, 0},
		{"spike", 1, -1, time.Second, time.Second},
	} {
		if _, err := loadgen.NewScenario(bad.name, bad.rate, bad.peak, bad.d, bad.p99); err == nil {
			t.Errorf("NewScenario(%+v) accepted", bad)
		}
	}
}
