// Package aggregate folds interaction events into per-window counts of
// impressions, clicks and play starts per content × image variant ×
// platform: the real-time aggregates the reward side turns into bandit
// rewards.
//
// The fold is the same everywhere. In AWS a Lambda with tumbling windows
// carries a State between invocations as TimeWindowProperties.State (a
// string map of at most 1 MB per shard); in local mode a Tumbler keeps the
// same States in memory and closes windows by the clock. Windows follow
// arrival time on the stream, not the time the player says an event
// happened, as Lambda's tumbling windows do.
//
// Counts are additive: a window may be emitted in several partial
// Aggregates (per shard, when a state nears its size budget, when Lambda
// terminates a window early, when records arrive after their window was
// closed), and summing them gives the window's totals. Every Aggregate has
// an ID derived from what it covers, so re-emitting it after a retry
// yields the same ID and a receiver can drop the duplicate.
package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/jsonscan"
)

// Window limits. Lambda's TumblingWindowInSeconds allows at most 900 s.
const (
	DefaultWindow = 60 * time.Second
	MaxWindow     = 900 * time.Second
)

// Key identifies one row of an aggregate.
type Key struct {
	ContentID    string
	ImageVariant string
	Platform     string
}

// Counts are what a row counts.
type Counts struct {
	Impressions int64
	Clicks      int64
	PlayStarts  int64
}

// Row is one key's counts in an Aggregate.
type Row struct {
	ContentID    string `json:"content_id"`
	ImageVariant string `json:"image_variant"`
	Platform     string `json:"platform"`
	Impressions  int64  `json:"impressions"`
	Clicks       int64  `json:"clicks"`
	PlayStarts   int64  `json:"play_starts"`
}

// Window is a tumbling window, [Start, End).
type Window struct {
	Start, End time.Time
}

// WindowOf returns the window of length d that t falls in, aligned to the
// Unix epoch in UTC.
func WindowOf(t time.Time, d time.Duration) Window {
	start := t.UTC().Truncate(d)
	return Window{Start: start, End: start.Add(d)}
}

// Aggregate is the counts of one window of one source (a shard), or of a
// part of it. It is what travels on the aggregates stream.
type Aggregate struct {
	// ID is derived from Source, the window, FirstSequence and Chunk: the
	// same records folded again give the same ID. Use it (with the model)
	// as an idempotency key.
	ID     string
	Source string
	Window Window
	// FirstSequence and LastSequence bound the stream records folded into
	// this aggregate (irrelevant ones included).
	FirstSequence string
	LastSequence  string
	// Partial is set when the aggregate was emitted before its window
	// closed normally: the state neared its size budget, Lambda terminated
	// the window early, or records arrived after the window was closed.
	Partial bool
	// Chunk of Chunks: an emission too large for one record is split by rows.
	Chunk, Chunks int
	Rows          []Row
}

// wire is the JSON form of an Aggregate.
type wire struct {
	ID            string `json:"id"`
	Source        string `json:"source"`
	WindowStart   string `json:"window_start"`
	WindowEnd     string `json:"window_end"`
	FirstSequence string `json:"first_sequence,omitempty"`
	LastSequence  string `json:"last_sequence,omitempty"`
	Partial       bool   `json:"partial,omitempty"`
	Chunk         int    `json:"chunk"`
	Chunks        int    `json:"chunks"`
	Rows          []Row  `json:"rows"`
}

// Limits on decoded aggregates, generous enough for any producer (a Flink
// job included) yet bounded.
const (
	maxIDLen     = 256
	maxFieldLen  = 1024
	maxDecodeLen = 8 << 20
)

