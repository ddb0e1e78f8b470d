package loadgen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Yle's prime time and its highest observed peak, in requests per minute
// (the scenarios of loadtest/ scale with their ratio).
const (
	PrimeTimePerMin = 600_000
	PeakPerMin      = 2_500_000
)

// Stage moves the arrival rate linearly to Target requests/s over Duration,
// as a stage of k6's ramping-arrival-rate executor does.
type Stage struct {
	Duration time.Duration
	Target   float64
}

// Profile is an arrival rate over time: Start requests/s, then each stage in
// turn.
type Profile struct {
	Start  float64
	Stages []Stage
}

// Constant is rate requests/s for d.
func Constant(rate float64, d time.Duration) Profile {
	return Profile{Start: rate, Stages: []Stage{{Duration: d, Target: rate}}}
}

// Duration is how long the profile lasts.
func (p Profile) Duration() time.Duration {
	var d time.Duration
	for _, s := range p.Stages {
		d += s.Duration
	}
	return d
}

// RateAt is the arrival rate at offset t, in requests/s.
func (p Profile) RateAt(t time.Duration) float64 {
	from := p.Start
	for _, s := range p.Stages {
		if s.Duration <= 0 {
			from = s.Target // a jump
			continue
		}
		if t < s.Duration {
			return from + (s.Target-from)*t.Seconds()/s.Duration.Seconds()
		}
		t -= s.Duration
		from = s.Target
	}
	return from
}

// Count is how many requests are due in [0, t): the integral of the rate.
func (p Profile) Count(t time.Duration) float64 {
	from, n := p.Start, 0.0
	for _, s := range p.Stages {
		if s.Duration <= 0 {
			from = s.Target
			continue
		}
		d := min(t, s.Duration).Seconds()
		slope := (s.Target - from) / s.Duration.Seconds()
		n += from*d + slope*d*d/2
		if t <= s.Duration {
			return n
		}
		t -= s.Duration
		from = s.Target
	}
	return n
}

// Arrival is the offset at which request i (from 0) is due: the time at
// which Count reaches i. ok is false when the profile ends first.
func (p Profile) Arrival(i int) (at time.Duration, ok bool) {
	k := float64(i) // requests still to place, counted from the stage start
	var off time.Duration
	from := p.Start
	for _, s := range p.Stages {
		if s.Duration <= 0 {
			from = s.Target
			continue
		}
		d := s.Duration.Seconds()
		slope := (s.Target - from) / d
		total := from*d + slope*d*d/2
		if k < total {
			// Solve from·x + slope·x²/2 = k for x in [0, d); written so it
			// stays exact for slope 0 and stable for small slopes.
			disc := math.Max(0, from*from+2*slope*k)
			x := 2 * k / (from + math.Sqrt(disc))
			if math.IsNaN(x) || math.IsInf(x, 0) {
				x = 0
			}
			at := off + time.Duration(math.Min(x, d)*float64(time.Second))
			return at, at < p.Duration()
		}
		k -= total
		off += s.Duration
		from = s.Target
	}
	return 0, false
}

// Scenario is a named load shape with the thresholds it is judged by.
type Scenario struct {
	Name    string
	Profile Profile
	Limits  Limits
	// Abort stops the run at the first sustained threshold failure:
	// breakpoint finds where that is.
	Abort bool
}

// Limits are a scenario's thresholds, as the k6 scripts set them.
type Limits struct {
	ErrorRate float64       // share of requests not answered 202
	Share503  float64       // share of requests answered 503
	P99       time.Duration // latency budget, from the intended start
}

// Scenarios lists the scenario names NewScenario knows.
var Scenarios = []string{"steady", "spike", "soak", "breakpoint"}

// NewScenario returns the named scenario of loadtest/ at base rate requests/s
// over d. peak is the spike's top, or the rate breakpoint ramps to; zero
// takes the k6 ratios (the highest observed peak over prime time, and twice
// that). p99 is the latency budget (spike allows twice as much).
func NewScenario(name string, rate, peak float64, d, p99 time.Duration) (Scenario, error) {
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return Scenario{}, fmt.Errorf("rate %v: must be positive", rate)
	}
	if d <= 0 {
		return Scenario{}, errors.New("duration must be positive")
	}
	if p99 <= 0 {
		return Scenario{}, errors.New("p99 budget must be positive")
	}
	if peak < 0 || math.IsNaN(peak) || math.IsInf(peak, 0) {
		return Scenario{}, fmt.Errorf("peak rate %v: must be positive", peak)
	}
	ratio := float64(PeakPerMin) / PrimeTimePerMin
	switch name {
	case "steady", "soak":
		return Scenario{Name: name, Profile: Constant(rate, d), Limits: Limits{ErrorRate: 0.001, Share503: 0.001, P99: p99}}, nil
	case "spike":
		if peak == 0 {
			peak = rate * ratio
		}
		// The k6 shape (2m base, 30s jump, 5m at the peak, 1m down, 2m
		// base) scaled to d.
		part := func(min float64) time.Duration { return time.Duration(float64(d) * min / 10.5) }
		p := Profile{Start: rate, Stages: []Stage{
			{part(2), rate}, {part(0.5), peak}, {part(5), peak}, {part(1), rate},
		}}
		p.Stages = append(p.Stages, Stage{d - p.Duration(), rate})
		// A little shedding during the jump is the designed answer.
		return Scenario{Name: name, Profile: p, Limits: Limits{ErrorRate: 0.02, Share503: 0.02, P99: 2 * p99}}, nil
	case "breakpoint":
		if peak == 0 {
			peak = 2 * rate * ratio
		}
		return Scenario{Name: name, Profile: Profile{Start: rate, Stages: []Stage{{d, peak}}},
			Limits: Limits{ErrorRate: 0.01, Share503: 0.01, P99: p99}, Abort: true}, nil
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q: want steady, spike, soak or breakpoint", name)
}
