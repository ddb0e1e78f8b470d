package lake_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

var arrival = time.Date(2026, 3, 1, 12, 34, 56, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func open(t *testing.T, cfg lake.Config) (*lake.Lake, *clock) {
	t.Helper()
	c := &clock{t: arrival}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "lake")
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Hour // tests flush explicitly
	}
	cfg.Now = c.Now
	l, err := lake.Open(registry.New(registry.Limits{}), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l, c
}

func ptr[T any](v T) *T { return &v }

// clicks returns n click events; every step-th has image_variant hero_a
// and every other one attrs.
var platforms = []string{"web", "ios", "android", "tv", "other"}

func clicks(n, step int) []*spate.Event {
	out := make([]*spate.Event, n)
	at := time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)
	for i := range out {
		e := &spate.Event{Type: "click", EventID: fmt.Sprintf("0190a3c4-0000-7000-8000-%012d", i), OccurredAt: at.Add(time.Duration(i) * time.Millisecond),
			ReceivedAt: at.Add(time.Second), UserID: fmt.Sprintf("user-%d", i%1000), SessionID: fmt.Sprintf("s-%d", i%300),
			Platform: platforms[i%len(platforms)], AppVersion: "5.12.0", Props: []spate.Prop{spate.Str("content_id", fmt.Sprintf("1-%d", i%2000))}}
		if i%step == 0 {
			e.Set(spate.Str("image_variant", "hero_a"))
		}
		if i%2 == 0 {
			e.Attrs = map[string]string{"ab": "b", "screen": fmt.Sprintf("%dx1080", i%3)}
		}
		if i%3 == 0 {
			e.Set(spate.Int("position", int64(i%40)))
			e.Set(spate.Str("list_id", "trending"))
		}
		out[i] = e
	}
	return out
}

// pack writes events into records of about size bytes, newline-separated,
// as the router does.
func pack(events []*spate.Event, size int) [][]byte {
	var recs [][]byte
	var cur []byte
	for _, e := range events {
		cur = append(e.AppendJSON(cur), '\n')
		if len(cur) >= size {
			recs = append(recs, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		recs = append(recs, cur)
	}
	return recs
}

func parquetFiles(t *testing.T, dir string) (files, temps []string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case strings.HasSuffix(path, ".tmp"):
			temps = append(temps, rel)
		case strings.HasSuffix(path, ".parquet"):
			files = append(files, rel)
		}
		return nil
	})
	return files, temps
}

