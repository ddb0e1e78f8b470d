package lakeedit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/spate-dev/spate/internal/clock"
)

// DefaultIdentifiers are the columns that identify a person in every
// table. It is the one list of them until the registry's schemas annotate
// personal identifiers (issue 12); then the caller passes those instead.
func DefaultIdentifiers() []string { return []string{"user_id", "anonymous_id", "session_id"} }

// Request asks that every row whose Column holds Value be erased.
type Request struct {
	Column, Value string
}

// ID names the request in reports and logs without the identifier: the
// first 16 hex digits of SHA-256 over "column:value". Whoever holds the
// request file can recompute it; the report alone does not reveal whom it
// is about, short of guessing identifiers and hashing them.
func (r Request) ID() string {
	sum := sha256.Sum256([]byte(r.Column + ":" + r.Value))
	return hex.EncodeToString(sum[:8])
}

// ParseRequests reads requests, one per line as column:value, where column
// is one of columns; blank lines and lines starting with # are skipped and
// repeated requests are kept once. Errors name the line, never its value.
func ParseRequests(r io.Reader, columns []string) ([]Request, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	seen := map[Request]bool{}
	var out []Request
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		col, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("requests line %d: want column:value", n)
		}
		if !slices.Contains(columns, col) {
			return nil, fmt.Errorf("requests line %d: column %q is not an identifier (%s)", n, col, strings.Join(columns, ", "))
		}
		if val == "" {
			return nil, fmt.Errorf("requests line %d: empty %s", n, col)
		}
		req := Request{col, val}
		if !seen[req] {
			seen[req] = true
			out = append(out, req)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("requests: %w", err)
	}
	return out, nil
}

// ForgetConfig holds Forget's knobs; zero values take the defaults.
type ForgetConfig struct {
	// Identifiers are the columns requests may name (default
	// DefaultIdentifiers).
	Identifiers []string
	// DryRun finds and counts, and changes nothing.
	DryRun bool
	// Parallel is how many files are read at once (default 4).
	Parallel int
	// Now is the clock of the report (nil: the wall clock, internal/clock).
	Now func() time.Time
}

// ForgetReport says what a Forget run found and did. It names requests by
// Request.ID and files by key, never by identifier.
type ForgetReport struct {
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DryRun     bool      `json:"dry_run"`
	Requests   int       `json:"requests"`
	// Parquet files: read (identifier columns only), without a match,
	// rewritten without the matching rows, deleted (every row matched).
	FilesScanned   int64 `json:"files_scanned"`
	FilesSkipped   int64 `json:"files_skipped"`
	FilesRewritten int64 `json:"files_rewritten"`
	FilesDeleted   int64 `json:"files_deleted"`
	RowsScanned    int64 `json:"rows_scanned"`
	RowsRemoved    int64 `json:"rows_removed"`
	// The failed-events areas (conversion errors, dead letters): files read
	// whole, files rewritten or deleted, records removed.
	FailedFilesScanned   int64 `json:"failed_files_scanned"`
	FailedFilesRewritten int64 `json:"failed_files_rewritten"`
	FailedRecordsRemoved int64 `json:"failed_records_removed"`
	// Noncurrent versions of a versioned bucket: read, and deleted for
	// good because they held a match.
	NoncurrentScanned int64 `json:"noncurrent_versions_scanned"`
	NoncurrentDeleted int64 `json:"noncurrent_versions_deleted"`
	// PerRequest is in the order of the requests.
	PerRequest []RequestResult `json:"per_request"`
	// Errors are files that could not be read or rewritten: key and error.
	Errors []string `json:"errors,omitempty"`
}

// RequestResult is one request's share of a run.
type RequestResult struct {
	ID                 string `json:"id"`
	Rows               int64  `json:"rows_removed"`
	FailedRecords      int64  `json:"failed_records_removed"`
	NoncurrentVersions int64  `json:"noncurrent_versions_deleted"`
}

