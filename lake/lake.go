// Package lake writes spate's data lake on disk, in the layout Firehose
// writes to S3: <dir>/<type>/dt=YYYY-MM-DD/hour=HH/*.parquet, partitioned by
// arrival time (UTC) as Firehose does — a file lies in the hour its oldest
// event arrived — with the columns and Parquet types Firehose's format
// conversion produces from the registry's Glue schema. It is the local
// mode's delivery stream: it implements router.Destination, so locally the
// same router code feeds it that feeds Firehose in AWS.
//
// Arrival is when the lake receives an event from the router: locally,
// milliseconds after the in-process stream stamped it.
//
// Like Firehose it buffers each type's events and writes a file when the
// buffer reaches a size or an interval has passed; files appear atomically
// (written under a dot-name, then renamed), so readers never see a partial
// file. Records it cannot convert go to <dir>/_errors/<type>/…, as
// Firehose's error output prefix; dead-lettered stream records to
// <dir>/_dead_letter/….
package lake

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// Config holds the lake's knobs; zero values take the documented defaults.
type Config struct {
	// Dir is the lake's root, e.g. <data>/lake. Required.
	Dir string
	// FlushInterval is how long a file stays open after its first event
	// (default 60 s, Firehose's default buffer interval).
	FlushInterval time.Duration
	// FlushBytes closes a file once it holds this many bytes of event JSON
	// (default 64 MiB, Firehose's smallest buffer with format conversion).
	FlushBytes int64
	// RowGroupRows bounds a row group (default 131,072 rows); the writer
	// holds one row group per open file in memory.
	RowGroupRows int64
	// Now is the clock that decides partitions and flushes; nil is the wall
	// clock (internal/clock).
	Now func() time.Time
	// ManualFlush leaves finishing files to the owner (Seal and Publish,
	// see durable.go): no interval flusher, no flush by size inside
	// PutBatch. Local mode's durable log uses it to commit files and its
	// checkpoint together.
	ManualFlush bool
}

// Lake is the on-disk lake. It is safe for concurrent use.
type Lake struct {
	cfg    Config
	log    *slog.Logger
	tables map[string]*tableWriter // by type, fixed after Open
	closed atomic.Bool
	stop   chan struct{}
	done   chan struct{}
	dlMu   sync.Mutex
	stats  counters
}

var (
	_ router.Destination = (*Lake)(nil)
	_ router.DeadLetter  = (*Lake)(nil)
)

// tableWriter buffers one type's events into its open file.
type tableWriter struct {
	t  *table
	mu sync.Mutex
	// f is the open file, nil between files. Like a Firehose S3 object,
	// it lies in the partition of its first event's arrival.
	f      *file
	parser parser
	ev     event
	rows   []parquet.Row
}

type file struct {
	tmp, final string
	f          *os.File
	w          *parquet.GenericWriter[any]
	opened     time.Time
	bytes      int64
	rows       int64
}

