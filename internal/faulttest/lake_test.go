package faulttest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/laketest"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/lakeedit"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// lakeDups is what a stream's duplicates become in the lake.
type lakeDups struct {
	Off, On   int64 // duplicate rows routed with the router's memory off, on
	Compacted int64 // duplicate rows left after lake compact (memory off)
	Rows, IDs int64 // rows and event_ids after compact
	Dropped   int64 // duplicates compact reported dropping
}

// intoLake routes every record of the stream (each copy) into a local lake
// the way the router Lambda does, 100 records per invocation per shard,
// with the router's memory of delivered event_ids off and on; then
// compacts the first lake. One arrival hour (an injected clock), so
// compact sees one partition per type.
func intoLake(t *testing.T, ctx context.Context, recs []spate.Record) lakeDups {
	t.Helper()
	var d lakeDups
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dirs := map[bool]string{}
	for _, memory := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "lake")
		dirs[memory] = dir
		reg := registry.New(registry.Limits{})
		lk, err := lake.Open(reg, lake.Config{Dir: dir, FlushInterval: time.Hour, Now: func() time.Time { return at }}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := router.Config{Streams: router.StreamNames(reg.Types(), "")}
		if !memory {
			cfg.RecentIDs = -1
		}
		rt, err := router.New(reg, lk, lk, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, shard := range byShard(recs) {
			for i := 0; i < len(shard); i += 100 {
				if err := rt.Route(ctx, shard[i:min(i+100, len(shard))]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := lk.Close(ctx); err != nil {
			t.Fatal(err)
		}
		rows, ids := rowsAndIDs(t, dir)
		if memory {
			d.On = rows - ids
		} else {
			d.Off = rows - ids
		}
	}
	st, err := lakeedit.NewDir(dirs[false])
	if err != nil {
		t.Fatal(err)
	}
	rep, err := lakeedit.Compact(ctx, st, lakeedit.CompactConfig{Now: func() time.Time { return at.Add(24 * time.Hour) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Rows, d.IDs = rowsAndIDs(t, dirs[false])
	d.Compacted, d.Dropped = d.Rows-d.IDs, rep.DuplicatesDropped
	return d
}

func rowsAndIDs(t *testing.T, dir string) (rows, ids int64) {
	t.Helper()
	db := laketest.DB(t)
	q := fmt.Sprintf(`SELECT count(*), count(DISTINCT event_id) FROM read_parquet('%s', union_by_name = true)`, laketest.Glob(dir))
	if err := db.QueryRow(q).Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	return rows, ids
}

// checkLake routes s's stream into a lake and compacts it: every event_id
// exactly once.
func (s *scenario) checkLake(ctx context.Context) lakeDups {
	s.t.Helper()
	recs, err := ReadStream(ctx, s.w.kc, s.stream)
	if err != nil {
		s.t.Fatal(err)
	}
	d := intoLake(s.t, ctx, recs)
	distinct := map[string]bool{}
	for _, r := range recs {
		id, err := EventID(r)
		if err != nil {
			s.t.Fatal(err)
		}
		distinct[id] = true
	}
	if d.Compacted != 0 || d.IDs != int64(len(distinct)) {
		s.t.Errorf("lake after compact: %d rows, %d event_ids; the stream holds %d; want every event_id once", d.Rows, d.IDs, len(distinct))
	}
	if d.Dropped != d.Off {
		s.t.Errorf("compact dropped %d duplicates, the lake held %d", d.Dropped, d.Off)
	}
	return d
}
