// Package batch turns a stream of accepted records into batched, retried,
// fallen-back writes: a bounded Producer that cuts batches by a Policy and
// acknowledges each submission only once its records are durable, and Sink
// decorators for bounded retries, circuit breaking and fallback.
package batch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate"
)

// Policy says when a batch is full: by records, by bytes, or by age of its
// oldest record, whichever comes first.
type Policy struct {
	Count int           // default 500, PutRecords' limit
	Bytes int           // default 5 MiB, PutRecords' limit
	Age   time.Duration // default 10 ms
}

func (p Policy) withDefaults() Policy {
	if p.Count <= 0 {
		p.Count = 500
	}
	if p.Bytes <= 0 {
		p.Bytes = 5 << 20
	}
	if p.Age <= 0 {
		p.Age = 10 * time.Millisecond
	}
	return p
}

// Config holds the Producer's knobs; zero values take the defaults.
type Config struct {
	Policy Policy
	// MaxRecords and MaxBytes bound what is buffered or in flight; a
	// submission that does not fit fails with spate.ErrOverloaded at once
	// (default 50,000 records, 64 MiB).
	MaxRecords int
	MaxBytes   int64
	// InFlight is how many batches are written concurrently (default 8).
	InFlight int
	// PutTimeout bounds one batch's write through the sink chain, retries
	// and fallback included (default 15 s).
	PutTimeout time.Duration
}

// Stats is a snapshot of the Producer's counters.
type Stats struct {
	BufferedRecords int64
	BufferedBytes   int64
	Batches         int64
	BatchRecords    int64 // sum of batch sizes, for the mean
	Written         int64 // records the sink accepted
	Failed          int64 // records neither the sink nor its fallback took
	Shed            int64 // submissions refused because the buffer was full
}

type item struct {
	rec    spate.Record
	ticket *Ticket
}

// Producer buffers records and writes them to a Sink in batches. Submit
// returns a Ticket that resolves when every record of the submission is
// written or has failed: callers acknowledge after the write, never before.
type Producer struct {
	sink spate.Sink
	cfg  Config
	log  *slog.Logger

	mu           sync.Mutex
	cond         *sync.Cond
	pending      []item
	pendingBytes int
	pendingSince time.Time // arrival of the pending batch's first record
	lingerCond   *sync.Cond
	ready        [][]item
	closed       bool
	records      int64
	bytes        int64

	closing chan struct{} // closed by Close: wakes the linger timer
	workers sync.WaitGroup
	linger  sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc

	batches, batchRecords, written, failed, shed atomic.Int64
}

// NewProducer starts a producer writing to sink. Close it to flush.
func NewProducer(sink spate.Sink, cfg Config, log *slog.Logger) *Producer {
	cfg.Policy = cfg.Policy.withDefaults()
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 50_000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 8
	}
	if cfg.PutTimeout <= 0 {
		cfg.PutTimeout = 15 * time.Second
	}
	// The write context outlives requests and Close's caller: in-flight
	// writes finish unless Close's deadline passes.
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{sink: sink, cfg: cfg, log: log, ctx: ctx, cancel: cancel, closing: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.lingerCond = sync.NewCond(&p.mu)
	for range cfg.InFlight {
		p.workers.Go(p.work)
	}
	p.linger.Go(p.lingerLoop)
	return p
}

// Ticket resolves when every record of one submission is written or failed.
type Ticket struct {
	remaining atomic.Int64
	mu        sync.Mutex
	err       error
	done      chan struct{}
}

func newTicket(n int) *Ticket {
	t := &Ticket{done: make(chan struct{})}
	t.remaining.Store(int64(n))
	return t
}

func (t *Ticket) resolve(err error) {
	if err != nil {
		t.mu.Lock()
		if t.err == nil {
			t.err = err
		}
		t.mu.Unlock()
	}
	if t.remaining.Add(-1) == 0 {
		close(t.done)
	}
}

// Done is closed when the ticket resolves.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Wait blocks until the ticket resolves or ctx ends. It returns nil when
// every record was written, else the first record's error.
func (t *Ticket) Wait(ctx context.Context) error {
	select {
	case <-t.done:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.err
	case <-ctx.Done():
		return fmt.Errorf("wait for write: %w", ctx.Err())
	}
}