// Open returns a lake writing under cfg.Dir with a table per registry type,
// and starts the flusher that Close stops.
func Open(reg *registry.Registry, cfg Config, log *slog.Logger) (*Lake, error) {
	if cfg.Dir == "" {
		return nil, errors.New("lake: Dir is required")
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 60 * time.Second
	}
	if cfg.FlushBytes <= 0 {
		cfg.FlushBytes = 64 << 20
	}
	if cfg.RowGroupRows <= 0 {
		cfg.RowGroupRows = 128 << 10
	}
	cfg.Now = clock.Or(cfg.Now)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lake open: %w", err)
	}
	l := &Lake{cfg: cfg, log: log, tables: map[string]*tableWriter{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, typ := range reg.Types() {
		s, _ := reg.Schema(typ)
		t, err := newTable(s)
		if err != nil {
			return nil, err
		}
		l.tables[s.Table] = &tableWriter{t: t}
	}
	if cfg.ManualFlush {
		close(l.done)
	} else {
		go l.flusher()
	}
	return l, nil
}

// Dir returns the lake's root directory.
func (l *Lake) Dir() string { return l.cfg.Dir }

// flusher closes files whose interval has passed, checking a few times per
// interval so a file is late by at most a quarter of it.
func (l *Lake) flusher() {
	defer close(l.done)
	tick := time.NewTicker(min(max(l.cfg.FlushInterval/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			if err := l.flushDue(l.cfg.Now()); err != nil {
				l.log.Error("lake: flush", "error", err)
			}
		}
	}
}

// PutBatch writes the events in records to stream's table; stream is an
// event type. Each record holds one or more JSON events, as the router
// packs them. Records that do not convert go to the error output and count
// as written, as Firehose does with format conversion failures.
func (l *Lake) PutBatch(ctx context.Context, stream string, records [][]byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lake put %s: %w", stream, err)
	}
	tw := l.tables[stream]
	if tw == nil {
		return fmt.Errorf("lake put %s: no such table (%w)", stream, router.ErrPermanent)
	}
	now := l.cfg.Now().UTC()

	tw.mu.Lock()
	defer tw.mu.Unlock()
	if l.closed.Load() {
		return fmt.Errorf("lake put %s: %w", stream, spate.ErrClosed)
	}
	var bad [][]byte
	f := tw.f
	for _, rec := range records {
		mark := len(tw.rows)
		if err := tw.parse(rec); err != nil {
			tw.rows = tw.rows[:mark]
			bad = append(bad, rec)
			continue
		}
		if len(tw.rows) == mark {
			continue
		}
		if f == nil {
			var err error
			if f, err = l.create(tw.t, now); err != nil {
				return err
			}
			tw.f = f
		}
		f.bytes += int64(len(rec))
		if len(tw.rows) >= 256 {
			if err := l.write(tw, f); err != nil {
				return err
			}
		}
	}
	if f != nil {
		if err := l.write(tw, f); err != nil {
			return err
		}
		if f.bytes >= l.cfg.FlushBytes && !l.cfg.ManualFlush {
			tw.f = nil
			if err := l.finish(f); err != nil {
				return fmt.Errorf("lake put %s: %w", stream, err)
			}
		}
	}
	if len(bad) > 0 {
		l.stats.conversionErrors.Add(int64(len(bad)))
		l.log.Warn("lake: records failed conversion", "type", stream, "records", len(bad))
		if err := l.writeErrors(stream, now, bad); err != nil {
			return fmt.Errorf("lake put %s: %w", stream, err)
		}
	}
	return nil
}

// parse appends rows for every event in rec.
func (tw *tableWriter) parse(rec []byte) error {
	for {
		s := scan{b: rec}
		s.ws()
		rec = rec[s.i:]
		if len(rec) == 0 {
			return nil
		}
		n, err := tw.parser.next(rec, &tw.ev)
		if err != nil {
			return err
		}
		rec = rec[n:]
		i := len(tw.rows)
		if i < cap(tw.rows) {
			tw.rows = tw.rows[:i+1]
		} else {
			tw.rows = append(tw.rows, nil)
		}
		row, err := tw.t.row(tw.rows[i][:0], &tw.ev)
		if err != nil {
			tw.rows = tw.rows[:i]
			return err
		}
		tw.rows[i] = row
	}
}

// write hands the buffered rows to f's writer and frees the parser's
// scratch space, which the rows pointed into.
func (l *Lake) write(tw *tableWriter, f *file) error {
	if len(tw.rows) == 0 {
		return nil
	}
	n, err := f.w.WriteRows(tw.rows)
	f.rows += int64(n)
	l.stats.rows.Add(int64(n))
	tw.rows = tw.rows[:0]
	tw.parser.reset()
	if err != nil {
		return fmt.Errorf("lake write %s: %w", f.tmp, err)
	}
	return nil
}

func partitionDir(dir, typ string, hour time.Time) string {
	return filepath.Join(dir, typ, "dt="+hour.Format("2006-01-02"), "hour="+hour.Format("15"))
}

func fileName(prefix string, at time.Time, ext string) string {
	return fmt.Sprintf("%s-%s-%s%s", prefix, at.Format("20060102T150405Z"), strings.ToLower(rand.Text()[:10]), ext)
}

func (l *Lake) create(t *table, now time.Time) (*file, error) {
	dir := partitionDir(l.cfg.Dir, t.typ, now.Truncate(time.Hour))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lake create: %w", err)
	}
	name := fileName(t.typ, now, ".parquet")
	f := &file{final: filepath.Join(dir, name), tmp: filepath.Join(dir, "."+name+".tmp"), opened: now}
	var err error
	if f.f, err = os.Create(f.tmp); err != nil {
		return nil, fmt.Errorf("lake create: %w", err)
	}
	f.w = parquet.NewGenericWriter[any](f.f, t.schema,
		parquet.Compression(&parquet.Snappy),
		parquet.DataPageVersion(1),
		parquet.MaxRowsPerRowGroup(l.cfg.RowGroupRows),
		parquet.CreatedBy("spate", "1", ""),
	)
	return f, nil
}

// finish closes f's writer, syncs it and renames it into place.
func (l *Lake) finish(f *file) error {
	err := f.w.Close()
	if err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.tmp, f.final)
	}
	if err != nil {
		_ = os.Remove(f.tmp)
		l.log.Error("lake: file lost", "rows", f.rows, "error", err)
		return fmt.Errorf("lake finish %s: %w", f.final, err)
	}
	if st, err := os.Stat(f.final); err == nil {
		l.stats.fileBytes.Add(st.Size())
	}
	l.stats.files.Add(1)
	l.stats.bytes.Add(f.bytes)
	l.log.Debug("lake: file written", "path", f.final, "rows", f.rows)
	return nil
}

