package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/laketest"
)

// TestLocalPostedTwiceCompacted posts the same events to `spate local`
// twice, across a restart (so the router's memory of delivered event_ids,
// which would skip the second copies within one process, is empty), and
// finds each twice in the lake; after `spate lake compact` every event_id
// is there once, with its first received_at.
func TestLocalPostedTwiceCompacted(t *testing.T) {
	dir := t.TempDir()
	var events []string
	for i := range 300 {
		events = append(events, fmt.Sprintf(`{"type":"click","event_id":%q,"platform":"web","user_id":"user-%d","session_id":"sess-%d","content_id":"prog-%d","image_variant":"hero_a"}`,
			eventID(50_000+i), i%17, i%11, i%5))
	}
	body := `{"events":[` + strings.Join(events[:150], ",") + `]}`
	ndjson := strings.Join(events[150:], "\n")
	for run := range 2 {
		base, stop := startLocal(t, "--data", dir, "--flush-interval", "1h", "--window", "1s")
		for range 1 + run { // the second run gets them twice more: a retried POST within one process
			if code, res := post(t, base, "application/json", body); code != 202 {
				t.Fatalf("run %d: %d %v", run, code, res)
			}
			if code, res := post(t, base, "application/x-ndjson", ndjson); code != 202 {
				t.Fatalf("run %d: %d %v", run, code, res)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	lakeDir := filepath.Join(dir, "lake")
	db := laketest.DB(t)
	glob := filepath.Join(lakeDir, "click", "*", "*", "*.parquet")
	var rows, ids int64
	var firsts string
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM read_parquet('`+glob+`')`).Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if ids != 300 || rows != 600 {
		t.Fatalf("before compact: %d rows, %d event_ids; want each event twice: once per process, the in-process retry skipped by the router", rows, ids)
	}
	if err := db.QueryRow(`SELECT md5(string_agg(event_id || epoch_ms(r), ',' ORDER BY event_id)) FROM (SELECT event_id, min(received_at) r FROM read_parquet('` + glob + `') GROUP BY 1)`).Scan(&firsts); err != nil {
		t.Fatal(err)
	}
	env, out, _ := lakeEnv()
	if err := run(t.Context(), env, []string{"lake", "compact", "--lake", lakeDir, "--settle=-1s"}); err != nil {
		t.Fatal(err)
	}
	var after string
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT event_id), md5(string_agg(event_id || epoch_ms(received_at), ',' ORDER BY event_id)) FROM read_parquet('`+glob+`')`).Scan(&rows, &ids, &after); err != nil {
		t.Fatal(err)
	}
	if rows != 300 || ids != 300 || after != firsts {
		t.Errorf("after compact: %d rows, %d event_ids, first copies kept: %v\n%s", rows, ids, after == firsts, out)
	}
}
