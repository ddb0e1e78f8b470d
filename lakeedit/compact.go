package lakeedit

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"path"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/spate-dev/spate/internal/clock"
)

// CompactConfig holds Compact's knobs; zero values take the defaults.
type CompactConfig struct {
	// Partitions limits the run to these, as type/dt=YYYY-MM-DD/hour=HH;
	// empty means every partition that has settled.
	Partitions []string
	// TargetSize is the size merged files aim for (default 128 MiB).
	// Files under half of it are small: two or more small files of a
	// partition are merged.
	TargetSize int64
	// Settle skips, when Partitions is empty, the partitions whose hour
	// ended less than this long ago (default 2 h): Firehose may still be
	// writing them (its buffer interval is at most 15 minutes). Negative:
	// none are skipped, the current hour's included.
	Settle time.Duration
	// Lookback is how many hours before a partition are searched for
	// copies of its events (default 1; negative: none). A file lies in the
	// hour its oldest event arrived, so a file opened at 10:59 holds
	// events of 11:00 whose redelivered copies land in hour 11. Across
	// partitions the copy in the earlier partition is kept.
	Lookback int
	// DryRun reports what would change and changes nothing.
	DryRun bool
	// Now is the clock that decides which partitions have settled (nil: the
	// wall clock, internal/clock).
	Now func() time.Time
}

// CompactReport says what a Compact run found and did.
type CompactReport struct {
	StartedAt           time.Time `json:"started_at"`
	FinishedAt          time.Time `json:"finished_at"`
	DryRun              bool      `json:"dry_run"`
	Partitions          int64     `json:"partitions"`
	PartitionsCompacted int64     `json:"partitions_compacted"`
	FilesScanned        int64     `json:"files_scanned"`
	FilesReplaced       int64     `json:"files_replaced"`
	FilesWritten        int64     `json:"files_written"`
	RowsScanned         int64     `json:"rows_scanned"`
	DuplicatesDropped   int64     `json:"duplicates_dropped"`
	BytesReplaced       int64     `json:"bytes_replaced"`
	BytesWritten        int64     `json:"bytes_written"`
	// PartitionsUnsettled were skipped as too recent (see Settle).
	PartitionsUnsettled int64    `json:"partitions_unsettled"`
	Errors              []string `json:"errors,omitempty"`
}

