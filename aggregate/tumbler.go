package aggregate

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/spate-dev/spate"
)

// Tumbler keeps States in memory for local mode: one per shard and
// tumbling window of arrival time, as Lambda keeps one per shard. It does
// not watch the clock itself; its owner calls CloseDue on a timer and
// Flush on shutdown. It is safe for concurrent use.
type Tumbler struct {
	f      *Folder
	source string
	grace  time.Duration

	mu   sync.Mutex
	open map[tumbleKey]*State
	// closedThrough is, per shard, the end of the latest window closed:
	// records arriving for a window that ends no later were late.
	closedThrough map[string]time.Time
}

type tumbleKey struct {
	shard string
	start int64
}

// NewTumbler returns a Tumbler folding with f. source prefixes each
// aggregate's source ("<source>/<shard id>"); give every run its own, so
// that aggregate IDs of different runs never collide. A window closes once
// the clock passed its end by grace, which gives records put just before
// the end time to be delivered.
func NewTumbler(f *Folder, source string, grace time.Duration) *Tumbler {
	return &Tumbler{
		f:             f,
		source:        source,
		grace:         max(grace, 0),
		open:          make(map[tumbleKey]*State),
		closedThrough: make(map[string]time.Time),
	}
}

// Add folds recs into the windows of their arrival times. It returns the
// partial aggregates of states that reached their size budget.
func (t *Tumbler) Add(recs []spate.Record) []Aggregate {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Aggregate
	for _, rec := range recs {
		w := WindowOf(rec.ArrivedAt, t.f.cfg.Window)
		k := tumbleKey{shard: rec.ShardID, start: w.Start.UnixNano()}
		st := t.open[k]
		if st == nil {
			st = NewState(t.source+"/"+rec.ShardID, w)
			if done, ok := t.closedThrough[rec.ShardID]; ok && !w.End.After(done) {
				st.continued = true
			}
			t.open[k] = st
		}
		out = append(out, t.f.add(st, rec)...)
	}
	return out
}

// CloseDue closes the windows that ended at least grace before now and
// returns their aggregates, oldest window first.
func (t *Tumbler) CloseDue(now time.Time) []Aggregate {
	return t.close(func(st *State) bool { return !st.Window.End.Add(t.grace).After(now) }, now)
}

// Flush closes every window, ended or not, and returns their aggregates;
// those of windows still running at now are partial.
func (t *Tumbler) Flush(now time.Time) []Aggregate {
	return t.close(func(*State) bool { return true }, now)
}

// Open returns how many windows are open.
func (t *Tumbler) Open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

func (t *Tumbler) close(due func(*State) bool, now time.Time) []Aggregate {
	t.mu.Lock()
	defer t.mu.Unlock()
	var closing []tumbleKey
	for k, st := range t.open {
		if due(st) {
			closing = append(closing, k)
		}
	}
	slices.SortFunc(closing, func(a, b tumbleKey) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.shard, b.shard))
	})
	var out []Aggregate
	for _, k := range closing {
		st := t.open[k]
		delete(t.open, k)
		out = append(out, t.f.Close(st, st.Window.End.After(now))...)
		if st.Window.End.After(t.closedThrough[k.shard]) {
			t.closedThrough[k.shard] = st.Window.End
		}
	}
	return out
}
