// Package lakegen generates a lake on disk through the lake package, the
// way `spate local` writes it, for the lake maintenance tests and
// benchmarks: several types, several hours, many files, identifiers drawn
// from fixed pools so erasure requests have something to find, and
// optional duplicates as at-least-once delivery leaves them.
package lakegen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/registry"
)

// Config shapes a generated lake.
type Config struct {
	Dir   string // the lake's root; required
	Rows  int    // events, duplicates not counted
	Hours int    // arrival hours the events spread over (default 3)
	// FilesPerHour is how many files each type gets per hour (default 4).
	FilesPerHour int
	// Users, Devices, Sessions size the identifier pools of each hour (defaults 20,000,
	// 20,000 and 50,000).
	Users, Devices, Sessions int
	// DuplicateEvery writes every n-th event a second time, later and in
	// another file of the same hour, as a redelivery would (0: none).
	DuplicateEvery int
	// Start is the first arrival hour (default 2026-03-01T10:00Z).
	Start time.Time
}

// Types are the event types generated, all of the registry's. Loading the
// registry parses every schema; Event needs the list once per row, so it
// is loaded once (under -race, per row it was most of a lake's generation).
func Types() []string { return slices.Clone(defaultTypes()) }

var defaultTypes = sync.OnceValue(func() []string { return registry.New(registry.Limits{}).Types() })

// UserID, AnonymousID and SessionID are the pools' identifiers.
func UserID(i int) string      { return fmt.Sprintf("user-%06d", i) }
func AnonymousID(i int) string { return fmt.Sprintf("anon-%06d", i) }
func SessionID(i int) string   { return fmt.Sprintf("sess-%07d", i) }

// EventID is the i-th event's id.
func EventID(i int) string { return fmt.Sprintf("0190a3c4-0000-7000-8000-%012d", i) }

// Event returns the i-th event of a lake generated with cfg: every event
// has a user or a device and most a session, drawn from the pools of its
// arrival hour.
func Event(cfg Config, i int) *spate.Event {
	cfg.defaults()
	types := defaultTypes()
	typ := types[i%len(types)]
	e := &spate.Event{Type: typ, EventID: EventID(i), Platform: platform(i), AppVersion: "5.12.0"}
	// Each hour has its own people, as viewing comes in sessions: a
	// request about someone of one hour touches that hour's files only.
	hour := 0
	if cfg.Rows > 0 {
		hour = i * cfg.Hours / cfg.Rows
	}
	if i%3 == 0 {
		e.AnonymousID = AnonymousID(hour*cfg.Devices + (i*7)%cfg.Devices)
	} else {
		e.UserID = UserID(hour*cfg.Users + (i*13)%cfg.Users)
	}
	if i%5 != 0 {
		e.SessionID = SessionID(hour*cfg.Sessions + (i*17)%cfg.Sessions)
	}
	// A type's own fields; the lake keeps those its schema has columns for
	// and ignores the rest, as Firehose does.
	e.Set(spate.Str("content_id", fmt.Sprintf("prog-%d", i%5000)))
	e.Set(spate.Str("image_variant", [...]string{"hero_a", "hero_b", "hero_c"}[i%3]))
	e.Set(spate.Str("page", "/programmes"))
	e.Set(spate.Int("position", int64(i%40)))
	if i%4 == 0 {
		e.Attrs = map[string]string{"ab": "b", "screen": "1920x1080"}
	}
	return e
}

// platform is the i-th event's platform, a value of the envelope's enum.
func platform(i int) string { return [...]string{"web", "ios", "android", "tv"}[i%4] }

func (c *Config) defaults() {
	if c.Hours <= 0 {
		c.Hours = 3
	}
	if c.FilesPerHour <= 0 {
		c.FilesPerHour = 4
	}
	if c.Users <= 0 {
		c.Users = 20_000
	}
	if c.Devices <= 0 {
		c.Devices = 20_000
	}
	if c.Sessions <= 0 {
		c.Sessions = 50_000
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Stats is what was written.
type Stats struct {
	Rows       int // rows in the lake, duplicates included
	Duplicates int
	Files      int64
}

// Generate writes the lake: events in order, hour by hour, FilesPerHour
// flushes per hour; event i arrives in hour i*Hours/Rows.
func Generate(ctx context.Context, cfg Config) (Stats, error) {
	cfg.defaults()
	clk := &clock{t: cfg.Start}
	l, err := lake.Open(registry.New(registry.Limits{}), lake.Config{Dir: cfg.Dir, FlushInterval: 24 * time.Hour, Now: clk.now}, nil)
	if err != nil {
		return Stats{}, err
	}
	var st Stats
	types := Types()
	batches := map[string][][]byte{}
	var dups []int
	put := func() error {
		for _, typ := range types {
			if len(batches[typ]) == 0 {
				continue
			}
			if err := l.PutBatch(ctx, typ, batches[typ]); err != nil {
				return err
			}
			batches[typ] = batches[typ][:0]
		}
		return nil
	}
	chunk := max(1, cfg.Rows/(cfg.Hours*cfg.FilesPerHour))
	for i := 0; i < cfg.Rows; i++ {
		hour := i * cfg.Hours / cfg.Rows
		at := cfg.Start.Add(time.Duration(hour) * time.Hour).Add(time.Duration(i%3_000_000) * time.Millisecond)
		clk.set(at)
		e := Event(cfg, i)
		e.OccurredAt = at.Add(-time.Second)
		e.ReceivedAt = at.Truncate(time.Millisecond)
		batches[e.Type] = append(batches[e.Type], e.AppendJSON(nil))
		st.Rows++
		if cfg.DuplicateEvery > 0 && i%cfg.DuplicateEvery == 0 {
			dups = append(dups, i)
		}
		if (i+1)%chunk == 0 || i == cfg.Rows-1 || (i+1)*cfg.Hours/cfg.Rows != hour {
			if err := put(); err != nil {
				return st, err
			}
			// A redelivery: the same events, received later, in the next
			// file of the same hour.
			for _, j := range dups {
				d := Event(cfg, j)
				d.OccurredAt = at.Add(-time.Second)
				d.ReceivedAt = at.Add(time.Millisecond).Truncate(time.Millisecond)
				batches[d.Type] = append(batches[d.Type], d.AppendJSON(nil))
				st.Rows++
				st.Duplicates++
			}
			dups = dups[:0]
			if err := l.Flush(ctx); err != nil {
				return st, err
			}
			if err := put(); err != nil {
				return st, err
			}
		}
	}
	if err := l.Close(ctx); err != nil {
		return st, err
	}
	st.Files = l.Stats().Files
	return st, nil
}
