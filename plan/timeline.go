package plan

import (
	"slices"
	"sort"
	"time"
)

// segment is a stretch of time at one traffic level.
type segment struct {
	Start, End time.Time
	RPM        float64
	Titles     []string
}

// demand lays the broadcasts on a timeline, each stretched by before and
// after. While several are on, their peaks above the baseline add up: they
// share the everyday audience and each brings its own on top. The result
// covers the first padded start to the last padded end, contiguously, with
// baseline-level gaps where nothing is on.
func demand(bs []Broadcast, base float64, before, after time.Duration) []segment {
	if len(bs) == 0 {
		return nil
	}
	var edges []time.Time
	for _, b := range bs {
		edges = append(edges, b.Start.Add(-before), b.End.Add(after))
	}
	sort.Slice(edges, func(i, j int) bool { return edges[i].Before(edges[j]) })
	edges = slices.CompactFunc(edges, func(a, b time.Time) bool { return a.Equal(b) })
	var out []segment
	for i := 0; i+1 < len(edges); i++ {
		s := segment{Start: edges[i], End: edges[i+1], RPM: base}
		for _, b := range bs {
			if b.Start.Add(-before).After(s.Start) || !b.End.Add(after).After(s.Start) {
				continue
			}
			if b.PeakRequestsPerMinute > base {
				s.RPM += b.PeakRequestsPerMinute - base
			}
			s.Titles = append(s.Titles, b.Title)
		}
		if n := len(out); n > 0 && out[n-1].RPM == s.RPM && slices.Equal(out[n-1].Titles, s.Titles) {
			out[n-1].End = s.End
			continue
		}
		out = append(out, s)
	}
	return out
}

// level is a stretch of time at one capacity level (tasks, shards, MiB/s).
type level struct {
	Start, End time.Time
	N          int
}

// levels maps the demand to capacity levels and drops the baseline-level
// stretches at either end.
func levels(segs []segment, capacity func(rpm float64) int, base int) []level {
	var out []level
	for _, s := range segs {
		n := max(capacity(s.RPM), base)
		if k := len(out); k > 0 && out[k-1].N == n {
			out[k-1].End = s.End
			continue
		}
		out = append(out, level{Start: s.Start, End: s.End, N: n})
	}
	for len(out) > 0 && out[0].N == base {
		out = out[1:]
	}
	for len(out) > 0 && out[len(out)-1].N == base {
		out = out[:len(out)-1]
	}
	return out
}

// fillDips raises every stretch shorter than gap that sits below both
// its neighbours to the lower of them: scaling in for a short lull between
// close broadcasts only to scale out again costs an action (and, for
// Kinesis, two of the day's ten reshards) and risks being caught short.
func fillDips(tl []level, gap time.Duration) []level {
	tl = slices.Clone(tl)
	for changed := true; changed; {
		changed = false
		for i := 1; i+1 < len(tl); i++ {
			l := tl[i]
			if l.End.Sub(l.Start) < gap && l.N < tl[i-1].N && l.N < tl[i+1].N {
				tl[i].N = min(tl[i-1].N, tl[i+1].N)
				tl = coalesce(tl)
				changed = true
				break
			}
		}
	}
	return tl
}

// Boundary b of a level timeline is where tl[b] starts: 0 is the rise
// from the baseline into tl[0], len(tl) the fall back to it after the last.
func boundaryAt(tl []level, b int) time.Time {
	if b == len(tl) {
		return tl[b-1].End
	}
	return tl[b].Start
}

func boundaryLevels(tl []level, b, base int) (from, to int) {
	from, to = base, base
	if b > 0 {
		from = tl[b-1].N
	}
	if b < len(tl) {
		to = tl[b].N
	}
	return from, to
}

// call is one API call a level change needs.
type call struct {
	At       time.Time
	Boundary int
}

// crowded finds the first stretch of length window holding more than
// budget calls and returns the boundaries those calls belong to.
func crowded(calls []call, window time.Duration, budget int) []int {
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].At.Before(calls[j].At) })
	j := 0
	for i := range calls {
		if j < i {
			j = i
		}
		for j+1 < len(calls) && calls[j+1].At.Before(calls[i].At.Add(window)) {
			j++
		}
		if j-i+1 > budget {
			var bs []int
			for _, c := range calls[i : j+1] {
				bs = append(bs, c.Boundary)
			}
			slices.Sort(bs)
			return slices.Compact(bs)
		}
	}
	return nil
}