func duck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestDuckDBReadsTheLake writes 20,000 clicks of which 100 carry an
// image_variant, and checks what an independent engine reads back.
func TestDuckDBReadsTheLake(t *testing.T) {
	l, _ := open(t, lake.Config{RowGroupRows: 4096})
	events := clicks(20_000, 200)
	for _, batch := range slices.Collect(slices.Chunk(pack(events, 16<<10), 50)) {
		if err := l.PutBatch(context.Background(), "click", batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := lakeDir(t, l)
	files, temps := parquetFiles(t, dir)
	if len(files) != 1 || len(temps) != 0 {
		t.Fatalf("files %v, temporaries %v; want one file", files, temps)
	}
	if want := filepath.Join("click", "dt=2026-03-01", "hour=12"); filepath.Dir(files[0]) != want {
		t.Errorf("file in %s, want %s", filepath.Dir(files[0]), want)
	}
	glob := filepath.Join(dir, "click", "*", "*", "*.parquet")
	db := duck(t)
	from := fmt.Sprintf("read_parquet('%s', hive_partitioning = true)", glob)

	t.Run("counts", func(t *testing.T) {
		for q, want := range map[string]int64{
			"SELECT count(*) FROM " + from:                                            20_000,
			"SELECT count(*) FROM " + from + " WHERE image_variant = 'hero_a'":        100,
			"SELECT count(*) FROM " + from + " WHERE image_variant IS NOT NULL":       100,
			"SELECT count(*) FROM " + from + " WHERE image_variant IS NULL":           19_900,
			"SELECT count(*) FROM " + from + " WHERE position IS NOT NULL":            6_667,
			"SELECT count(*) FROM " + from + " WHERE list_id = 'trending'":            6_667,
			"SELECT count(*) FROM " + from + " WHERE attrs IS NOT NULL":               10_000,
			"SELECT count(*) FROM " + from + " WHERE attrs['screen'] = '1x1080'":      3_333,
			"SELECT count(DISTINCT event_id) FROM " + from:                            20_000,
			"SELECT count(*) FROM " + from + " WHERE dt = '2026-03-01' AND hour = 12": 20_000,
			"SELECT count(*) FROM " + from + " WHERE platform = 'tv'":                 4_000,
		} {
			if got := count(t, db, q); got != want {
				t.Errorf("%s = %d, want %d", q, got, want)
			}
		}
	})

	t.Run("types", func(t *testing.T) {
		rows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('" + glob + "', hive_partitioning = false))")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]string{}
		var order []string
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				t.Fatal(err)
			}
			got[name] = typ
			order = append(order, name)
		}
		s, _ := registry.New(registry.Limits{}).Schema("click")
		var want []string
		for _, c := range s.Columns {
			want = append(want, c.Name)
			wantType := map[registry.Kind]string{registry.String: "VARCHAR", registry.Int64: "BIGINT", registry.Bool: "BOOLEAN",
				registry.Timestamp: "TIMESTAMP WITH TIME ZONE", registry.StringMap: "MAP(VARCHAR, VARCHAR)"}[c.Kind]
			if got[c.Name] != wantType {
				t.Errorf("%s: %s, want %s", c.Name, got[c.Name], wantType)
			}
		}
		if !slices.Equal(order, want) {
			t.Errorf("columns %v, want registry order %v", order, want)
		}
	})

	t.Run("values", func(t *testing.T) {
		for _, i := range []int{0, 1, 3, 200, 19_999} {
			e := events[i]
			var (
				typ, eventID, userID, platform, appVersion, contentID string
				sessionID, anon, imageVariant, listID                 sql.NullString
				occurred, received                                    time.Time
				position                                              sql.NullInt64
				attrs                                                 sql.NullString
			)
			err := db.QueryRow(`SELECT type, event_id, occurred_at, received_at, user_id, anonymous_id, session_id, platform, app_version,
				CAST(to_json(attrs) AS VARCHAR), content_id, image_variant, list_id, position FROM `+from+` WHERE event_id = ?`, e.EventID).
				Scan(&typ, &eventID, &occurred, &received, &userID, &anon, &sessionID, &platform, &appVersion, &attrs, &contentID, &imageVariant, &listID, &position)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if typ != "click" || eventID != e.EventID || userID != e.UserID || sessionID.String != e.SessionID || anon.Valid ||
				platform != e.Platform || appVersion != e.AppVersion || contentID != e.String("content_id") ||
				imageVariant.String != e.String("image_variant") || imageVariant.Valid != (e.String("image_variant") != "") ||
				listID.String != e.String("list_id") || position.Valid != hasProp(e, "position") || position.Int64 != propInt(e, "position") {
				t.Errorf("event %d read back differently", i)
			}
			if !occurred.Equal(e.OccurredAt) || !received.Equal(e.ReceivedAt) {
				t.Errorf("event %d: times %v %v, want %v %v", i, occurred, received, e.OccurredAt, e.ReceivedAt)
			}
			if (e.Attrs == nil) != !attrs.Valid {
				t.Errorf("event %d: attrs %v", i, attrs)
			} else if attrs.Valid {
				var m map[string]string
				if err := json.Unmarshal([]byte(attrs.String), &m); err != nil || !maps(m, e.Attrs) {
					t.Errorf("event %d: attrs %s, want %v", i, attrs.String, e.Attrs)
				}
			}
		}
	})

	t.Run("parquet settings", func(t *testing.T) {
		meta := fmt.Sprintf("parquet_metadata('%s')", glob)
		if n := count(t, db, "SELECT count(*) FROM "+meta+" WHERE compression <> 'SNAPPY'"); n != 0 {
			t.Errorf("%d column chunks not Snappy", n)
		}
		if n := count(t, db, "SELECT count(DISTINCT row_group_id) FROM "+meta); n != 5 {
			t.Errorf("row groups = %d, want 5 of at most 4096 rows", n)
		}
		if n := count(t, db, "SELECT max(row_group_num_rows) FROM "+meta); n > 4096 {
			t.Errorf("row group of %d rows", n)
		}
		enc := func(col string) string {
			var s string
			if err := db.QueryRow("SELECT encodings FROM "+meta+" WHERE path_in_schema = ? LIMIT 1", col).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if e := enc("platform"); !strings.Contains(e, "DICTIONARY") {
			t.Errorf("platform encodings %s, want a dictionary", e)
		}
		if e := enc("event_id"); strings.Contains(e, "DICTIONARY") || !strings.Contains(e, "PLAIN") {
			t.Errorf("event_id encodings %s, want plain", e)
		}
		// Statistics let engines skip row groups; null counts must be true.
		if n := count(t, db, "SELECT sum(stats_null_count) FROM "+meta+" WHERE path_in_schema = 'image_variant'"); n != 19_900 {
			t.Errorf("image_variant null_count = %d, want 19900", n)
		}
		var logical, converted sql.NullString
		if err := db.QueryRow("SELECT logical_type, converted_type FROM parquet_schema('"+glob+"') WHERE name = 'occurred_at'").Scan(&logical, &converted); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logical.String, "isAdjustedToUTC=1") || !strings.Contains(logical.String, "MILLIS") {
			t.Errorf("occurred_at logical type %s, want TIMESTAMP(MILLIS, UTC)", logical.String)
		}
	})
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func lakeDir(t *testing.T, l *lake.Lake) string {
	t.Helper()
	return l.Dir()
}