// Areas of the lake that hold events as they failed: one JSON record per
// line in the local lake's conversion errors and dead letters and in the
// error output Firehose writes in S3; one raw stream record per object
// under deadLetterPrefix.
var failedPrefixes = []string{"_errors/", "_dead_letter/", "errors/", deadLetterPrefix}

// failedPayloadColumn is the failed-events table's raw payload (failed.Keeper).
const failedPayloadColumn = "payload"

// deadLetterPrefix holds, in the lake bucket, the payloads of dead letters
// too big for their queue (sqs.DeadLetterPrefix): a stream record's data
// as it was, an event's JSON or a KPL aggregate of several.
const deadLetterPrefix = "dead-letter/"

func isFailed(key string) bool {
	for _, p := range failedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// ErrIncomplete is returned when some files could not be processed; the
// report lists them, and running again retries them.
var ErrIncomplete = errors.New("some files were not processed")

type forgetter struct {
	st     Store
	cfg    ForgetConfig
	log    *slog.Logger
	byCol  map[string]map[string]int // column -> value -> request index
	values map[string][]int          // value -> request indices, any column
	cols   []string

	mu  sync.Mutex
	rep *ForgetReport
	per []perRequest
}

type perRequest struct {
	rows, failed, noncurrent atomic.Int64
}

// Forget removes the rows matching reqs from every Parquet file of every
// table in st, and the matching records from the failed-events areas. It
// reads only the identifier columns of each file, rewrites only the files
// with a match (atomically, see Store), and for a versioned store deletes
// the version it replaced and every noncurrent version with a match, so
// no copy waits for lifecycle expiry. It is idempotent: a second run over
// the same requests finds nothing.
func Forget(ctx context.Context, st Store, reqs []Request, cfg ForgetConfig, log *slog.Logger) (*ForgetReport, error) {
	if len(cfg.Identifiers) == 0 {
		cfg.Identifiers = DefaultIdentifiers()
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	cfg.Now = clock.Or(cfg.Now)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fg := &forgetter{st: st, cfg: cfg, log: log, byCol: map[string]map[string]int{}, values: map[string][]int{},
		rep: &ForgetReport{StartedAt: cfg.Now().UTC(), DryRun: cfg.DryRun, Requests: len(reqs)}, per: make([]perRequest, len(reqs))}
	for i, r := range reqs {
		if !slices.Contains(cfg.Identifiers, r.Column) {
			return nil, fmt.Errorf("forget: request %s: column %q is not an identifier", r.ID(), r.Column)
		}
		m := fg.byCol[r.Column]
		if m == nil {
			m = map[string]int{}
			fg.byCol[r.Column] = m
			fg.cols = append(fg.cols, r.Column)
		}
		if _, dup := m[r.Value]; !dup {
			m[r.Value] = i
			fg.values[r.Value] = append(fg.values[r.Value], i)
		}
	}
	log.Info("forget: started", "requests", len(reqs), "dry_run", cfg.DryRun)

	// A key's versions go to one worker together, current first, so that
	// when the current one goes, its older ones go too.
	work := make(chan []Object)
	var wg sync.WaitGroup
	for range cfg.Parallel {
		wg.Go(func() {
			for g := range work {
				fg.key(ctx, g)
			}
		})
	}
	var group []Object
	send := func() error {
		if len(group) == 0 {
			return nil
		}
		select {
		case work <- group:
			group = nil
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var walkErr error
	if len(reqs) > 0 { // nothing to find: no need to list the lake
		walkErr = st.Walk(ctx, "", func(o Object) error {
			if len(group) > 0 && group[0].Key != o.Key {
				if err := send(); err != nil {
					return err
				}
			}
			group = append(group, o)
			return nil
		})
	}
	if walkErr == nil {
		walkErr = send()
	}
	close(work)
	wg.Wait()

	rep := fg.rep
	rep.FinishedAt = cfg.Now().UTC()
	rep.PerRequest = make([]RequestResult, len(reqs))
	for i, r := range reqs {
		p := &fg.per[i]
		rep.PerRequest[i] = RequestResult{ID: r.ID(), Rows: p.rows.Load(), FailedRecords: p.failed.Load(), NoncurrentVersions: p.noncurrent.Load()}
	}
	slices.Sort(rep.Errors)
	log.Info("forget: done", "files_scanned", rep.FilesScanned, "files_rewritten", rep.FilesRewritten,
		"files_deleted", rep.FilesDeleted, "rows_removed", rep.RowsRemoved, "failed_records_removed", rep.FailedRecordsRemoved,
		"noncurrent_versions_deleted", rep.NoncurrentDeleted, "errors", len(rep.Errors), "dry_run", cfg.DryRun)
	if walkErr != nil {
		return rep, fmt.Errorf("forget: %w", walkErr)
	}
	if len(rep.Errors) > 0 {
		return rep, fmt.Errorf("forget: %d files: %w", len(rep.Errors), ErrIncomplete)
	}
	return rep, nil
}

func (fg *forgetter) fail(o Object, err error) {
	fg.log.Error("forget: file not processed", "key", o.Key, "version", o.Version, "error", err)
	fg.mu.Lock()
	fg.rep.Errors = append(fg.rep.Errors, o.Key+": "+err.Error())
	fg.mu.Unlock()
}

func (fg *forgetter) add(f func(r *ForgetReport)) {
	fg.mu.Lock()
	f(fg.rep)
	fg.mu.Unlock()
}

// key handles the versions of one key, the current one (if any) first.
func (fg *forgetter) key(ctx context.Context, versions []Object) {
	slices.SortStableFunc(versions, func(a, b Object) int {
		switch {
		case a.Noncurrent == b.Noncurrent:
			return 0
		case b.Noncurrent:
			return -1
		}
		return 1
	})
	for i, o := range versions {
		gone, err := fg.object(ctx, o)
		if err != nil {
			fg.fail(o, err)
			continue
		}
		if !gone || o.Noncurrent {
			continue
		}
		// Every row of the current version was erased and it is deleted:
		// delete the older versions too, or the newest of them would
		// become current again.
		for _, old := range versions[i+1:] {
			if !fg.cfg.DryRun {
				if err := fg.st.Delete(ctx, old); err != nil {
					fg.fail(old, err)
					continue
				}
			}
			fg.add(func(r *ForgetReport) { r.NoncurrentScanned++; r.NoncurrentDeleted++ })
		}
		return
	}
}

// object handles one version; gone reports that it was deleted whole.
func (fg *forgetter) object(ctx context.Context, o Object) (gone bool, err error) {
	switch {
	case strings.HasPrefix(o.Key, deadLetterPrefix):
		return fg.payloadFile(ctx, o)
	case isFailed(o.Key):
		return fg.failedFile(ctx, o)
	case strings.HasSuffix(o.Key, ".parquet"):
		return fg.parquetFile(ctx, o)
	}
	return false, nil // reports, markers: no events
}

// parquetFile finds the rows of o matching a request and, unless dry,
// rewrites o without them.
func (fg *forgetter) parquetFile(ctx context.Context, o Object) (bool, error) {
	pf, f, err := openParquet(ctx, fg.st, o)
	if err != nil {
		return false, err
	}
	defer f.Close()
	type colRef struct {
		leaf int
		m    map[string]int
	}
	var cols []colRef
	for _, c := range fg.cols {
		if leaf := leafIndex(pf.Schema(), c); leaf >= 0 {
			cols = append(cols, colRef{leaf, fg.byCol[c]})
		}
	}
	// The failed-events table keeps what a client sent in payload; its
	// identifier columns are empty when the payload was truncated, not
	// JSON, or held an identifier of the wrong type, so the payload's
	// strings are searched as the other failed areas' records are.
	payload := leafIndex(pf.Schema(), failedPayloadColumn)
	rgs := pf.RowGroups()
	marks := make([]bitset, len(rgs))
	hits := map[int]int64{} // request -> rows
	var matched int64
	mark := func(g int, rg parquet.RowGroup, row, req int) {
		if marks[g] == nil {
			marks[g] = newBitset(rg.NumRows())
		}
		if !marks[g].has(row) {
			marks[g].set(row)
			matched++
		}
		hits[req]++
	}
	for g, rg := range rgs {
		if payload >= 0 {
			err := scanColumn(rg, payload, func(row int, v parquet.Value) {
				if v.IsNull() {
					return
				}
				for _, req := range fg.matchStrings(v.ByteArray(), false) {
					mark(g, rg, row, req)
				}
			})
			if err != nil {
				return false, fmt.Errorf("read %s: %w", o.Key, err)
			}
		}
		for _, c := range cols {
			err := scanColumn(rg, c.leaf, func(row int, v parquet.Value) {
				if v.IsNull() {
					return
				}
				if req, ok := c.m[string(v.ByteArray())]; ok {
					mark(g, rg, row, req)
				}
			})
			if err != nil {
				return false, fmt.Errorf("read %s: %w", o.Key, err)
			}
		}
	}
	rows := pf.NumRows()
	if o.Noncurrent {
		fg.add(func(r *ForgetReport) { r.NoncurrentScanned++ })
		if matched == 0 {
			return false, nil
		}
		if !fg.cfg.DryRun {
			if err := fg.st.Delete(ctx, o); err != nil {
				return false, err
			}
		}
		for req := range hits {
			fg.per[req].noncurrent.Add(1)
		}
		fg.add(func(r *ForgetReport) { r.NoncurrentDeleted++ })
		return true, nil
	}
	fg.add(func(r *ForgetReport) { r.FilesScanned++; r.RowsScanned += rows })
	if matched == 0 {
		fg.add(func(r *ForgetReport) { r.FilesSkipped++ })
		return false, nil
	}
	deleted := matched == rows
	if !fg.cfg.DryRun {
		if deleted {
			err = fg.st.Delete(ctx, o)
		} else {
			err = fg.rewriteParquet(ctx, o, pf, marks)
		}
		if err != nil {
			return false, err
		}
	}
	for req, n := range hits {
		fg.per[req].rows.Add(n)
	}
	fg.add(func(r *ForgetReport) {
		r.RowsRemoved += matched
		if deleted {
			r.FilesDeleted++
		} else {
			r.FilesRewritten++
		}
	})
	fg.log.Debug("forget: file rewritten", "key", o.Key, "rows", rows, "removed", matched, "dry_run", fg.cfg.DryRun)
	return deleted, nil
}

// rewriteParquet writes o again, in place, without the marked rows, row
// group by row group.
func (fg *forgetter) rewriteParquet(ctx context.Context, o Object, pf *parquet.File, marks []bitset) error {
	up, err := fg.st.Create(ctx, o.Key)
	if err != nil {
		return err
	}
	defer up.Abort()
	w := writerFor(up, fileSchema(pf), fileKV(pf), maxRowGroupRows(pf))
	for g, rg := range pf.RowGroups() {
		m := marks[g]
		n, err := copyRows(w, rg, func(row int, _ parquet.Row) bool { return m == nil || !m.has(row) })
		if err != nil {
			return fmt.Errorf("rewrite %s: %w", o.Key, err)
		}
		if n > 0 {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("rewrite %s: %w", o.Key, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("rewrite %s: %w", o.Key, err)
	}
	if _, err := up.Commit(ctx); err != nil {
		return err
	}
	return fg.dropReplaced(ctx, o)
}

// dropReplaced deletes, in a versioned store, the version a rewrite has
// just made noncurrent: it still holds the erased rows.
func (fg *forgetter) dropReplaced(ctx context.Context, o Object) error {
	if o.Version == "" {
		return nil
	}
	o.Noncurrent = true
	if err := fg.st.Delete(ctx, o); err != nil {
		return fmt.Errorf("delete replaced version of %s: %w", o.Key, err)
	}
	return nil
}
