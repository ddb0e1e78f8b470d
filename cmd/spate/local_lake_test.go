package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/memstream"
	"github.com/spate-dev/spate/registry"
)

// TestStartLake feeds the in-process stream directly, as ingest does, and
// counts every event exactly once in the lake after stop.
func TestStartLake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := localConfig{DataDir: t.TempDir(), FlushInterval: time.Hour, Shards: 4}
	stream := memstream.New(memstream.Config{Shards: cfg.Shards})
	stop, err := startLake(ctx, cfg, stream, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- stream.Run(ctx) }()

	types := registry.New(registry.Limits{}).Types()
	const perType = 500
	at := time.Now().UTC().Truncate(time.Millisecond)
	var recs []spate.Record
	for i := range perType * len(types) {
		pos := int64(i)
		e := &spate.Event{Type: types[i%len(types)], EventID: fmt.Sprintf("0190a3c4-0000-7000-8000-%012d", i), OccurredAt: at, ReceivedAt: at,
			SessionID: fmt.Sprintf("s-%d", i%97), UserID: "u", Platform: "web", ContentID: "c", PositionMs: &pos}
		recs = append(recs, spate.Record{PartitionKey: e.PartitionKey(), Data: e.AppendJSON(nil)})
	}
	recs = append(recs, spate.Record{PartitionKey: "x", Data: []byte("not an event")})
	for start := 0; start < len(recs); start += 250 {
		if err := stream.Put(ctx, recs[start:min(start+250, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	stream.Close()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := filepath.Join(cfg.DataDir, "lake")
	for _, typ := range types {
		var n, ids int
		q := fmt.Sprintf("SELECT count(*), count(DISTINCT event_id) FROM read_parquet('%s/%s/dt=*/hour=*/*.parquet') WHERE type = '%s'", dir, typ, typ)
		if err := db.QueryRow(q).Scan(&n, &ids); err != nil {
			t.Fatal(err)
		}
		if n != perType || ids != perType {
			t.Errorf("%s: %d rows, %d distinct events; want %d", typ, n, ids, perType)
		}
	}
	dead, _ := filepath.Glob(filepath.Join(dir, "_dead_letter", "dt=*", "hour=*", "*.jsonl"))
	if len(dead) != 1 {
		t.Errorf("dead-letter files %v, want one", dead)
	}
}