// everyType returns events of every type with every field it allows set.
func everyType(t *testing.T) []*spate.Event {
	t.Helper()
	reg := registry.New(registry.Limits{})
	at := time.Date(2026, 3, 1, 11, 59, 59, 999e6, time.UTC)
	var out []*spate.Event
	for i, typ := range reg.Types() {
		live := i%2 == 0
		e := &spate.Event{Type: typ, EventID: fmt.Sprintf("0190a3c4-0000-7000-8000-1%011d", i), OccurredAt: at, ReceivedAt: at.Add(time.Millisecond),
			AnonymousID: "anon", Platform: "android", Attrs: map[string]string{"k\"ey": "v\nal\u00e9"}}
		s, _ := reg.Schema(typ)
		for _, c := range s.Columns {
			switch c.Name {
			case "page":
				e.Set(spate.Str("page", "/home?q=\u2028"))
			case "referrer":
				e.Set(spate.Str("referrer", "https://example.test/"))
			case "content_id":
				e.Set(spate.Str("content_id", "1-123"))
			case "image_variant":
				e.Set(spate.Str("image_variant", "hero_b"))
			case "list_id":
				e.Set(spate.Str("list_id", "recommended"))
			case "position":
				e.Set(spate.Int("position", 7))
			case "position_ms":
				e.Set(spate.Int("position_ms", 1<<40))
			case "duration_ms":
				e.Set(spate.Int("duration_ms", 3_600_000))
			case "live":
				e.Set(spate.Bool("live", live))
			case "reason":
				e.Set(spate.Str("reason", "completed"))
			}
		}
		out = append(out, e)
	}
	return out
}