// fit merges neighbouring levels until check finds nothing wrong. check
// returns the boundaries involved in a violation (nil: none). Each round
// removes the interior boundary among them whose removal costs the least
// extra capacity × time, by raising the lower side to the higher. When a
// violation involves no interior boundary, nothing merging can do helps:
// fit returns false.
func fit(tl []level, check func([]level) []int) ([]level, bool) {
	tl = slices.Clone(tl)
	for {
		bad := check(tl)
		if bad == nil {
			return tl, true
		}
		best, bestCost := -1, 0.0
		for _, b := range bad {
			if b <= 0 || b >= len(tl) {
				continue
			}
			if c := mergeCost(tl[b-1], tl[b]); best < 0 || c < bestCost {
				best, bestCost = b, c
			}
		}
		if best < 0 {
			return tl, false
		}
		merged := level{Start: tl[best-1].Start, End: tl[best].End, N: max(tl[best-1].N, tl[best].N)}
		tl = slices.Replace(tl, best-1, best+1, merged)
		tl = coalesce(tl)
	}
}

func mergeCost(a, b level) float64 {
	top := max(a.N, b.N)
	return float64(top-a.N)*a.End.Sub(a.Start).Hours() + float64(top-b.N)*b.End.Sub(b.Start).Hours()
}

func coalesce(tl []level) []level {
	out := tl[:0]
	for _, l := range tl {
		if k := len(out); k > 0 && out[k-1].N == l.N && out[k-1].End.Equal(l.Start) {
			out[k-1].End = l.End
			continue
		}
		out = append(out, l)
	}
	return out
}

// shardSteps is the UpdateShardCount targets taking a stream from one
// count to another, each at most double or at least half the current.
func shardSteps(from, to int) []int {
	var steps []int
	for from < to {
		from = min(2*from, to)
		steps = append(steps, from)
	}
	for from > to {
		from = max((from+1)/2, to)
		steps = append(steps, from)
	}
	return steps
}

// shardCall is one planned UpdateShardCount call.
type shardCall struct {
	At       time.Time
	From, To int
	Boundary int
}

// shardCalls places each level change's steps: a rise's steps end (each
// given reshard to complete) by the boundary, a fall's start at it.
func shardCalls(tl []level, base int, reshard time.Duration) []shardCall {
	var out []shardCall
	for b := 0; b <= len(tl); b++ {
		if len(tl) == 0 {
			break
		}
		from, to := boundaryLevels(tl, b, base)
		steps := shardSteps(from, to)
		at := boundaryAt(tl, b)
		if to > from {
			at = at.Add(-time.Duration(len(steps)) * reshard)
		}
		cur := from
		for _, s := range steps {
			out = append(out, shardCall{At: at, From: cur, To: s, Boundary: b})
			cur = s
			at = at.Add(reshard)
		}
	}
	return out
}

// shardCheck finds calls beyond the rolling 24-hour limit, and level
// changes whose steps would still be running when the next change starts.
func shardCheck(base int, reshard time.Duration, perDay int) func([]level) []int {
	return func(tl []level) []int {
		calls := shardCalls(tl, base, reshard)
		for i := 1; i < len(calls); i++ {
			if calls[i].At.Before(calls[i-1].At.Add(reshard)) {
				return []int{calls[i-1].Boundary, calls[i].Boundary}
			}
		}
		cs := make([]call, len(calls))
		for i, c := range calls {
			cs[i] = call{At: c.At, Boundary: c.Boundary}
		}
		return crowded(cs, 24*time.Hour, perDay)
	}
}

// ecsCheck keeps any 2 × horizon within budget scheduled actions: one
// action per boundary.
func ecsCheck(horizon time.Duration, budget int) func([]level) []int {
	return func(tl []level) []int {
		if len(tl) == 0 {
			return nil
		}
		cs := make([]call, 0, len(tl)+1)
		for b := 0; b <= len(tl); b++ {
			cs = append(cs, call{At: boundaryAt(tl, b), Boundary: b})
		}
		return crowded(cs, 2*horizon, budget)
	}
}
