package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/spate-dev/spate/rewarddemo"
)

// startLocal runs `spate local` in-process on an ephemeral port and returns
// its base URL and a stop func that cancels it (as SIGTERM does) and
// returns its error.
func startLocal(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	env := &environment{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" },
		log: slog.New(slog.NewJSONHandler(pw, nil))}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env, append([]string{"local", "--addr", "127.0.0.1:0"}, args...))
		pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		close(addr)
	}()
	var base string
	select {
	case a, ok := <-addr:
		if !ok {
			cancel()
			t.Fatalf("spate local exited: %v", <-done)
		}
		base = "http://" + a
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("spate local did not listen within 30s")
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return base, stop
}

func post(t *testing.T, url, ctype, body string) (int, map[string]any) {
	t.Helper()
	res, err := http.Post(url+"/v1/events", ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func eventID(i int) string { return fmt.Sprintf("0190a3c4-1111-7000-8000-%012d", i) }

// TestLocalEndToEnd posts events of every type, valid and invalid, in every
// body format to `spate local`, stops it, and finds every accepted event
// exactly once in the lake with its values, and none of the rejected.
// It runs over the durable stream and over --stream memory.
func TestLocalEndToEnd(t *testing.T) {
	for _, stream := range []string{"disk", "memory"} {
		t.Run(stream, func(t *testing.T) { testLocalEndToEnd(t, stream) })
	}
}

func testLocalEndToEnd(t *testing.T, stream string) {
	dir := t.TempDir()
	base, stop := startLocal(t, "--data", dir, "--flush-interval", "1h", "--window", "1s", "--stream", stream)

	valid := map[string]string{ // event_id → type
	}
	var batch []string
	add := func(i int, typ, fields string) string {
		valid[eventID(i)] = typ
		return fmt.Sprintf(`{"type":%q,"event_id":%q,"platform":"tv","user_id":"user-%d","session_id":"sess-%d",%s}`, typ, eventID(i), i%5, i%3, fields)
	}
	i := 0
	for range 40 {
		batch = append(batch,
			add(i+0, "page_view", `"page":"/tv/sport","referrer":"/"`),
			add(i+1, "impression", fmt.Sprintf(`"content_id":"prog-%d","image_variant":"hero_%c","list_id":"front","position":%d`, i%4, 'a'+(i/6)%2, i%10)),
			add(i+2, "click", fmt.Sprintf(`"content_id":"prog-%d","image_variant":"hero_a"`, i%4)),
			add(i+3, "play_start", `"content_id":"prog-1","live":true,"position_ms":0`),
			add(i+4, "play_progress", `"content_id":"prog-1","position_ms":30000,"duration_ms":3600000,"attrs":{"cdn":"a","bitrate":"4500"}`),
			add(i+5, "play_end", `"content_id":"prog-1","position_ms":3599000,"reason":"completed"`),
		)
		i += 6
	}
	invalid := []string{
		`{"type":"click","event_id":"` + eventID(9001) + `","platform":"tv","user_id":"u"}`, // no content_id
		`{"type":"impression","event_id":"` + eventID(9002) + `","platform":"fridge","user_id":"u","content_id":"c","image_variant":"a"}`,
		`{"type":"bogus","event_id":"` + eventID(9003) + `","platform":"tv","user_id":"u"}`,
	}
	// A JSON batch with invalid neighbours, NDJSON, and single beacons.
	body := `{"events":[` + strings.Join(append(append([]string{}, batch[:100]...), invalid...), ",") + `]}`
	if code, res := post(t, base, "application/json", body); code != 202 || res["accepted"].(float64) != 100 || len(res["rejected"].([]any)) != 3 {
		t.Fatalf("batch: %d %v", code, res)
	}
	if code, res := post(t, base, "application/x-ndjson", strings.Join(batch[100:200], "\n")); code != 202 || res["accepted"].(float64) != 100 {
		t.Fatalf("ndjson: %d %v", code, res)
	}
	for _, e := range batch[200:] {
		if code, res := post(t, base, "text/plain;charset=UTF-8", e); code != 202 {
			t.Fatalf("beacon: %d %v", code, res)
		}
	}
	if code, _ := post(t, base, "application/json", invalid[0]); code != 400 {
		t.Fatalf("single invalid: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("spate local stopped with %v", err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	found := map[string]int{}
	for _, typ := range []string{"page_view", "impression", "click", "play_start", "play_progress", "play_end"} {
		glob := filepath.Join(dir, "lake", typ, "dt=*", "hour=*", "*.parquet")
		rows, err := db.Query(fmt.Sprintf(`SELECT event_id, type, platform, user_id, received_at FROM read_parquet('%s')`, glob))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		for rows.Next() {
			var id, gotType, platform, user string
			var received time.Time
			if err := rows.Scan(&id, &gotType, &platform, &user, &received); err != nil {
				t.Fatal(err)
			}
			found[id]++
			if gotType != typ || valid[id] != typ || platform != "tv" || !strings.HasPrefix(user, "user-") || received.IsZero() {
				t.Errorf("row %s in %s: type %s platform %s user %s received %v", id, typ, gotType, platform, user, received)
			}
		}
		rows.Close()
	}
	for id := range valid {
		if found[id] != 1 {
			t.Errorf("event %s found %d times in the lake, want 1", id, found[id])
		}
	}
	for _, id := range []string{eventID(9001), eventID(9002), eventID(9003)} {
		if found[id] != 0 {
			t.Errorf("rejected event %s is in the lake", id)
		}
	}
	if len(found) != len(valid) {
		t.Errorf("lake holds %d distinct events, want %d", len(found), len(valid))
	}

	// Values survive: attrs as a map, optional columns NULL where unset.
	var cdn string
	glob := filepath.Join(dir, "lake", "play_progress", "*", "*", "*.parquet")
	if err := db.QueryRow(fmt.Sprintf(`SELECT attrs['cdn'] FROM read_parquet('%s') LIMIT 1`, glob)).Scan(&cdn); err != nil || cdn != "a" {
		t.Errorf("attrs['cdn'] = %q, %v", cdn, err)
	}
	glob = filepath.Join(dir, "lake", "impression", "*", "*", "*.parquet")
	var hero, noList int
	q := `SELECT count(*) FILTER (WHERE image_variant = 'hero_b'), count(*) FILTER (WHERE list_id IS NULL) FROM read_parquet('%s')`
	if err := db.QueryRow(fmt.Sprintf(q, glob)).Scan(&hero, &noList); err != nil {
		t.Fatal(err)
	}
	if noList != 0 {
		t.Errorf("%d impressions lost their list_id", noList)
	}
	if hero != 20 {
		t.Errorf("impressions with hero_b = %d, want 20", hero)
	}
}

// TestLocalRewardsEndToEnd posts impressions and clicks for a few content ×
// variant pairs to `spate local` with a reward API of our own, stops it,
// and finds the receiver's totals equal to what was sent.
func TestLocalRewardsEndToEnd(t *testing.T) {
	rc := rewarddemo.New(rewarddemo.Config{})
	api := httptest.NewServer(rc.Routes())
	defer api.Close()
	base, stop := startLocal(t, "--data", t.TempDir(), "--window", "1s", "--reward-url", api.URL+"/v1/rewards")

	type key struct{ content, variant, platform string }
	want := map[key]rewarddemo.Counts{}
	var events []string
	n := 0
	for _, content := range []string{"prog-1", "prog-2"} {
		for vi, variant := range []string{"hero_a", "hero_b", "hero_c"} {
			for _, platform := range []string{"web", "tv"} {
				k := key{content, variant, platform}
				c := want[k]
				for j := range 5 + vi*3 {
					n++
					events = append(events, fmt.Sprintf(`{"type":"impression","event_id":%q,"content_id":%q,"image_variant":%q,"platform":%q,"anonymous_id":"a"}`, eventID(n), content, variant, platform))
					c.Impressions++
					if j%(vi+2) == 0 {
						n++
						events = append(events, fmt.Sprintf(`{"type":"click","event_id":%q,"content_id":%q,"image_variant":%q,"platform":%q,"anonymous_id":"a"}`, eventID(n), content, variant, platform))
						c.Clicks++
					}
				}
				n++
				events = append(events, fmt.Sprintf(`{"type":"play_start","event_id":%q,"content_id":%q,"image_variant":%q,"platform":%q,"anonymous_id":"a"}`, eventID(n), content, variant, platform))
				c.PlayStarts++
				want[k] = c
			}
		}
	}
	// Events without a variant count nowhere.
	events = append(events, `{"type":"click","content_id":"prog-1","platform":"web","anonymous_id":"a"}`, `{"type":"play_start","content_id":"prog-1","platform":"web","anonymous_id":"a"}`)
	for start := 0; start < len(events); start += 50 {
		body := `{"events":[` + strings.Join(events[start:min(start+50, len(events))], ",") + `]}`
		if code, res := post(t, base, "application/json", body); code != 202 {
			t.Fatalf("post: %d %v", code, res)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("spate local stopped with %v", err)
	}
	got := map[key]rewarddemo.Counts{}
	for _, r := range rc.Totals().Rewards {
		if r.Model != "thumbnails" {
			t.Errorf("model %q", r.Model)
		}
		got[key{r.ContentID, r.ImageVariant, r.Platform}] = r.Counts
	}
	if len(got) != len(want) {
		t.Errorf("receiver has %d rows, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%v: got %+v, want %+v", k, got[k], w)
		}
	}
}

// TestLocalDemoThumbnails: without --reward-url the demo receiver serves
// the thumbnail chooser on the same address.
func TestLocalDemoThumbnails(t *testing.T) {
	base, stop := startLocal(t, "--data", t.TempDir())
	res, err := http.Get(base + "/v1/thumbnails/prog-unknown")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("thumbnail before any reward: %d, want 404", res.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
