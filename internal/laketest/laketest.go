// Package laketest is the conformance suite of lake maintenance, run
// against every lakeedit.Store (the local directory, S3 through gofakes3):
// a generated lake, erasure requests checked with DuckDB, untouched files
// byte for byte, and duplicates compacted away.
package laketest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // DuckDB reads the lake, independently of parquet-go
	"github.com/parquet-go/parquet-go"

	"github.com/spate-dev/spate/internal/lakegen"
	"github.com/spate-dev/spate/lakeedit"
)

var genStart = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// scale returns the suite's size: rows and erasure requests, by default
// small enough for make test; SPATE_LAKE_ROWS and SPATE_LAKE_REQUESTS run
// the same checks at the size docs/benchmarks.md records.
func scale(t testing.TB, rows, reqs int) (int, int) {
	for _, v := range []struct {
		name string
		p    *int
	}{{"SPATE_LAKE_ROWS", &rows}, {"SPATE_LAKE_REQUESTS", &reqs}} {
		if s := os.Getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive number", v.name, s)
			}
			*v.p = n
		}
	}
	return rows, reqs
}

// fullScan reads every row of every Parquet file of st once, with
// parquet-go: the baseline lake maintenance is measured against.
func fullScan(t testing.TB, st lakeedit.Store) (time.Duration, int64) {
	t.Helper()
	ctx := context.Background()
	began := time.Now()
	var rows int64
	err := st.Walk(ctx, "", func(o lakeedit.Object) error {
		if o.Noncurrent || !strings.HasSuffix(o.Key, ".parquet") {
			return nil
		}
		f, err := st.Open(ctx, o)
		if err != nil {
			return err
		}
		defer f.Close()
		pf, err := parquet.OpenFile(f, f.Size())
		if err != nil {
			return err
		}
		buf := make([]parquet.Row, 256)
		for _, rg := range pf.RowGroups() {
			rr := rg.Rows()
			for {
				n, err := rr.ReadRows(buf)
				rows += int64(n)
				if err != nil {
					rr.Close()
					if !errors.Is(err, io.EOF) {
						return err
					}
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(began), rows
}

// Put copies the files under dir into st, keys relative to dir.
func Put(t testing.TB, st lakeedit.Store, dir string) {
	t.Helper()
	ctx := context.Background()
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return PutBytes(ctx, st, filepath.ToSlash(rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// PutBytes writes one object.
func PutBytes(ctx context.Context, st lakeedit.Store, key string, b []byte) error {
	up, err := st.Create(ctx, key)
	if err != nil {
		return err
	}
	defer up.Abort()
	if _, err := up.Write(b); err != nil {
		return err
	}
	_, err = up.Commit(ctx)
	return err
}

// Dump copies st's current objects into a new directory and returns it,
// for DuckDB to read, and the SHA-256 of each by key.
func Dump(t testing.TB, st lakeedit.Store) (string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	sums := map[string]string{}
	err := st.Walk(ctx, "", func(o lakeedit.Object) error {
		if o.Noncurrent {
			return nil
		}
		f, err := st.Open(ctx, o)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		sums[o.Key] = hex.EncodeToString(sum[:])
		p := filepath.Join(dir, filepath.FromSlash(o.Key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, sums
}

// DB opens an in-memory DuckDB.
func DB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Glob is every table's files under dir, for read_parquet.
func Glob(dir string) string { return filepath.Join(dir, "*", "dt=*", "hour=*", "*.parquet") }

// Rows are a lake's rows as DuckDB sees them: the count and an MD5 over
// the sorted event_ids, of the rows matching where (SQL over the union of
// all tables).
func Rows(t testing.TB, db *sql.DB, dir, where string) (int64, string) {
	t.Helper()
	var n int64
	var sum sql.NullString
	q := fmt.Sprintf(`SELECT count(*), md5(string_agg(event_id || '@' || epoch_ms(received_at), ',' ORDER BY event_id, received_at))
		FROM read_parquet('%s', union_by_name = true, filename = true) WHERE %s`, Glob(dir), where)
	if err := db.QueryRow(q).Scan(&n, &sum); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n, sum.String
}

// Files are the files holding rows that match where.
func Files(t testing.TB, db *sql.DB, dir, where string) []string {
	t.Helper()
	q := fmt.Sprintf(`SELECT DISTINCT filename FROM read_parquet('%s', union_by_name = true, filename = true) WHERE %s`, Glob(dir), where)
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		out = append(out, filepath.ToSlash(rel))
	}
	slices.Sort(out)
	return out
}

// Requests picks n erasure requests from the events of a lake generated
// with cfg: identifiers of events among the first tenth, mixing the three
// columns; and the SQL condition that matches their rows.
func Requests(cfg lakegen.Config, n int) ([]lakeedit.Request, string) {
	var reqs []lakeedit.Request
	seen := map[lakeedit.Request]bool{}
	var users, anons, sessions []string
	for i := 0; len(reqs) < n; i += 7 {
		e := lakegen.Event(cfg, i)
		var r lakeedit.Request
		switch {
		case len(reqs)%5 == 4 && e.SessionID != "":
			r = lakeedit.Request{Column: "session_id", Value: e.SessionID}
		case e.UserID != "":
			r = lakeedit.Request{Column: "user_id", Value: e.UserID}
		default:
			r = lakeedit.Request{Column: "anonymous_id", Value: e.AnonymousID}
		}
		if seen[r] {
			continue
		}
		seen[r] = true
		reqs = append(reqs, r)
		switch r.Column {
		case "user_id":
			users = append(users, "'"+r.Value+"'")
		case "anonymous_id":
			anons = append(anons, "'"+r.Value+"'")
		default:
			sessions = append(sessions, "'"+r.Value+"'")
		}
	}
	in := func(col string, vals []string) string {
		if len(vals) == 0 {
			return "false"
		}
		return fmt.Sprintf("coalesce(%s IN (%s), false)", col, strings.Join(vals, ","))
	}
	return reqs, "(" + in("user_id", users) + " OR " + in("anonymous_id", anons) + " OR " + in("session_id", sessions) + ")"
}

// Forget is the erasure suite: newStore returns an empty store.
func Forget(t *testing.T, newStore func(t *testing.T) lakeedit.Store) {
	ctx := context.Background()
	rows, nreq := scale(t, 30_000, 60)
	cfg := lakegen.Config{Dir: filepath.Join(t.TempDir(), "lake"), Rows: rows, Hours: 3, FilesPerHour: 4, Start: genStart}
	if _, err := lakegen.Generate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	Put(t, st, cfg.Dir)
	reqs, match := Requests(cfg, nreq)
	failed := failedArea(t, ctx, st, reqs)

	db := DB(t)
	before, sums := Dump(t, st)
	wantRemoved, _ := Rows(t, db, before, match)
	wantRows, wantSum := Rows(t, db, before, "NOT "+match)
	touched := Files(t, db, before, match)
	if wantRemoved == 0 || len(touched) == 0 || len(touched) == countParquet(sums) {
		t.Fatalf("bad fixture: %d rows to remove in %d of %d files", wantRemoved, len(touched), countParquet(sums))
	}

	t.Run("dry run", func(t *testing.T) {
		rep, err := lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{DryRun: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.RowsRemoved != wantRemoved || rep.FilesRewritten+rep.FilesDeleted != int64(len(touched)) {
			t.Errorf("dry run: %d rows in %d files, want %d in %d", rep.RowsRemoved, rep.FilesRewritten+rep.FilesDeleted, wantRemoved, len(touched))
		}
		if _, now := Dump(t, st); !mapsEqual(now, sums) {
			t.Error("dry run changed the lake")
		}
	})

	scanTook, scanned := fullScan(t, st)
	began := time.Now()
	rep, err := lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	t.Logf("forget: %d requests over %d rows in %d files: %d rows removed, %d files rewritten, %d deleted, %d untouched; %s, %.0f rows/s; full scan (baseline) %s, %.0f rows/s; forget/scan %.2f",
		len(reqs), rep.RowsScanned, rep.FilesScanned, rep.RowsRemoved, rep.FilesRewritten, rep.FilesDeleted, rep.FilesSkipped,
		took.Round(time.Millisecond), float64(rep.RowsScanned)/took.Seconds(), scanTook.Round(time.Millisecond), float64(scanned)/scanTook.Seconds(),
		took.Seconds()/scanTook.Seconds())
	after, afterSums := Dump(t, st)
	if n, _ := Rows(t, db, after, match); n != 0 {
		t.Errorf("DuckDB finds %d rows of the forgotten", n)
	}
	if n, sum := Rows(t, db, after, "true"); n != wantRows || sum != wantSum {
		t.Errorf("other rows: %d (checksum %s), want %d (%s)", n, sum, wantRows, wantSum)
	}
	for key, sum := range sums {
		if !strings.HasSuffix(key, ".parquet") || slices.Contains(touched, key) {
			continue
		}
		if afterSums[key] != sum {
			t.Errorf("%s had no match and changed", key)
		}
	}
	for _, key := range touched {
		if afterSums[key] == sums[key] {
			t.Errorf("%s had matches and is unchanged", key)
		}
	}
	if rep.RowsRemoved != wantRemoved || rep.FilesRewritten+rep.FilesDeleted != int64(len(touched)) ||
		rep.FilesScanned != int64(countParquet(sums)) || rep.FilesSkipped != rep.FilesScanned-int64(len(touched)) {
		t.Errorf("report: %+v; want %d rows removed from %d of %d files", rep, wantRemoved, len(touched), countParquet(sums))
	}
	var perReq int64
	for i, r := range rep.PerRequest {
		if r.ID != reqs[i].ID() || strings.Contains(r.ID, reqs[i].Value) {
			t.Fatalf("request %d reported as %q", i, r.ID)
		}
		perReq += r.Rows
	}
	if perReq < rep.RowsRemoved {
		t.Errorf("per-request rows sum to %d, below the %d removed", perReq, rep.RowsRemoved)
	}
	sameSettings(t, before, after, touched)
	failed.check(t, st, rep)

	// Idempotent: nothing left to find.
	rep2, err := lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.RowsRemoved != 0 || rep2.FilesRewritten != 0 || rep2.FilesDeleted != 0 || rep2.FailedRecordsRemoved != 0 {
		t.Errorf("second run changed something: %+v", rep2)
	}
	if _, again := Dump(t, st); !mapsEqual(again, afterSums) {
		t.Error("second run changed files")
	}
}

func countParquet(sums map[string]string) int {
	n := 0
	for k := range sums {
		if strings.HasSuffix(k, ".parquet") {
			n++
		}
	}
	return n
}

func mapsEqual(a, b map[string]string) bool {
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

// sameSettings checks that rewritten files keep the schema, per-column
// codecs and encodings, and row group layout of their originals.
func sameSettings(t *testing.T, before, after string, keys []string) {
	t.Helper()
	db := DB(t)
	q := `SELECT path_in_schema, compression, encodings, count(*) FROM parquet_metadata('%s') GROUP BY ALL ORDER BY ALL`
	sq := `SELECT name, type, converted_type, repetition_type FROM parquet_schema('%s') ORDER BY ALL`
	for _, key := range keys {
		a, b := filepath.Join(before, key), filepath.Join(after, key)
		if _, err := os.Stat(b); err != nil {
			continue // every row was forgotten: deleted
		}
		for _, query := range []string{q, sq} {
			if x, y := dumpQuery(t, db, fmt.Sprintf(query, a)), dumpQuery(t, db, fmt.Sprintf(query, b)); x != y {
				t.Errorf("%s: settings changed:\n%s\nnow\n%s", key, x, y)
			}
		}
	}
}

func dumpQuery(t *testing.T, db *sql.DB, q string) string {
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String()
}

// failedFixture is a failed-events area holding the first request's
// identifier: a local conversion error (the event as a line), a local dead
// letter (base64 "data") and a Firehose error record whose base64
// "rawData" packs a matching event with one that must stay.
type failedFixture struct {
	keys map[string]string // key -> what must remain, "" when nothing
}

func failedArea(t *testing.T, ctx context.Context, st lakeedit.Store, reqs []lakeedit.Request) failedFixture {
	r := reqs[0]
	hit := fmt.Sprintf(`{"type":"click","event_id":"e-1","%s":%q,"platform":"web","broken":}`, r.Column, r.Value)
	keep := `{"type":"click","event_id":"e-2","user_id":"someone-else","platform":"web"}`
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	fx := failedFixture{keys: map[string]string{
		"_errors/click/dt=2026-03-01/hour=10/click-1.json":                keep + "\n",
		"_dead_letter/dt=2026-03-01/hour=10/dead_letter-1.jsonl":          "",
		"errors/click/format-conversion-failed/dt=2026-03-01/hour=10/f-1": fmt.Sprintf(`{"attemptsMade":1,"errorCode":"DataFormatConversion.MalformedData","rawData":%q}`, b64(keep)) + "\n",
		// A dead letter's payload: a KPL-style binary frame around the event.
		"dead-letter/too_large/dt=2026-03-01/0a1b": "",
		"dead-letter/too_large/dt=2026-03-01/2c3d": "\xf3\x89\x9a\xc2\n\x04" + keep,
	}}
	content := map[string]string{
		"_errors/click/dt=2026-03-01/hour=10/click-1.json":                hit + "\n" + keep + "\n",
		"_dead_letter/dt=2026-03-01/hour=10/dead_letter-1.jsonl":          fmt.Sprintf(`{"reason":"undecodable","data":%q}`, b64(hit)) + "\n",
		"errors/click/format-conversion-failed/dt=2026-03-01/hour=10/f-1": fmt.Sprintf(`{"attemptsMade":1,"errorCode":"DataFormatConversion.MalformedData","rawData":%q}`, b64(hit+"\n"+keep)) + "\n",
		"dead-letter/too_large/dt=2026-03-01/0a1b":                        "\xf3\x89\x9a\xc2\n\x04" + hit + "\x1a\x00" + keep,
		"dead-letter/too_large/dt=2026-03-01/2c3d":                        "\xf3\x89\x9a\xc2\n\x04" + keep,
	}
	for k, v := range content {
		if err := PutBytes(ctx, st, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

func (fx failedFixture) check(t *testing.T, st lakeedit.Store, rep *lakeedit.ForgetReport) {
	t.Helper()
	dir, _ := Dump(t, st)
	for key, want := range fx.keys {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
		switch {
		case want == "" && err == nil:
			t.Errorf("%s: still there: %q", key, got)
		case want == "":
		case err != nil:
			t.Errorf("%s: %v", key, err)
		case strings.HasPrefix(key, "dead-letter/") && string(got) != want:
			t.Errorf("%s: %q, want it unchanged: %q", key, got, want)
		case !strings.HasPrefix(key, "dead-letter/") && !jsonLinesEqual(got, []byte(want)):
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if rep.FailedRecordsRemoved != 4 || rep.PerRequest[0].FailedRecords != 4 {
		t.Errorf("failed records removed %d (request %d), want 4", rep.FailedRecordsRemoved, rep.PerRequest[0].FailedRecords)
	}
}

// jsonLinesEqual compares line by line, ignoring key order in objects.
func jsonLinesEqual(a, b []byte) bool {
	return bytes.Equal(normLines(a), normLines(b))
}

func normLines(b []byte) []byte {
	var out [][]byte
	for line := range bytes.SplitSeq(bytes.TrimSpace(b), []byte{'\n'}) {
		out = append(out, canonJSON(line))
	}
	return bytes.Join(out, []byte{'\n'})
}

// Compact is the deduplication suite: newStore returns an empty store.
func Compact(t *testing.T, newStore func(t *testing.T) lakeedit.Store) {
	ctx := context.Background()
	rows, _ := scale(t, 20_000, 0)
	cfg := lakegen.Config{Dir: filepath.Join(t.TempDir(), "lake"), Rows: rows, Hours: 2, FilesPerHour: 5, DuplicateEvery: 7, Start: genStart}
	gen, err := lakegen.Generate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	Put(t, st, cfg.Dir)
	db := DB(t)
	before, sums := Dump(t, st)
	var distinct, dupRows int64
	q := fmt.Sprintf(`SELECT count(DISTINCT event_id), count(*) - count(DISTINCT event_id) FROM read_parquet('%s', union_by_name = true)`, Glob(before))
	if err := db.QueryRow(q).Scan(&distinct, &dupRows); err != nil {
		t.Fatal(err)
	}
	if dupRows != int64(gen.Duplicates) || dupRows == 0 {
		t.Fatalf("fixture: %d duplicate rows, generated %d", dupRows, gen.Duplicates)
	}
	// What must remain: per event_id its earliest copy.
	var wantSum string
	q = fmt.Sprintf(`SELECT md5(string_agg(event_id || '@' || epoch_ms(r), ',' ORDER BY event_id)) FROM
		(SELECT event_id, min(received_at) AS r FROM read_parquet('%s', union_by_name = true) GROUP BY event_id)`, Glob(before))
	if err := db.QueryRow(q).Scan(&wantSum); err != nil {
		t.Fatal(err)
	}
	now := cfg.Start.Add(24 * time.Hour)
	clock := func() time.Time { return now }

	dry, err := lakeedit.Compact(ctx, st, lakeedit.CompactConfig{DryRun: true, Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, s := Dump(t, st); !mapsEqual(s, sums) || dry.DuplicatesDropped != dupRows {
		t.Errorf("dry run: changed the lake, or %d duplicates found of %d", dry.DuplicatesDropped, dupRows)
	}

	scanTook, scanned := fullScan(t, st)
	began := time.Now()
	rep, err := lakeedit.Compact(ctx, st, lakeedit.CompactConfig{Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	t.Logf("compact: %d rows in %d files, %d partitions: %d duplicates dropped, %d files replaced by %d; %s, %.0f rows/s; full scan (baseline) %s, %.0f rows/s; compact/scan %.2f",
		rep.RowsScanned, rep.FilesScanned, rep.Partitions, rep.DuplicatesDropped, rep.FilesReplaced, rep.FilesWritten,
		took.Round(time.Millisecond), float64(rep.RowsScanned)/took.Seconds(), scanTook.Round(time.Millisecond), float64(scanned)/scanTook.Seconds(),
		took.Seconds()/scanTook.Seconds())
	after, afterSums := Dump(t, st)
	n, sum := Rows(t, db, after, "true")
	if n != distinct || sum != wantSum {
		t.Errorf("after compact: %d rows (checksum %s), want every event_id once: %d (%s)", n, sum, distinct, wantSum)
	}
	if rep.DuplicatesDropped != dupRows {
		t.Errorf("report: %d duplicates dropped, want %d", rep.DuplicatesDropped, dupRows)
	}
	// Same partitions, fewer files: one per type and hour at this size.
	parts := func(sums map[string]string) (map[string]int, int) {
		m, files := map[string]int{}, 0
		for k := range sums {
			if strings.HasSuffix(k, ".parquet") {
				m[filepath.Dir(k)]++
				files++
			}
		}
		return m, files
	}
	pb, fb := parts(sums)
	pa, fa := parts(afterSums)
	if len(pa) != len(pb) || fa != len(pa) || fb <= fa {
		t.Errorf("partitions %d → %d, files %d → %d; want the same partitions with one file each", len(pb), len(pa), fb, fa)
	}
	rep2, err := lakeedit.Compact(ctx, st, lakeedit.CompactConfig{Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, again := Dump(t, st); !mapsEqual(again, afterSums) || rep2.FilesReplaced != 0 {
		t.Errorf("second compact changed something: %+v", rep2)
	}
}
