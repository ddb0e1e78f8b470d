package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/lake"
)

// Footer metadata of a lake file written in local mode.
const (
	MetaFlush  = "spate.flush"           // the commit's id
	MetaRanges = "spate.sequence_ranges" // {"shardId-…": ["first", "last"]}: the records it covers
)

const intentKey = "intent"

// intent is the lake consumer's commit in progress.
type intent struct {
	ID          string         `json:"id"`
	Files       []intentFile   `json:"files"`
	Checkpoints map[int]uint64 `json:"checkpoints"`
}

// intentFile names a file relative to the lake's directory, so that a data
// directory moved between a crash and the restart still rolls forward.
type intentFile struct {
	Tmp   string `json:"tmp"`
	Final string `json:"final"`
}

func (lc *lakeConsumer) relFile(s lake.Sealed) intentFile {
	rel := func(p string) string {
		if r, err := filepath.Rel(lc.cfg.Lake.Dir(), p); err == nil {
			return r
		}
		return p
	}
	return intentFile{Tmp: rel(s.Tmp), Final: rel(s.Final)}
}

func (lc *lakeConsumer) absFile(f intentFile) lake.Sealed {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(lc.cfg.Lake.Dir(), p)
	}
	return lake.Sealed{Tmp: abs(f.Tmp), Final: abs(f.Final)}
}

// lakeConsumer routes every shard into the lake and commits the lake's
// files with its checkpoint.
type lakeConsumer struct {
	cfg Config
	// mu is held shared by each Route and exclusively to seal: the files
	// sealed then hold exactly the records routed up to routed.
	mu     sync.RWMutex
	routed []uint64
	// flushMu serialises commits; cp is the committed checkpoint.
	flushMu sync.Mutex
	cp      []uint64
	shards  sync.WaitGroup
	flushes int
	// broken is the error of a commit that failed half-way: from then on
	// the checkpoint stays where it is (the records replay after a
	// restart) rather than moving past files that were lost.
	broken error
}

func newLakeConsumer(cfg Config, rec *Recovery) (*lakeConsumer, error) {
	s := cfg.Stream
	lc := &lakeConsumer{cfg: cfg}
	var err error
	if lc.cp, err = s.Checkpoints(lakeConsumerName); err != nil {
		return nil, err
	}
	st, err := s.State(lakeConsumerName)
	if err != nil {
		return nil, err
	}
	if raw, ok := st[intentKey]; ok {
		var in intent
		if err := json.Unmarshal(raw, &in); err != nil {
			return nil, fmt.Errorf("local: lake intent: %w", err)
		}
		n, err := lc.rollForward(in)
		if err != nil {
			return nil, err
		}
		rec.RolledForward = n
	}
	// Without an intent nothing past the checkpoint was published: every
	// temporary file is an open file of a run that crashed.
	if rec.TempRemoved, err = lake.RemoveTemp(cfg.Lake.Dir()); err != nil {
		return nil, err
	}
	lc.routed = append([]uint64(nil), lc.cp...)
	return lc, nil
}

// rollForward completes a commit a crash interrupted: its files were
// sealed and synced before the intent, so each is renamed (if it is not
// yet), after checking that it is the file the intent means.
func (lc *lakeConsumer) rollForward(in intent) (int, error) {
	var files []lake.Sealed
	for _, f := range in.Files {
		sf := lc.absFile(f)
		path := sf.Tmp
		if _, err := os.Stat(path); err != nil {
			path = sf.Final
		}
		md, err := lake.ReadMetadata(path, MetaFlush)
		if err != nil {
			return 0, fmt.Errorf("local: roll forward lake commit %s: %w", in.ID, err)
		}
		if md[MetaFlush] != in.ID {
			return 0, fmt.Errorf("local: roll forward lake commit %s: %s belongs to commit %q", in.ID, path, md[MetaFlush])
		}
		files = append(files, sf)
	}
	if err := lc.cfg.Lake.Publish(files); err != nil {
		return 0, fmt.Errorf("local: roll forward lake commit %s: %w", in.ID, err)
	}
	if err := lc.cfg.Stream.Commit(lakeConsumerName, in.Checkpoints, nil, []string{intentKey}); err != nil {
		return 0, err
	}
	for i, seq := range in.Checkpoints {
		lc.cp[i] = seq
	}
	return len(files), nil
}

