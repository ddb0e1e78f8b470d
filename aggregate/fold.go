package aggregate

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate"
)

// Defaults of Config.
const (
	// DefaultStateBytes leaves 10% of Lambda's 1 MB state limit for what
	// the size estimate cannot see (the response envelope, a different
	// measure of "1 MB").
	DefaultStateBytes = 900_000
	// DefaultChunkBytes keeps an aggregate record well under Kinesis' 1 MiB
	// record limit and a reward request under common API body limits.
	DefaultChunkBytes = 512 << 10
	// MinStateBytes is the smallest budget accepted: room for the meta
	// entry and some rows.
	MinStateBytes = 16 << 10
)

// Config holds the fold's knobs; zero values take the defaults.
type Config struct {
	// Window is the tumbling window of the Tumbler (default 60 s, at most
	// 900 s). In Lambda the event source mapping's TumblingWindowInSeconds
	// decides instead.
	Window time.Duration
	// StateBytes bounds a state's encoded size (default 900,000 bytes).
	// A record that would take a state past it first emits the state as a
	// partial aggregate and starts a fresh one for the same window, so
	// Lambda never has to terminate the window for size.
	StateBytes int
	// ChunkBytes bounds one aggregate record (default 512 KiB); larger
	// emissions are split by rows into chunks.
	ChunkBytes int
	// Counted maps each counted event type to its measure: "impressions",
	// "clicks" or "plays" (the schemas' x-spate-aggregate-counts,
	// registry.Counted). Default: impression, click and play_start.
	Counted map[string]string
	// KeyFields maps each part of the key ("content_id", "image_variant",
	// "platform") to the event field that fills it (the schemas'
	// x-spate-aggregate-key, registry.KeyFields). Default: the fields of
	// those names.
	KeyFields map[string]string
}

// measures are the counters a type can count towards, in state order.
var measures = map[string]int{"impressions": kindImpression, "clicks": kindClick, "plays": kindPlayStart}

// Stats is a snapshot of the fold's counters.
type Stats struct {
	Records    int64 // records folded
	Counted    int64 // impressions, clicks and play starts with an image variant
	Ignored    int64 // other event types, or no content id or image variant
	Malformed  int64 // records whose data is not an event's JSON
	Aggregates int64 // aggregates emitted
	Budget     int64 // emissions forced by the state size budget
}

// Folder folds records into States. It is safe for concurrent use on
// different States.
type Folder struct {
	cfg    Config
	kinds  map[string]int // counted type → measure
	fields keyFields

	records, counted, ignored, malformed, aggregates, budget atomic.Int64
}

// New returns a Folder, or an error when cfg is out of range.
func New(cfg Config) (*Folder, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Window < time.Second || cfg.Window > MaxWindow {
		return nil, fmt.Errorf("aggregate window %s: must be between 1s and %s", cfg.Window, MaxWindow)
	}
	if cfg.StateBytes == 0 {
		cfg.StateBytes = DefaultStateBytes
	}
	if cfg.StateBytes < MinStateBytes || cfg.StateBytes > 1_000_000 {
		return nil, fmt.Errorf("aggregate state budget %d: must be between %d and 1,000,000 bytes", cfg.StateBytes, MinStateBytes)
	}
	if cfg.ChunkBytes == 0 {
		cfg.ChunkBytes = DefaultChunkBytes
	}
	if cfg.ChunkBytes < 4<<10 || cfg.ChunkBytes > 1<<20-(4<<10) {
		return nil, fmt.Errorf("aggregate chunk size %d: must be between 4 KiB and 1 MiB - 4 KiB", cfg.ChunkBytes)
	}
	f := &Folder{cfg: cfg, kinds: map[string]int{}, fields: keyFields{"content_id", "image_variant", "platform"}}
	counted := cfg.Counted
	if counted == nil {
		counted = map[string]string{"impression": "impressions", "click": "clicks", "play_start": "plays"}
	}
	for typ, m := range counted {
		k, ok := measures[m]
		if !ok {
			return nil, fmt.Errorf("aggregate: type %s counts as %q: want impressions, clicks or plays", typ, m)
		}
		f.kinds[typ] = k
	}
	for role, field := range cfg.KeyFields {
		switch role {
		case "content_id":
			f.fields[0] = field
		case "image_variant":
			f.fields[1] = field
		case "platform":
			f.fields[2] = field
		default:
			return nil, fmt.Errorf("aggregate: key part %q: want content_id, image_variant or platform", role)
		}
	}
	return f, nil
}

// keyFields names the fields that fill the key: content, variant, platform.
type keyFields [3]string

// Config returns the effective configuration, defaults applied.
func (f *Folder) Config() Config { return f.cfg }

// Stats returns a snapshot of the counters.
func (f *Folder) Stats() Stats {
	return Stats{
		Records:    f.records.Load(),
		Counted:    f.counted.Load(),
		Ignored:    f.ignored.Load(),
		Malformed:  f.malformed.Load(),
		Aggregates: f.aggregates.Load(),
		Budget:     f.budget.Load(),
	}
}

// event is the part of an event the fold reads.
type event struct {
	Type         string `json:"type"`
	ContentID    string `json:"content_id"`
	ImageVariant string `json:"image_variant"`
	Platform     string `json:"platform"`
}

// Fold adds recs, in order, to st. Records that are not counted (other
// types, no image variant, not JSON) are skipped, never failed: one bad
// record must not stall a shard. When st reaches its size budget it is
// emitted as partial aggregates and restarted for the same window; those
// aggregates are returned.
func (f *Folder) Fold(st *State, recs []spate.Record) []Aggregate {
	var out []Aggregate
	for _, rec := range recs {
		out = append(out, f.add(st, rec)...)
	}
	return out
}

func (f *Folder) add(st *State, rec spate.Record) []Aggregate {
	f.records.Add(1)
	e, ok := scanEvent(rec.Data, &f.fields)
	if !ok {
		f.malformed.Add(1)
		st.seen(rec)
		return nil
	}
	kind, counted := f.kinds[e.Type]
	if !counted || e.ContentID == "" || e.ImageVariant == "" {
		f.ignored.Add(1)
		st.seen(rec)
		return nil
	}
	k := Key{ContentID: e.ContentID, ImageVariant: e.ImageVariant, Platform: e.Platform}
	var out []Aggregate
	if !st.Empty() && st.sizeAfter(k, kind)+st.metaBound() > f.cfg.StateBytes {
		out = f.restart(st)
	}
	st.seen(rec)
	st.add(k, kind)
	f.counted.Add(1)
	return out
}

// restart emits st as a partial and empties it, keeping source and window.
func (f *Folder) restart(st *State) []Aggregate {
	f.budget.Add(1)
	out := st.emit(f.cfg.ChunkBytes, true)
	f.aggregates.Add(int64(len(out)))
	*st = *NewState(st.Source, st.Window)
	st.continued = true
	return out
}

// Close emits what st holds: at the window's end, or early (partial) when
// the window was cut short. A state with no counted rows emits nothing.
func (f *Folder) Close(st *State, partial bool) []Aggregate {
	out := st.emit(f.cfg.ChunkBytes, partial)
	f.aggregates.Add(int64(len(out)))
	return out
}
