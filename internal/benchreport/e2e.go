package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// lakeCount is what DuckDB finds in the lake for a run's acknowledged ids.
type lakeCount struct {
	Rows, Files            int64
	Acked, AckedDistinct   int64
	Once, Missing, Dupes   int64 // acknowledged ids found once, not at all, more than once
	ServerRows, ServerDist int64 // rows whose id the server assigned (UUIDv7), and distinct ones
	Unacked                int64 // client-id rows (v4) that were not acknowledged
	ByType                 [][2]string
	ErrorFiles, DeadFiles  int
}

// countLake reads every Parquet file of the lake with DuckDB and matches
// its event_ids against the acknowledged ones in idsFile.
func countLake(ctx context.Context, lakeDir, idsFile string) (*lakeCount, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	c := &lakeCount{}
	files, _ := filepath.Glob(filepath.Join(lakeDir, "*", "dt=*", "hour=*", "*.parquet"))
	c.Files = int64(len(files))
	for _, special := range []struct {
		dir string
		n   *int
	}{{"_errors", &c.ErrorFiles}, {"_dead_letter", &c.DeadFiles}} {
		_ = filepath.WalkDir(filepath.Join(lakeDir, special.dir), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				*special.n++
			}
			return nil
		})
	}
	if c.Files == 0 {
		return c, fmt.Errorf("no Parquet files under %s", lakeDir)
	}
	glob := filepath.Join(lakeDir, "[!_]*", "dt=*", "hour=*", "*.parquet")
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE lake AS SELECT type, event_id FROM read_parquet('%s', union_by_name = true, hive_partitioning = false)`, glob),
		fmt.Sprintf(`CREATE TABLE acked AS SELECT event_id FROM read_csv('%s', header = false, columns = {'event_id': 'VARCHAR'})`, idsFile),
		`CREATE TABLE seen AS SELECT event_id, count(*) AS n FROM lake GROUP BY event_id`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("duckdb: %s: %w", s, err)
		}
	}
	for _, q := range []struct {
		sql string
		dst []any
	}{
		{`SELECT count(*) FROM lake`, []any{&c.Rows}},
		{`SELECT count(*), count(DISTINCT event_id) FROM acked`, []any{&c.Acked, &c.AckedDistinct}},
		{`SELECT count(*) FILTER (WHERE s.n = 1), count(*) FILTER (WHERE s.n IS NULL), count(*) FILTER (WHERE s.n > 1)
		  FROM (SELECT DISTINCT event_id FROM acked) a LEFT JOIN seen s USING (event_id)`, []any{&c.Once, &c.Missing, &c.Dupes}},
		// ingest assigns UUIDv7 ids; clients here send v4 ones.
		{`SELECT count(*), count(DISTINCT event_id) FROM lake WHERE substr(event_id, 15, 1) = '7'`, []any{&c.ServerRows, &c.ServerDist}},
		{`SELECT count(*) FROM lake l WHERE substr(event_id, 15, 1) <> '7' AND NOT EXISTS (SELECT 1 FROM acked a WHERE a.event_id = l.event_id)`, []any{&c.Unacked}},
	} {
		if err := db.QueryRowContext(ctx, q.sql).Scan(q.dst...); err != nil {
			return nil, fmt.Errorf("duckdb: %s: %w", q.sql, err)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT type, count(*) FROM lake GROUP BY type ORDER BY type`)
	if err != nil {
		return nil, fmt.Errorf("duckdb: rows by type: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var n int64
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, err
		}
		c.ByType = append(c.ByType, [2]string{typ, num(float64(n), 0)})
	}
	return c, rows.Err()
}