func (lc *lakeConsumer) start(ctx context.Context, wg *sync.WaitGroup, errs chan<- error) {
	for i := range lc.cfg.Stream.Shards() {
		lc.shards.Go(func() {
			if err := lc.run(ctx, i); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() { lc.flusher(ctx, errs) })
}

func (lc *lakeConsumer) wait() { lc.shards.Wait() }

// run routes shard idx until the stream is sealed and read to its end.
func (lc *lakeConsumer) run(ctx context.Context, idx int) error {
	after := lc.routed[idx]
	for {
		recs, err := lc.cfg.Stream.Read(ctx, idx, after, lc.cfg.BatchSize)
		if errors.Is(err, spate.ErrClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("local: lake read: %w", err)
		}
		if !lc.route(ctx, idx, recs) {
			return nil
		}
		after = lc.routed[idx]
	}
}

// route routes recs, retrying only the records the router failed, so that
// no event is written twice; it returns false if ctx ended first.
func (lc *lakeConsumer) route(ctx context.Context, idx int, recs []spate.Record) bool {
	last, _ := parseSequence(recs[len(recs)-1].SequenceNumber)
	pending := recs
	wait := 100 * time.Millisecond
	for {
		lc.mu.RLock()
		err := lc.cfg.Router.Route(ctx, pending)
		if err == nil {
			lc.routed[idx] = last
		}
		lc.mu.RUnlock()
		if err == nil {
			return true
		}
		var be *spate.BatchError
		if errors.As(err, &be) && len(be.Errs) == len(pending) {
			var again []spate.Record
			for i, e := range be.Errs {
				if e != nil {
					again = append(again, pending[i])
				}
			}
			pending = again
		}
		lc.cfg.Log.Warn("local: lake routing failed, retrying", "records", len(pending), "error", err.Error())
		if !backoff(ctx, &wait) {
			return false
		}
	}
}

// flusher commits the lake every FlushInterval, and sooner once the open
// files hold FlushBytes.
func (lc *lakeConsumer) flusher(ctx context.Context, errs chan<- error) {
	tick := time.NewTicker(min(max(lc.cfg.FlushInterval/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	last := lc.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := lc.cfg.Now()
		if now.Sub(last) < lc.cfg.FlushInterval && lc.cfg.Lake.Buffered() < lc.cfg.Lake.FlushBytes() {
			continue
		}
		last = now
		if err := lc.flush(); err != nil {
			lc.cfg.Log.Error("local: lake commit", "error", err.Error())
		}
	}
}

// flush commits what is routed: seal, intent, publish, checkpoint.
func (lc *lakeConsumer) flush() error {
	lc.flushMu.Lock()
	defer lc.flushMu.Unlock()
	if lc.broken != nil {
		return fmt.Errorf("local: lake commits stopped until a restart: %w", lc.broken)
	}
	if err := lc.commit(); err != nil {
		lc.broken = err
		return err
	}
	return nil
}

func (lc *lakeConsumer) commit() error {
	lc.flushes++
	id := fmt.Sprintf("%d-%d", lc.cfg.Now().UnixNano(), lc.flushes)

	lc.mu.Lock()
	cps := map[int]uint64{}
	ranges := map[string][2]string{}
	for i, seq := range lc.routed {
		if seq != lc.cp[i] {
			cps[i] = seq
			ranges[fmt.Sprintf("shardId-%012d", i)] = [2]string{strconv.FormatUint(lc.cp[i]+1, 10), strconv.FormatUint(seq, 10)}
		}
	}
	if len(cps) == 0 {
		lc.mu.Unlock()
		return nil
	}
	rj, _ := json.Marshal(ranges)
	sealed, err := lc.cfg.Lake.Seal(map[string]string{MetaFlush: id, MetaRanges: string(rj)})
	lc.mu.Unlock()
	if err != nil {
		return fmt.Errorf("local: lake seal: %w", err)
	}
	lc.cfg.Crash(CrashLakeSealed)
	if len(sealed) > 0 {
		in := intent{ID: id, Checkpoints: cps}
		for _, f := range sealed {
			in.Files = append(in.Files, lc.relFile(f))
		}
		raw, _ := json.Marshal(in)
		if err := lc.cfg.Stream.Commit(lakeConsumerName, nil, map[string][]byte{intentKey: raw}, nil); err != nil {
			return err
		}
		lc.cfg.Crash(CrashLakeIntent)
		if err := lc.cfg.Lake.Publish(sealed); err != nil {
			return err
		}
		lc.cfg.Crash(CrashLakePublished)
	}
	if err := lc.cfg.Stream.Commit(lakeConsumerName, cps, nil, []string{intentKey}); err != nil {
		return err
	}
	for i, seq := range cps {
		lc.cp[i] = seq
	}
	return nil
}
