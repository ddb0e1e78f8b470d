package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestDiskFullAnswers503ThenRecovers fills a small stream (--max-disk) whose
// lake consumer commits only every 10 s: ingest answers 503 with
// Retry-After, never blocks, takes events again once the lake commits and
// the stream frees, and everything acknowledged is in the lake once.
func TestDiskFullAnswers503ThenRecovers(t *testing.T) {
	dir := t.TempDir()
	const maxDisk = 1 << 20
	base, stop := startLocal(t, "--data", dir, "--max-disk", "1MiB", "--flush-interval", "10s", "--window", "1s")

	var mu sync.Mutex
	acked := map[string]bool{}
	var full, recovered atomic.Bool
	var retryAfter atomic.Value
	var next atomic.Int64
	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !recovered.Load() && time.Now().Before(deadline) {
				var ids, evs []string
				for range 20 {
					id := fmt.Sprintf("0190a3c4-2222-7000-8000-%012d", next.Add(1))
					ids = append(ids, id)
					evs = append(evs, fmt.Sprintf(`{"type":"page_view","event_id":%q,"platform":"web","anonymous_id":"a","page":"/%s"}`, id, strings.Repeat("p", 200)))
				}
				res, err := client.Post(base+"/v1/events", "application/json", strings.NewReader(`{"events":[`+strings.Join(evs, ",")+`]}`))
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusAccepted:
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					mu.Unlock()
					if full.Load() {
						recovered.Store(true)
					}
				case http.StatusServiceUnavailable:
					retryAfter.Store(res.Header.Get("Retry-After"))
					full.Store(true)
				default:
					t.Errorf("status %d", res.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	if !full.Load() || !recovered.Load() {
		t.Fatalf("full %v, recovered %v within 90 s", full.Load(), recovered.Load())
	}
	if ra, _ := retryAfter.Load().(string); ra == "" {
		t.Error("503 without Retry-After")
	}
	if fi, err := os.Stat(filepath.Join(dir, "stream", "stream.db")); err != nil || fi.Size() > maxDisk {
		t.Errorf("stream file: %v bytes (bound %d), %v", fi.Size(), maxDisk, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf(`SELECT event_id, count(*) FROM read_parquet('%s') GROUP BY event_id`, filepath.Join(dir, "lake", "page_view", "*", "*", "*.parquet")))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 || !acked[id] {
			t.Errorf("event %s: %d times in the lake, acknowledged %v", id, n, acked[id])
		}
		found++
	}
	if found != len(acked) {
		t.Errorf("lake has %d events, %d acknowledged", found, len(acked))
	}
	t.Logf("%d events acknowledged around a full stream", len(acked))
}