// e2eSection runs loadgen → spate local → lake, stops spate local with
// SIGTERM, and counts every acknowledged event in the lake.
func (r *run) e2eSection(ctx context.Context, p httpPlan, rate float64) (section, error) {
	data := filepath.Join(r.tmp, "e2e-data")
	ids := filepath.Join(r.tmp, "e2e-ids.txt")
	local, err := r.start(ctx, "spate-local-e2e", r.spateBin, "local", "--addr", "ADDR", "--data", data, "--flush-interval", p.FlushInterval.String())
	if err != nil {
		return section{}, err
	}
	lr, err := r.loadgen(ctx, local, "steady", "--scenario", "steady", "--rate", fmtRate(rate), "--duration", p.E2E.String(), "--p99", ms(p.TargetP99), "--ids", ids, "--seed", "2")
	if err != nil {
		local.kill()
		return section{}, err
	}
	stopAt := time.Now()
	if err := local.stop(90 * time.Second); err != nil {
		return section{}, err
	}
	stopTook := time.Since(stopAt)
	c, err := countLake(ctx, filepath.Join(data, "lake"), ids)
	if err != nil {
		return section{}, err
	}
	res := lr.res
	ok := c.Missing == 0 && c.Dupes == 0 && c.Acked == res.IDs && c.Once == c.AckedDistinct && c.AckedDistinct == c.Acked &&
		c.ServerRows == res.Events.ServerIDs && c.ServerDist == c.ServerRows && c.Rows == res.Events.Accepted+c.Unacked && c.ErrorFiles == 0 && c.DeadFiles == 0

	var b strings.Builder
	b.WriteString("```\n")
	fmt.Fprintf(&b, "spate local --addr 127.0.0.1:PORT --data TMP --flush-interval %s\n%s\nkill -TERM <spate local>   # drains ingest, the stream, the router, then flushes the lake\n", p.FlushInterval, strings.Replace(lr.cmdline, ids, "ids.txt", 1))
	b.WriteString("```\n\n")
	fmt.Fprintf(&b, "loadgen writes the `event_id` of every event it got a 202 for; ingest assigns a UUIDv7 to events sent without one, and those are counted instead. After SIGTERM (spate local exited cleanly in %.1f s), DuckDB (`github.com/duckdb/duckdb-go/v2`) reads every Parquet file of the lake (`%s` files) and matches ids.\n\n", stopTook.Seconds(), num(float64(c.Files), 0))
	rows := [][]string{
		{"requests due / answered 202", num(float64(res.Requests.Scheduled), 0) + " / " + num(float64(res.Status["202"]), 0)},
		{"requests not answered 202", notAccepted(res)},
		{"events acknowledged (202)", num(float64(res.Events.Accepted), 0)},
		{"… with the client's event_id (written to the ids file)", num(float64(res.IDs), 0)},
		{"… with a server-assigned id", num(float64(res.Events.ServerIDs), 0)},
		{"rows in the lake", num(float64(c.Rows), 0)},
		{"acknowledged ids found exactly once", num(float64(c.Once), 0) + " of " + num(float64(c.AckedDistinct), 0)},
		{"acknowledged ids missing", num(float64(c.Missing), 0)},
		{"acknowledged ids duplicated", num(float64(c.Dupes), 0)},
		{"rows with a server-assigned id (distinct)", num(float64(c.ServerRows), 0) + " (" + num(float64(c.ServerDist), 0) + ")"},
		{"rows with a client id that was not acknowledged", num(float64(c.Unacked), 0)},
		{"files in _errors / _dead_letter", fmt.Sprintf("%d / %d", c.ErrorFiles, c.DeadFiles)},
	}
	b.WriteString(table([]string{"", "count"}, rows))
	var types []string
	for _, t := range c.ByType {
		types = append(types, "`"+t[0]+"` "+t[1])
	}
	fmt.Fprintf(&b, "\nRows by type: %s.\n\n", strings.Join(types, ", "))
	fmt.Fprintf(&b, "Offered %s requests/s for %s: %s events/s acknowledged, p99 %s ms.\n\n", fmtRate(rate), p.E2E, num(res.EventsPerSec, 0), num(res.Latency.P99, 1))
	if ok {
		b.WriteString("**Result: every acknowledged event is in the lake exactly once**, and nothing else is.\n")
	} else {
		b.WriteString("**Result: MISMATCH.** The counts above do not reconcile; see the table.\n")
	}
	sec := section{name: "e2e", title: "## End to end: loadgen → spate local → lake", body: b.String()}
	if !ok {
		return sec, fmt.Errorf("end-to-end count does not reconcile: %+v, loadgen %+v", c, res.Events)
	}
	return sec, nil
}
