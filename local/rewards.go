package local

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/reward"
)

const outboxPrefix = "outbox/"

// aggConsumer folds each shard into tumbling windows of arrival time and
// delivers the aggregates through an on-disk outbox.
//
// A shard has at most one open window: the stream stamps arrival in
// commit order, never going back within a shard, so a record of a later
// window closes the open one, and the records not yet in the outbox are
// exactly those from the open window's first on. The checkpoint is the
// record before it, and moves in the same transaction that puts the closed
// window's aggregates into the outbox.
type aggConsumer struct {
	cfg    Config
	folder *aggregate.Folder
	window time.Duration
	grace  time.Duration
	tick   time.Duration
	source string
	sender *reward.Sender
	shards []*aggShard
	next   atomic.Uint64 // next outbox key
	wake   chan struct{}
	// outbox is how many aggregates wait in the outbox.
	outbox atomic.Int64

	shardWG sync.WaitGroup
	// deliverMu serialises delivery: the loop's, then Stop's.
	deliverMu   sync.Mutex
	stopDeliver context.CancelFunc
	delivering  chan struct{}
}

type aggShard struct {
	mu   sync.Mutex
	id   string
	idx  int
	cp   uint64           // committed checkpoint
	st   *aggregate.State // the open window, or nil
	late bool             // st continues a window closed before
	// first is the sequence number of st's first record, last that of the
	// last record folded.
	first, last   uint64
	closedThrough time.Time
}

func newAggConsumer(cfg Config, rec *Recovery) (*aggConsumer, error) {
	sc := cfg.Sender
	if sc.Log == nil {
		sc.Log = cfg.Log
	}
	if sc.Now == nil {
		// One clock for window closes and their expiry.
		sc.Now = cfg.Now
	}
	sender, err := reward.New(cfg.Rewarders, sc)
	if err != nil {
		return nil, err
	}
	window := cfg.Folder.Config().Window
	ac := &aggConsumer{
		cfg: cfg, folder: cfg.Folder, window: window, sender: sender,
		// A window closes a little after its end, so that records put just
		// before it reach the fold first.
		grace: min(window/4, 2*time.Second),
		tick:  min(max(window/10, 100*time.Millisecond), time.Second),
		// Stable across restarts of one data directory, so aggregates
		// folded again after a crash keep their IDs.
		source: "local-" + cfg.Stream.ID(),
		wake:   make(chan struct{}, 1),
	}
	cps, err := cfg.Stream.Checkpoints(aggConsumerName)
	if err != nil {
		return nil, err
	}
	for i, id := range cfg.Stream.Shards() {
		ac.shards = append(ac.shards, &aggShard{id: id, idx: i, cp: cps[i], last: cps[i]})
	}
	st, err := cfg.Stream.State(aggConsumerName)
	if err != nil {
		return nil, err
	}
	var maxKey uint64
	for k := range st {
		if n, ok := strings.CutPrefix(k, outboxPrefix); ok {
			v, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("local: outbox key %q: %w", k, err)
			}
			maxKey = max(maxKey, v)
			rec.OutboxPending++
		}
	}
	ac.next.Store(maxKey + 1)
	ac.outbox.Store(int64(rec.OutboxPending))
	return ac, nil
}

func (ac *aggConsumer) checkpoint(i int) uint64 { return ac.shards[i].cp }