// WaitFor is Wait with a timeout instead of a context: cheaper on the
// request path, where the client's cancellation must not cancel a write.
func (t *Ticket) WaitFor(d time.Duration) error {
	select {
	case <-t.done:
	default:
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-t.done:
		case <-timer.C:
			return fmt.Errorf("wait for write: %w", context.DeadlineExceeded)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Submit buffers recs for writing. It fails at once with
// spate.ErrOverloaded when the buffer cannot take them all, and with
// spate.ErrClosed after Close.
func (p *Producer) Submit(recs []spate.Record) (*Ticket, error) {
	size := 0
	for _, r := range recs {
		size += r.Size()
	}
	t := newTicket(len(recs))
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, spate.ErrClosed
	}
	if p.records+int64(len(recs)) > int64(p.cfg.MaxRecords) || p.bytes+int64(size) > p.cfg.MaxBytes {
		p.mu.Unlock()
		p.shed.Add(1)
		return nil, spate.ErrOverloaded
	}
	p.records += int64(len(recs))
	p.bytes += int64(size)
	for _, r := range recs {
		if len(p.pending) > 0 && (len(p.pending)+1 > p.cfg.Policy.Count || p.pendingBytes+r.Size() > p.cfg.Policy.Bytes) {
			p.cutLocked()
		}
		if len(p.pending) == 0 {
			p.pendingSince = time.Now()
			p.lingerCond.Signal()
		}
		p.pending = append(p.pending, item{rec: r, ticket: t})
		p.pendingBytes += r.Size()
	}
	if len(p.pending) >= p.cfg.Policy.Count {
		p.cutLocked()
	}
	p.mu.Unlock()
	if len(recs) == 0 {
		close(t.done)
	}
	return t, nil
}

// cutLocked moves the pending batch to the ready queue.
func (p *Producer) cutLocked() {
	if len(p.pending) == 0 {
		return
	}
	p.ready = append(p.ready, p.pending)
	p.pending = make([]item, 0, p.cfg.Policy.Count)
	p.pendingBytes = 0
	p.cond.Signal()
}

// lingerLoop cuts a pending batch once its first record is Policy.Age old.
func (p *Producer) lingerLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for len(p.pending) == 0 && !p.closed {
			p.lingerCond.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		wait := time.Until(p.pendingSince.Add(p.cfg.Policy.Age))
		if wait <= 0 {
			p.cutLocked()
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.closing:
		}
	}
}

func (p *Producer) work() {
	for {
		p.mu.Lock()
		for len(p.ready) == 0 && !(p.closed && len(p.pending) == 0) {
			if p.closed {
				p.cutLocked()
				continue
			}
			p.cond.Wait()
		}
		if len(p.ready) == 0 {
			p.mu.Unlock()
			return
		}
		b := p.ready[0]
		p.ready[0] = nil
		p.ready = p.ready[1:]
		p.mu.Unlock()
		p.write(b)
	}
}

func (p *Producer) write(b []item) {
	recs := make([]spate.Record, len(b))
	size := 0
	for i, it := range b {
		recs[i] = it.rec
		size += it.rec.Size()
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.PutTimeout)
	err := p.sink.Put(ctx, recs)
	cancel()
	errs := spate.ItemErrors(err, len(b))
	var failed int64
	for i, it := range b {
		if errs[i] != nil {
			failed++
		}
		it.ticket.resolve(errs[i])
	}
	p.batches.Add(1)
	p.batchRecords.Add(int64(len(b)))
	p.written.Add(int64(len(b)) - failed)
	p.failed.Add(failed)
	if failed > 0 {
		p.log.Error("batch not written", "records", len(b), "failed", failed, "err", errs[firstErr(errs)])
	}
	p.mu.Lock()
	p.records -= int64(len(b))
	p.bytes -= int64(size)
	p.mu.Unlock()
}

func firstErr(errs []error) int {
	for i, err := range errs {
		if err != nil {
			return i
		}
	}
	return 0
}

// Close stops accepting submissions, writes everything buffered and waits
// for in-flight writes. If ctx ends first, outstanding writes are cancelled
// (their tickets fail) and Close returns ctx's error.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
		p.cond.Broadcast()
		p.lingerCond.Broadcast()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.workers.Wait()
		p.linger.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.cancel()
		return nil
	case <-ctx.Done():
		p.cancel()
		<-done
		return fmt.Errorf("producer close: %w", ctx.Err())
	}
}

// Stats returns a snapshot of the counters.
func (p *Producer) Stats() Stats {
	p.mu.Lock()
	records, bytes := p.records, p.bytes
	p.mu.Unlock()
	return Stats{
		BufferedRecords: records,
		BufferedBytes:   bytes,
		Batches:         p.batches.Load(),
		BatchRecords:    p.batchRecords.Load(),
		Written:         p.written.Load(),
		Failed:          p.failed.Load(),
		Shed:            p.shed.Load(),
	}
}

// Resolved returns a ticket that is already resolved successfully.
func Resolved() *Ticket {
	t := newTicket(0)
	close(t.done)
	return t
}