// MarshalJSON encodes a as the aggregate record: timestamps in
// spate.TimeLayout.
func (a Aggregate) MarshalJSON() ([]byte, error) {
	rows := a.Rows
	if rows == nil {
		rows = []Row{}
	}
	return json.Marshal(wire{
		ID:            a.ID,
		Source:        a.Source,
		WindowStart:   a.Window.Start.UTC().Format(spate.TimeLayout),
		WindowEnd:     a.Window.End.UTC().Format(spate.TimeLayout),
		FirstSequence: a.FirstSequence,
		LastSequence:  a.LastSequence,
		Partial:       a.Partial,
		Chunk:         a.Chunk,
		Chunks:        a.Chunks,
		Rows:          rows,
	})
}

// Decode parses and validates an aggregate record. Records that other
// producers write (a Flink job, say) need only id, window_start,
// window_end and rows; unknown fields are ignored. Errors wrap
// spate.ErrInvalid.
func Decode(data []byte) (Aggregate, error) {
	if len(data) > maxDecodeLen {
		return Aggregate{}, fmt.Errorf("aggregate of %d bytes: %w", len(data), spate.ErrTooLarge)
	}
	// The pipeline's rule (internal/jsonscan): a key named twice is refused,
	// not resolved last-wins as encoding/json would.
	if err := jsonscan.Valid(data); errors.Is(err, jsonscan.ErrDuplicateKey) {
		return Aggregate{}, fmt.Errorf("aggregate json: %v: %w", err, spate.ErrInvalid)
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return Aggregate{}, fmt.Errorf("aggregate json: %v: %w", err, spate.ErrInvalid)
	}
	a := Aggregate{
		ID:            w.ID,
		Source:        w.Source,
		FirstSequence: w.FirstSequence,
		LastSequence:  w.LastSequence,
		Partial:       w.Partial,
		Chunk:         w.Chunk,
		Chunks:        w.Chunks,
		Rows:          w.Rows,
	}
	if a.Chunks == 0 && a.Chunk == 0 {
		a.Chunks = 1
	}
	var ok bool
	if a.Window.Start, ok = ParseTime(w.WindowStart); !ok {
		return Aggregate{}, invalid("window_start", "must be an RFC 3339 timestamp in years 0000-9999 UTC")
	}
	if a.Window.End, ok = ParseTime(w.WindowEnd); !ok {
		return Aggregate{}, invalid("window_end", "must be an RFC 3339 timestamp in years 0000-9999 UTC")
	}
	if err := a.validate(); err != nil {
		return Aggregate{}, err
	}
	return a, nil
}

// ParseTime parses an RFC 3339 timestamp into UTC. It refuses times whose
// UTC year has no four-digit RFC 3339 form (an offset can push year 0000
// or 9999 over the edge), so what it accepts can be written back.
func ParseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

func (a Aggregate) validate() error {
	switch {
	case a.ID == "":
		return invalid("id", "required")
	case len(a.ID) > maxIDLen:
		return invalid("id", "too long")
	case len(a.Source) > maxFieldLen:
		return invalid("source", "too long")
	case len(a.FirstSequence) > maxFieldLen || len(a.LastSequence) > maxFieldLen:
		return invalid("first_sequence", "too long")
	case !a.Window.End.After(a.Window.Start):
		return invalid("window_end", "must be after window_start")
	case a.Chunks < 1 || a.Chunk < 0 || a.Chunk >= a.Chunks:
		return invalid("chunk", "must be in [0, chunks)")
	}
	for _, r := range a.Rows {
		switch {
		case r.ContentID == "" || len(r.ContentID) > maxFieldLen:
			return invalid("rows.content_id", "required, at most 1024 bytes")
		case r.ImageVariant == "" || len(r.ImageVariant) > maxFieldLen:
			return invalid("rows.image_variant", "required, at most 1024 bytes")
		case len(r.Platform) > maxFieldLen:
			return invalid("rows.platform", "at most 1024 bytes")
		case r.Impressions < 0 || r.Clicks < 0 || r.PlayStarts < 0:
			return invalid("rows", "counts must not be negative")
		}
	}
	return nil
}

func invalid(field, rule string) error {
	return &spate.FieldError{Field: field, Rule: rule, Err: spate.ErrInvalid}
}