// flushDue finishes the files opened FlushInterval or more before now.
func (l *Lake) flushDue(now time.Time) error {
	var errs []error
	for _, tw := range l.tables {
		tw.mu.Lock()
		if f := tw.f; f != nil && now.Sub(f.opened) >= l.cfg.FlushInterval {
			tw.f = nil
			errs = append(errs, l.finish(f))
		}
		tw.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Flush finishes every open file now.
func (l *Lake) Flush(ctx context.Context) error {
	var errs []error
	for _, tw := range l.tables {
		tw.mu.Lock()
		if f := tw.f; f != nil {
			tw.f = nil
			errs = append(errs, l.finish(f))
		}
		tw.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Close stops the flusher and finishes every open file; later puts fail
// with spate.ErrClosed.
func (l *Lake) Close(ctx context.Context) error {
	if l.closed.Swap(true) {
		return nil
	}
	close(l.stop)
	<-l.done
	if l.cfg.ManualFlush {
		l.abandon()
		return nil
	}
	return l.Flush(ctx)
}

// writeAtomic writes content to dir/name via a dot-file and a rename.
func writeAtomic(dir, name string, content []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	// Synced before and after the rename: the caller acknowledges the
	// records it holds as done.
	if err := writeSynced(tmp, content); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// writeErrors keeps records that failed conversion, newline-terminated, as
// Firehose's error output does.
func (l *Lake) writeErrors(typ string, now time.Time, recs [][]byte) error {
	var b []byte
	for _, r := range recs {
		b = append(b, r...)
		if len(r) == 0 || r[len(r)-1] != '\n' {
			b = append(b, '\n')
		}
	}
	hour := now.Truncate(time.Hour)
	return writeAtomic(partitionDir(filepath.Join(l.cfg.Dir, "_errors"), typ, hour), fileName(typ, now, ".json"), b)
}

// deadLetter is one line of a dead-letter file.
type deadLetter struct {
	Reason         string `json:"reason"`
	ShardID        string `json:"shard_id,omitempty"`
	SequenceNumber string `json:"sequence_number,omitempty"`
	PartitionKey   string `json:"partition_key,omitempty"`
	ArrivedAt      string `json:"arrived_at,omitempty"`
	Data           []byte `json:"data"` // base64
}

var _ spate.ReasonPutter = (*Lake)(nil)

// PutReason keeps stream records the router cannot route, one JSON line
// each, under <dir>/_dead_letter/dt=…/hour=…/.
func (l *Lake) PutReason(ctx context.Context, recs []spate.Record, reason string) error {
	if len(recs) == 0 {
		return nil
	}
	var b []byte
	for _, r := range recs {
		dl := deadLetter{Reason: reason, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, PartitionKey: r.PartitionKey, Data: r.Data}
		if !r.ArrivedAt.IsZero() {
			dl.ArrivedAt = r.ArrivedAt.UTC().Format(spate.TimeLayout)
		}
		line, err := json.Marshal(dl)
		if err != nil {
			return fmt.Errorf("lake dead letter: %w", err)
		}
		b = append(append(b, line...), '\n')
	}
	now := l.cfg.Now().UTC()
	l.dlMu.Lock()
	defer l.dlMu.Unlock()
	dir := filepath.Join(l.cfg.Dir, "_dead_letter", "dt="+now.Format("2006-01-02"), "hour="+now.Format("15"))
	if err := writeAtomic(dir, fileName("dead_letter", now, ".jsonl"), b); err != nil {
		return fmt.Errorf("lake dead letter: %w", err)
	}
	l.stats.deadLettered.Add(int64(len(recs)))
	return nil
}

// Stats is a snapshot of the lake's counters.
type Stats struct {
	Rows             int64 // events written to open or finished files
	Files            int64 // files finished
	Bytes            int64 // event JSON bytes in finished files
	FileBytes        int64 // Parquet bytes of finished files
	ConversionErrors int64 // records sent to the error output
	DeadLettered     int64 // stream records kept as dead letters
}

type counters struct {
	rows, files, bytes, fileBytes, conversionErrors, deadLettered atomic.Int64
}

// Stats returns the counters now.
func (l *Lake) Stats() Stats {
	c := &l.stats
	return Stats{Rows: c.rows.Load(), Files: c.files.Load(), Bytes: c.bytes.Load(), FileBytes: c.fileBytes.Load(),
		ConversionErrors: c.conversionErrors.Load(), DeadLettered: c.deadLettered.Load()}
}
