// Package local runs the consumers of local mode over the durable stream
// (diskstream): the router into the on-disk lake, and the tumbling-window
// aggregator with reward delivery. Each keeps its checkpoints in the
// stream's file and moves them only once its output is durable, so that
// after kill -9 a restart replays from the checkpoints and every record
// ends up in the lake, and in the rewards, exactly once:
//
//   - Lake: files are sealed (complete and synced under their temporary
//     names, the sequence ranges they cover in their footer), an intent
//     naming them and the new checkpoint is committed, the files are
//     renamed into place, then the checkpoint is committed and the intent
//     dropped. On start an intent left by a crash is rolled forward: its
//     files are checked (footer) and renamed, its checkpoint committed.
//     Without an intent nothing past the checkpoint was published, and
//     every temporary file is deleted.
//   - Aggregator: a window's aggregates go into an outbox in the same
//     transaction that moves the shard's checkpoint past its records;
//     delivery removes an aggregate from the outbox once the reward API
//     took it. Redelivery after a crash reuses the aggregate's ID, the
//     idempotency key, so the API counts it once.
//
// The same cores run in AWS: router.Router, aggregate.Folder and
// reward.Sender cannot tell the worlds apart.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/diskstream"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/memstream"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/router"
)

// Consumers are the stream's consumer names, for diskstream.Config.
var Consumers = []string{lakeConsumerName, aggConsumerName}

const (
	lakeConsumerName = "lake"
	aggConsumerName  = "aggregator"
)

// Crash points: Config.Crash is called with each as it is passed.
const (
	CrashLakeSealed      = "lake.sealed"      // files sealed, no intent yet
	CrashLakeIntent      = "lake.intent"      // intent committed, nothing renamed
	CrashLakePublished   = "lake.published"   // renamed, checkpoint not committed
	CrashWindowEmitted   = "window.emitted"   // aggregates in the outbox, not delivered
	CrashRewardDelivered = "reward.delivered" // delivered, still in the outbox
)

// Log is the stream the consumers read, with their checkpoints and state:
// diskstream.Stream (durable, the default) or memstream.Log (in memory,
// for tests and benchmarks).
type Log interface {
	Shards() []string
	// Head is the last sequence number of a shard (0: none yet).
	Head(shard int) uint64
	// Read returns up to max records after sequence number after, waiting
	// for some; an error wrapping spate.ErrClosed once sealed and drained.
	Read(ctx context.Context, shard int, after uint64, max int) ([]spate.Record, error)
	Checkpoints(consumer string) ([]uint64, error)
	State(consumer string) (map[string][]byte, error)
	// Commit stores a consumer's checkpoints and state changes at once.
	Commit(consumer string, checkpoints map[int]uint64, put map[string][]byte, del []string) error
	// ID names the stream, stable across restarts.
	ID() string
}

var (
	_ Log = (*diskstream.Stream)(nil)
	_ Log = (*memstream.Log)(nil)
)

func parseSequence(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

// Config wires the pipeline; all but Crash, Now and Log are required.
type Config struct {
	Stream Log
	// Lake must be opened with lake.Config.ManualFlush; Router routes into
	// it.
	Lake   *lake.Lake
	Router *router.Router
	// FlushInterval is how often the lake's files are committed (the
	// longest an event waits in an open file).
	FlushInterval time.Duration
	// Folder folds the aggregates, with its window.
	Folder    *aggregate.Folder
	Rewarders []reward.Endpoint
	Sender    reward.Config
	// BatchSize is the most records per read (default 500).
	BatchSize int
	// Now closes windows and stamps commits; it is the reward sender's
	// clock too unless Sender.Now is set. Nil is the wall clock.
	Now func() time.Time
	Log *slog.Logger
	// Crash, when set, is called at each crash point (the crash test kills
	// the process there).
	Crash func(point string)
}

func (cfg *Config) defaults() {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	cfg.Now = clock.Or(cfg.Now)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Crash == nil {
		cfg.Crash = func(string) {}
	}
}

// Pipeline is the running consumers.
type Pipeline struct {
	cfg  Config
	lc   *lakeConsumer
	ac   *aggConsumer
	wg   sync.WaitGroup
	errs chan error
	stop context.CancelFunc
}

// Recovery is what Start found and did, for the log: counts, never
// payloads.
type Recovery struct {
	RolledForward int // lake files of an interrupted commit renamed into place
	TempRemoved   int // orphaned temporary files deleted
	OutboxPending int // aggregates to deliver again
	ReplayRecords int64
}

// Start recovers from what a previous run left and starts the consumers.
func Start(ctx context.Context, cfg Config) (*Pipeline, Recovery, error) {
	var rec Recovery
	if cfg.Stream == nil || cfg.Lake == nil || cfg.Router == nil || cfg.Folder == nil {
		return nil, rec, errors.New("local: Stream, Lake, Router and Folder are required")
	}
	if cfg.FlushInterval <= 0 {
		return nil, rec, errors.New("local: FlushInterval must be positive")
	}
	cfg.defaults()
	lc, err := newLakeConsumer(cfg, &rec)
	if err != nil {
		return nil, rec, err
	}
	ac, err := newAggConsumer(cfg, &rec)
	if err != nil {
		return nil, rec, err
	}
	for i := range cfg.Stream.Shards() {
		rec.ReplayRecords += int64(cfg.Stream.Head(i) - min(lc.cp[i], ac.checkpoint(i)))
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Pipeline{cfg: cfg, lc: lc, ac: ac, errs: make(chan error, 16), stop: cancel}
	p.lc.start(runCtx, &p.wg, p.errs)
	p.ac.start(runCtx, &p.wg, p.errs)
	return p, rec, nil
}

// Stop drains the consumers once the stream is sealed (Stream.Seal): every
// record is routed and folded, the lake's files are committed, every
// window is closed (running ones as partial aggregates) and the outbox is
// delivered. If ctx ends first, what is undelivered stays in the outbox
// for the next start.
func (p *Pipeline) Stop(ctx context.Context) error {
	var errs []error
	done := make(chan struct{})
	go func() { p.lc.wait(); p.ac.waitShards(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("local: consumers not drained: %w", ctx.Err()))
	}
	if err := p.lc.flush(); err != nil {
		errs = append(errs, err)
	}
	if err := p.ac.flushAll(); err != nil {
		errs = append(errs, err)
	}
	if err := p.ac.drainOutbox(ctx); err != nil {
		errs = append(errs, err)
	}
	p.stop()
	p.wg.Wait()
	close(p.errs)
	for err := range p.errs {
		errs = append(errs, err)
	}
	ls, ss := p.cfg.Lake.Stats(), p.ac.sender.Stats()
	p.cfg.Log.Info("local: stopped", "lake_files", ls.Files, "lake_rows", ls.Rows, "dead_lettered", ls.DeadLettered,
		"aggregates_delivered", ss.Delivered, "aggregates_rejected", ss.Rejected, "aggregates_expired", ss.Expired,
		"outbox_left", p.ac.outboxLen())
	return errors.Join(errs...)
}

// backoff waits d, doubled up to 5 s for the next call, or until ctx ends.
func backoff(ctx context.Context, d *time.Duration) bool {
	t := time.NewTimer(*d)
	defer t.Stop()
	*d = min(*d*2, 5*time.Second)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