func TestEveryTypeReadsBackWithItsValues(t *testing.T) {
	l, _ := open(t, lake.Config{})
	events := everyType(t)
	for _, e := range events {
		if err := l.PutBatch(context.Background(), e.Type, [][]byte{e.AppendJSON(nil)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	db := duck(t)
	for _, e := range events {
		glob := filepath.Join(l.Dir(), e.Type, "*", "*", "*.parquet")
		// to_json renders every column of the row; compare it with the
		// event's own canonical JSON, field by field.
		var row string
		err := db.QueryRow(fmt.Sprintf(`SELECT CAST(to_json(t) AS VARCHAR) FROM read_parquet('%s', hive_partitioning = false) t`, glob)).Scan(&row)
		if err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
		var got, want map[string]any
		if err := json.Unmarshal([]byte(row), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(e.AppendJSON(nil), &want); err != nil {
			t.Fatal(err)
		}
		for k, w := range want {
			g := got[k]
			switch k {
			case "occurred_at", "received_at":
				gt, err := time.Parse("2006-01-02 15:04:05.999Z07", fmt.Sprint(g))
				wt, _ := time.Parse(time.RFC3339, w.(string))
				if err != nil || !gt.Equal(wt) {
					t.Errorf("%s.%s = %v, want %v", e.Type, k, g, w)
				}
				continue
			}
			if fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("%s.%s = %v, want %v", e.Type, k, g, w)
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok && g != nil {
				t.Errorf("%s.%s = %v, want null", e.Type, k, g)
			}
		}
	}
}

// TestDataPagesAreV1 reads every column chunk's first page header: v1 data
// pages are what older Hive/Athena readers expect.
func TestDataPagesAreV1(t *testing.T) {
	l, _ := open(t, lake.Config{})
	if err := l.PutBatch(context.Background(), "click", pack(clicks(1000, 10), 4096)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := parquetFiles(t, l.Dir())
	data, err := os.ReadFile(filepath.Join(l.Dir(), files[0]))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			var h format.PageHeader
			r := (&thrift.CompactProtocol{}).NewReader(bytes.NewReader(data[c.MetaData.DataPageOffset:]))
			if err := thrift.NewDecoder(r).Decode(&h); err != nil {
				t.Fatal(err)
			}
			if h.Type != format.DataPage {
				t.Errorf("%v: page type %v, want DATA_PAGE (v1)", c.MetaData.PathInSchema, h.Type)
			}
			chunks++
		}
	}
	if chunks == 0 {
		t.Fatal("no column chunks")
	}
}

func TestFlushBySize(t *testing.T) {
	l, _ := open(t, lake.Config{FlushBytes: 64 << 10})
	events := clicks(3000, 7)
	for _, batch := range slices.Collect(slices.Chunk(pack(events, 8<<10), 4)) {
		if err := l.PutBatch(context.Background(), "click", batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := parquetFiles(t, l.Dir())
	if len(files) < 5 {
		t.Errorf("%d files; want one per 64 KiB of events", len(files))
	}
	if n := count(t, duck(t), fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/click/*/*/*.parquet')", l.Dir())); n != 3000 {
		t.Errorf("rows = %d, want 3000", n)
	}
	if st := l.Stats(); st.Files != int64(len(files)) || st.Rows != 3000 || st.FileBytes == 0 || st.Bytes == 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestPartitionsByArrivalHour: as in Firehose, a file lies in the hour
// its first event arrived, including the events that join it after the
// hour turns; the next file lies in the hour it starts.
func TestPartitionsByArrivalHour(t *testing.T) {
	l, c := open(t, lake.Config{})
	events := clicks(10, 1)
	put := func(at time.Time, evs []*spate.Event) {
		t.Helper()
		c.Set(at)
		if err := l.PutBatch(context.Background(), "click", pack(evs, 1)); err != nil {
			t.Fatal(err)
		}
	}
	put(time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC), events[:4])
	put(time.Date(2026, 3, 2, 0, 0, 1, 0, time.UTC), events[4:6])
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	put(time.Date(2026, 3, 2, 0, 0, 2, 0, time.UTC), events[6:])
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db := duck(t)
	for dir, want := range map[string]int64{"dt=2026-03-01/hour=23": 6, "dt=2026-03-02/hour=00": 4} {
		if n := count(t, db, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/click/%s/*.parquet')", l.Dir(), dir)); n != want {
			t.Errorf("%s: %d rows, want %d", dir, n, want)
		}
	}
}

func TestFilesAppearAtomically(t *testing.T) {
	l, _ := open(t, lake.Config{RowGroupRows: 10})
	if err := l.PutBatch(context.Background(), "click", pack(clicks(100, 3), 512)); err != nil {
		t.Fatal(err)
	}
	files, temps := parquetFiles(t, l.Dir())
	if len(files) != 0 || len(temps) != 1 || !strings.HasPrefix(filepath.Base(temps[0]), ".") {
		t.Fatalf("before flush: files %v, temporaries %v; want one hidden temporary", files, temps)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, temps = parquetFiles(t, l.Dir())
	if len(files) != 1 || len(temps) != 0 {
		t.Fatalf("after flush: files %v, temporaries %v", files, temps)
	}
}

func TestConversionErrorsGoToTheErrorOutput(t *testing.T) {
	l, _ := open(t, lake.Config{})
	good := pack(clicks(3, 1), 1)
	bad := []byte("{\"type\":\"click\"}\n{\"type\":\"click\",\"position\":\"x\"}\n")
	if err := l.PutBatch(context.Background(), "click", [][]byte{good[0], bad, good[1], []byte("nope"), good[2]}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, duck(t), fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/click/*/*/*.parquet')", l.Dir())); n != 3 {
		t.Errorf("rows = %d, want the 3 good events only", n)
	}
	errFiles, _ := filepath.Glob(filepath.Join(l.Dir(), "_errors", "click", "dt=2026-03-01", "hour=12", "*.json"))
	if len(errFiles) != 1 {
		t.Fatalf("error files %v", errFiles)
	}
	b, _ := os.ReadFile(errFiles[0])
	if want := string(bad) + "nope\n"; string(b) != want {
		t.Errorf("error output %q, want %q", b, want)
	}
	if st := l.Stats(); st.ConversionErrors != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestDeadLetter(t *testing.T) {
	l, _ := open(t, lake.Config{})
	recs := []spate.Record{
		{PartitionKey: "k1", Data: []byte("Hello World"), ShardID: "shardId-000000000001", SequenceNumber: "7", ArrivedAt: arrival},
		{PartitionKey: "k2", Data: []byte{0xff, 0}, ShardID: "shardId-000000000001", SequenceNumber: "8"},
	}
	if err := l.PutReason(context.Background(), recs, "undecodable"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(l.Dir(), "_dead_letter", "dt=2026-03-01", "hour=12", "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("dead-letter files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, line := range lines {
		var got struct {
			Reason         string `json:"reason"`
			ShardID        string `json:"shard_id"`
			SequenceNumber string `json:"sequence_number"`
			PartitionKey   string `json:"partition_key"`
			Data           []byte `json:"data"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		if got.Reason != "undecodable" || !bytes.Equal(got.Data, recs[i].Data) || got.PartitionKey != recs[i].PartitionKey ||
			got.ShardID != recs[i].ShardID || got.SequenceNumber != recs[i].SequenceNumber {
			t.Errorf("line %d = %s", i, line)
		}
	}
}

func TestPutBatchErrors(t *testing.T) {
	l, _ := open(t, lake.Config{})
	if err := l.PutBatch(context.Background(), "purchase", [][]byte{[]byte(`{}`)}); !errors.Is(err, router.ErrPermanent) {
		t.Errorf("unknown table: err = %v, want permanent", err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.PutBatch(context.Background(), "click", pack(clicks(1, 1), 1)); !errors.Is(err, spate.ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

// TestInputIsNotRetained: the writer copies what it needs, so the caller
// may reuse its buffers once PutBatch returns.
func TestInputIsNotRetained(t *testing.T) {
	l, _ := open(t, lake.Config{})
	events := clicks(50, 1)
	recs := pack(events, 1<<20)
	if err := l.PutBatch(context.Background(), "click", recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		for i := range r {
			if r[i] >= 'a' && r[i] <= 'z' {
				r[i] = 'X'
			}
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, duck(t), fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/click/*/*/*.parquet') WHERE image_variant = 'hero_a' AND type = 'click'", l.Dir())); n != 50 {
		t.Errorf("%d of 50 rows intact", n)
	}
}

func TestConcurrentPuts(t *testing.T) {
	l, _ := open(t, lake.Config{RowGroupRows: 100, FlushBytes: 32 << 10})
	events := everyType(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				e := events[(g+i)%len(events)]
				if err := l.PutBatch(context.Background(), e.Type, [][]byte{e.AppendJSON(nil)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := l.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, duck(t), fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/*/*/*/*.parquet', union_by_name = true)", l.Dir())); n != 400 {
		t.Errorf("rows = %d, want 400", n)
	}
}

func hasProp(e *spate.Event, name string) bool { _, ok := e.Prop(name); return ok }

func propInt(e *spate.Event, name string) int64 { p, _ := e.Prop(name); return p.Int }