// Compact merges each partition's small files into files of about
// TargetSize and drops rows whose event_id an earlier row of the partition
// already holds, keeping the earliest received_at (the first seen on a
// tie; rows without an event_id are all kept). Files that are neither
// small nor hold a duplicate are left as they are. The merged files are
// written in full first, then the files they replace are deleted: a crash
// in between leaves both copies — duplicates by event_id, which the next
// run drops — and never neither. Duplicates are found within a partition
// and against the Lookback partitions before it, whose copies are kept.
//
// Memory is about 100 bytes per row of the largest partition (a 128-bit
// hash of each event_id and where its kept row is); files are streamed.
func Compact(ctx context.Context, st Store, cfg CompactConfig, log *slog.Logger) (*CompactReport, error) {
	if cfg.TargetSize <= 0 {
		cfg.TargetSize = 128 << 20
	}
	if cfg.Settle == 0 {
		cfg.Settle = 2 * time.Hour
	}
	cfg.Now = clock.Or(cfg.Now)
	if cfg.Lookback == 0 {
		cfg.Lookback = 1
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.Partitions {
		if _, ok := parsePartition(p); !ok {
			return nil, fmt.Errorf("compact: partition %q: want type/dt=YYYY-MM-DD/hour=HH", p)
		}
	}
	c := &compactor{st: st, cfg: cfg, log: log, rep: &CompactReport{StartedAt: cfg.Now().UTC(), DryRun: cfg.DryRun},
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	prefixes := []string{""}
	if len(cfg.Partitions) > 0 {
		prefixes = nil
		for _, p := range cfg.Partitions {
			prefixes = append(prefixes, strings.TrimSuffix(p, "/")+"/")
		}
	}
	var batch []Object
	older := map[string][]Object{} // noncurrent versions of batch's keys
	var part string
	skip := false
	flush := func() {
		if len(batch) > 0 {
			c.older = older
			if err := c.partition(ctx, part, batch); err != nil {
				log.Error("compact: partition not compacted", "partition", part, "error", err)
				c.rep.Errors = append(c.rep.Errors, part+": "+err.Error())
			}
		}
		batch = batch[:0]
		clear(older)
	}
	for _, prefix := range prefixes {
		err := st.Walk(ctx, prefix, func(o Object) error {
			if isFailed(o.Key) || !strings.HasSuffix(o.Key, ".parquet") {
				return nil
			}
			p := path.Dir(o.Key)
			hour, ok := parsePartition(p)
			if !ok {
				return nil
			}
			if p != part {
				flush()
				part = p
				c.rep.Partitions++
				skip = len(cfg.Partitions) == 0 && cfg.Settle > 0 && cfg.Now().Sub(hour.Add(time.Hour)) < cfg.Settle
				if skip {
					c.rep.PartitionsUnsettled++
				}
			}
			switch {
			case skip:
			case o.Noncurrent:
				older[o.Key] = append(older[o.Key], o)
			default:
				batch = append(batch, o)
			}
			return nil
		})
		if err != nil {
			return c.rep, fmt.Errorf("compact: %w", err)
		}
		flush()
		part = ""
	}
	c.rep.FinishedAt = cfg.Now().UTC()
	log.Info("compact: done", "partitions", c.rep.Partitions, "compacted", c.rep.PartitionsCompacted,
		"files_replaced", c.rep.FilesReplaced, "files_written", c.rep.FilesWritten,
		"duplicates_dropped", c.rep.DuplicatesDropped, "errors", len(c.rep.Errors), "dry_run", cfg.DryRun)
	if len(c.rep.Errors) > 0 {
		return c.rep, fmt.Errorf("compact: %d partitions: %w", len(c.rep.Errors), ErrIncomplete)
	}
	return c.rep, nil
}

// parsePartition reads type/dt=YYYY-MM-DD/hour=HH and returns the hour.
func parsePartition(p string) (time.Time, bool) {
	parts := strings.Split(strings.TrimSuffix(p, "/"), "/")
	if len(parts) != 3 || parts[0] == "" || strings.HasPrefix(parts[0], "_") || parts[0] == "errors" {
		return time.Time{}, false
	}
	dt, ok1 := strings.CutPrefix(parts[1], "dt=")
	hh, ok2 := strings.CutPrefix(parts[2], "hour=")
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02T15", dt+"T"+hh)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

type compactor struct {
	older map[string][]Object // noncurrent versions of the partition's keys
	st    Store
	cfg   CompactConfig
	log   *slog.Logger
	rep   *CompactReport
	seeds [2]maphash.Seed
}

type idHash [2]uint64

// loc is where an event_id's kept row is.
type loc struct {
	file, group, row int32
	received         int64
}

func (c *compactor) hash(b []byte) idHash {
	return idHash{maphash.Bytes(c.seeds[0], b), maphash.Bytes(c.seeds[1], b)}
}

type input struct {
	o      Object
	pf     *parquet.File
	f      File
	losers int64
	schema string
}

func (c *compactor) partition(ctx context.Context, part string, objs []Object) error {
	ins := make([]*input, 0, len(objs))
	defer func() {
		for _, in := range ins {
			in.f.Close()
		}
	}()
	earlier, err := c.earlierIDs(ctx, part)
	if err != nil {
		return err
	}
	winners := map[idHash]loc{}
	for i, o := range objs {
		pf, f, err := openParquet(ctx, c.st, o)
		if err != nil {
			return err
		}
		in := &input{o: o, pf: pf, f: f, schema: pf.Schema().String()}
		ins = append(ins, in)
		c.rep.FilesScanned++
		c.rep.RowsScanned += pf.NumRows()
		eid, recv := leafIndex(pf.Schema(), "event_id"), leafIndex(pf.Schema(), "received_at")
		if eid < 0 {
			continue // nothing to deduplicate by
		}
		for g, rg := range pf.RowGroups() {
			ids := make([]idHash, rg.NumRows())
			has := make([]bool, rg.NumRows())
			times := make([]int64, rg.NumRows())
			for r := range times {
				times[r] = math.MaxInt64
			}
			if err := scanColumn(rg, eid, func(row int, v parquet.Value) {
				if !v.IsNull() && row < len(ids) {
					ids[row], has[row] = c.hash(v.ByteArray()), true
				}
			}); err != nil {
				return fmt.Errorf("read %s: %w", o.Key, err)
			}
			if recv >= 0 {
				if err := scanColumn(rg, recv, func(row int, v parquet.Value) {
					if !v.IsNull() && row < len(times) {
						times[row] = v.Int64()
					}
				}); err != nil {
					return fmt.Errorf("read %s: %w", o.Key, err)
				}
			}
			for r, h := range ids {
				if !has[r] {
					continue
				}
				if _, ok := earlier[h]; ok {
					in.losers++ // kept in the earlier partition
					continue
				}
				here := loc{int32(i), int32(g), int32(r), times[r]}
				prev, dup := winners[h]
				switch {
				case !dup:
					winners[h] = here
				case here.received < prev.received:
					winners[h] = here
					ins[prev.file].losers++
				default:
					in.losers++
				}
			}
		}
	}

	// Per schema (files of one partition may straddle a schema change),
	// merge the small files and those holding a duplicate.
	groups := map[string][]*input{}
	var order []string
	for _, in := range ins {
		if _, ok := groups[in.schema]; !ok {
			order = append(order, in.schema)
		}
		groups[in.schema] = append(groups[in.schema], in)
	}
	compacted := false
	for _, s := range order {
		var set []*input
		small, losers := 0, int64(0)
		for _, in := range groups[s] {
			isSmall := in.o.Size < c.cfg.TargetSize/2
			if isSmall {
				small++
			}
			if isSmall || in.losers > 0 {
				set = append(set, in)
				losers += in.losers
			}
		}
		if losers == 0 && small < 2 {
			continue
		}
		compacted = true
		if err := c.merge(ctx, part, set, winners, ins); err != nil {
			return err
		}
	}
	if compacted {
		c.rep.PartitionsCompacted++
	}
	return nil
}

// earlierIDs returns the event_ids of the Lookback partitions of the same
// type before part.
func (c *compactor) earlierIDs(ctx context.Context, part string) (map[idHash]struct{}, error) {
	ids := map[idHash]struct{}{}
	hour, _ := parsePartition(part)
	typ := strings.SplitN(part, "/", 2)[0]
	for h := 1; h <= c.cfg.Lookback; h++ {
		t := hour.Add(-time.Duration(h) * time.Hour)
		prefix := fmt.Sprintf("%s/dt=%s/hour=%s/", typ, t.Format("2006-01-02"), t.Format("15"))
		err := c.st.Walk(ctx, prefix, func(o Object) error {
			if o.Noncurrent || !strings.HasSuffix(o.Key, ".parquet") {
				return nil
			}
			pf, f, err := openParquet(ctx, c.st, o)
			if err != nil {
				return err
			}
			defer f.Close()
			eid := leafIndex(pf.Schema(), "event_id")
			if eid < 0 {
				return nil
			}
			for _, rg := range pf.RowGroups() {
				if err := scanColumn(rg, eid, func(_ int, v parquet.Value) {
					if !v.IsNull() {
						ids[c.hash(v.ByteArray())] = struct{}{}
					}
				}); err != nil {
					return fmt.Errorf("read %s: %w", o.Key, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// merge writes the kept rows of set into new files of about TargetSize,
// then deletes set.
func (c *compactor) merge(ctx context.Context, part string, set []*input, winners map[idHash]loc, all []*input) error {
	index := map[*input]int32{}
	for i, in := range all {
		index[in] = int32(i)
	}
	var inBytes, dropped int64
	for _, in := range set {
		inBytes += in.o.Size
		dropped += in.losers
	}
	if c.cfg.DryRun {
		c.rep.FilesReplaced += int64(len(set))
		c.rep.FilesWritten += max(1, (inBytes+c.cfg.TargetSize-1)/c.cfg.TargetSize)
		c.rep.DuplicatesDropped += dropped
		c.rep.BytesReplaced += inBytes
		return nil
	}
	typ := strings.SplitN(part, "/", 2)[0]
	schema := fileSchema(set[0].pf)
	var maxRows int64
	for _, in := range set {
		maxRows = max(maxRows, maxRowGroupRows(in.pf))
	}
	var (
		up       Upload
		w        *parquet.Writer
		estimate float64
		rows     int64
		written  []Object
	)
	finish := func() error {
		if w == nil {
			return nil
		}
		if rows == 0 { // every row of the inputs was a duplicate
			up.Abort()
			w, up = nil, nil
			return nil
		}
		if err := w.Close(); err != nil {
			return err
		}
		o, err := up.Commit(ctx)
		if err != nil {
			return err
		}
		written = append(written, o)
		w, up, estimate, rows = nil, nil, 0, 0
		return nil
	}
	defer func() {
		if up != nil {
			up.Abort()
		}
	}()
	for _, in := range set {
		fi := index[in]
		eid := leafIndex(in.pf.Schema(), "event_id")
		perRow := float64(in.o.Size) / float64(max(in.pf.NumRows(), 1))
		for g, rg := range in.pf.RowGroups() {
			if w == nil {
				var err error
				key := fmt.Sprintf("%s/%s-%s-c%s.parquet", part, typ, c.cfg.Now().UTC().Format("20060102T150405Z"), strings.ToLower(rand.Text()[:10]))
				if up, err = c.st.Create(ctx, key); err != nil {
					return err
				}
				w = writerFor(up, schema, fileKV(in.pf), maxRows)
			}
			var kept int64
			n, err := copyRows(w, rg, func(row int, r parquet.Row) bool {
				keep := true
				if eid >= 0 {
					for _, v := range r {
						if v.Column() == eid {
							if !v.IsNull() {
								l, ok := winners[c.hash(v.ByteArray())]
								keep = ok && l.file == fi && l.group == int32(g) && l.row == int32(row)
							}
							break
						}
					}
				}
				if keep {
					kept++
				}
				return keep
			})
			if err != nil {
				return fmt.Errorf("compact %s: %w", in.o.Key, err)
			}
			rows += n
			estimate += perRow * float64(kept)
			if estimate >= float64(c.cfg.TargetSize) {
				if err := finish(); err != nil {
					return fmt.Errorf("compact %s: %w", part, err)
				}
			}
		}
	}
	if err := finish(); err != nil {
		return fmt.Errorf("compact %s: %w", part, err)
	}
	// Every merged file is in place: only now remove what they replace,
	// with their older versions, which would otherwise become current.
	for _, in := range set {
		for _, o := range append([]Object{in.o}, c.older[in.o.Key]...) {
			if err := c.st.Delete(ctx, o); err != nil {
				return fmt.Errorf("compact %s: replaced %s left in place (its rows are now twice in the partition; run again): %w", part, in.o.Key, err)
			}
		}
	}
	c.rep.FilesReplaced += int64(len(set))
	c.rep.FilesWritten += int64(len(written))
	c.rep.DuplicatesDropped += dropped
	c.rep.BytesReplaced += inBytes
	for _, o := range written {
		c.rep.BytesWritten += o.Size
	}
	c.log.Debug("compact: partition merged", "partition", part, "files_in", len(set), "files_out", len(written), "duplicates", dropped)
	return nil
}