func (ac *aggConsumer) start(ctx context.Context, wg *sync.WaitGroup, errs chan<- error) {
	for _, sh := range ac.shards {
		ac.shardWG.Go(func() {
			if err := ac.run(ctx, sh); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() { ac.tickLoop(ctx, errs) })
	dctx, cancel := context.WithCancel(ctx)
	ac.stopDeliver, ac.delivering = cancel, make(chan struct{})
	go func() { defer close(ac.delivering); ac.deliverLoop(dctx) }()
}

func (ac *aggConsumer) waitShards() { ac.shardWG.Wait() }

func (ac *aggConsumer) run(ctx context.Context, sh *aggShard) error {
	for {
		sh.mu.Lock()
		after := sh.last
		sh.mu.Unlock()
		recs, err := ac.cfg.Stream.Read(ctx, sh.idx, after, ac.cfg.BatchSize)
		if errors.Is(err, spate.ErrClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("local: aggregator read: %w", err)
		}
		if err := ac.fold(sh, recs); err != nil {
			return err
		}
	}
}

// fold adds recs to sh's window, closing it when a record of a later
// window comes, and puts size-budget partials in the outbox.
func (ac *aggConsumer) fold(sh *aggShard, recs []spate.Record) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i := range recs {
		rec := &recs[i]
		seq, err := parseSequence(rec.SequenceNumber)
		if err != nil {
			return fmt.Errorf("local: aggregator: %w", err)
		}
		w := aggregate.WindowOf(rec.ArrivedAt, ac.window)
		if sh.st != nil && !sh.st.Window.Start.Equal(w.Start) {
			if err := ac.closeLocked(sh, ac.cfg.Now()); err != nil {
				return err
			}
		}
		if sh.st == nil {
			sh.st = aggregate.NewState(ac.source+"/"+sh.id, w)
			sh.late = !w.End.After(sh.closedThrough)
			sh.first = seq
		}
		if out := ac.folder.Fold(sh.st, recs[i:i+1]); len(out) > 0 {
			// The state reached its size budget before this record: what
			// it held is emitted, and the state carries on from here.
			if err := ac.emit(sh, out, seq-1); err != nil {
				return err
			}
			sh.first = seq
		}
		sh.last = seq
	}
	return nil
}

// closeLocked closes sh's open window and commits its aggregates with the
// checkpoint past its records.
func (ac *aggConsumer) closeLocked(sh *aggShard, now time.Time) error {
	st := sh.st
	out := ac.folder.Close(st, sh.late || st.Window.End.After(now))
	sh.st = nil
	if st.Window.End.After(sh.closedThrough) {
		sh.closedThrough = st.Window.End
	}
	return ac.emit(sh, out, sh.last)
}

// emit puts out into the outbox and moves sh's checkpoint to through, in
// one transaction.
func (ac *aggConsumer) emit(sh *aggShard, out []aggregate.Aggregate, through uint64) error {
	put := map[string][]byte{}
	for _, a := range out {
		b, err := a.MarshalJSON()
		if err != nil {
			return fmt.Errorf("local: outbox: %w", err)
		}
		put[fmt.Sprintf("%s%020d", outboxPrefix, ac.next.Add(1)-1)] = b
	}
	if err := ac.cfg.Stream.Commit(aggConsumerName, map[int]uint64{sh.idx: through}, put, nil); err != nil {
		return fmt.Errorf("local: aggregator commit: %w", err)
	}
	sh.cp = through
	if len(out) > 0 {
		ac.outbox.Add(int64(len(out)))
		ac.cfg.Crash(CrashWindowEmitted)
		select {
		case ac.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// tickLoop closes windows by the clock, grace after their end.
func (ac *aggConsumer) tickLoop(ctx context.Context, errs chan<- error) {
	t := time.NewTicker(ac.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := ac.cfg.Now()
		for _, sh := range ac.shards {
			sh.mu.Lock()
			var err error
			if sh.st != nil && !sh.st.Window.End.Add(ac.grace).After(now) {
				err = ac.closeLocked(sh, now)
			}
			sh.mu.Unlock()
			if err != nil {
				ac.cfg.Log.Error("local: window close", "error", err.Error())
			}
		}
	}
}

// flushAll closes every open window, running ones as partials.
func (ac *aggConsumer) flushAll() error {
	now := ac.cfg.Now()
	var errs []error
	for _, sh := range ac.shards {
		sh.mu.Lock()
		if sh.st != nil {
			errs = append(errs, ac.closeLocked(sh, now))
		}
		sh.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (ac *aggConsumer) outboxLen() int64 { return ac.outbox.Load() }

// deliverLoop delivers the outbox in order until ctx ends.
func (ac *aggConsumer) deliverLoop(ctx context.Context) {
	for {
		if _, err := ac.deliverOutbox(ctx); err != nil && ctx.Err() == nil {
			ac.cfg.Log.Warn("local: reward delivery", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-ac.wake:
		case <-time.After(time.Second):
		}
	}
}

// deliverOutbox delivers what the outbox holds now, oldest first, and
// removes each aggregate once delivered (accepted, or dead-lettered by the
// sender). It returns how many are left.
func (ac *aggConsumer) deliverOutbox(ctx context.Context) (int, error) {
	ac.deliverMu.Lock()
	defer ac.deliverMu.Unlock()
	st, err := ac.cfg.Stream.State(aggConsumerName)
	if err != nil {
		return 0, err
	}
	var keys []string
	for k := range st {
		if strings.HasPrefix(k, outboxPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		a, err := aggregate.Decode(st[k])
		if err == nil {
			wait := 200 * time.Millisecond
			for {
				if err = ac.sender.Deliver(ctx, a); err == nil {
					break
				}
				ac.cfg.Log.Warn("local: reward delivery failed, retrying", "aggregate_id", a.ID, "error", err.Error())
				if !backoff(ctx, &wait) {
					return len(keys) - i, ctx.Err()
				}
			}
			ac.cfg.Crash(CrashRewardDelivered)
		} else if derr := ac.sender.Discard(ctx, st[k], err.Error()); derr != nil {
			return len(keys) - i, derr
		}
		if err := ac.cfg.Stream.Commit(aggConsumerName, nil, nil, []string{k}); err != nil {
			return len(keys) - i, err
		}
		ac.outbox.Add(-1)
	}
	return 0, nil
}

// drainOutbox stops the delivery loop, then delivers until the outbox is
// empty or ctx ends.
func (ac *aggConsumer) drainOutbox(ctx context.Context) error {
	ac.stopDeliver()
	<-ac.delivering
	for ac.outbox.Load() > 0 {
		if _, err := ac.deliverOutbox(ctx); err != nil {
			return fmt.Errorf("local: %d aggregates left in the outbox for the next start: %w", ac.outbox.Load(), err)
		}
	}
	return nil
}
