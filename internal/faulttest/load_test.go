package faulttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/spate-dev/spate"
)

// outcome is what a client learnt about one event.
type outcome uint8

const (
	unknown outcome = iota // no answer (connection failed, timeout)
	acked                  // 202
	refused                // 503 or another non-2xx
)

// ledger is the clients' record of every event they sent, by event_id.
type ledger struct {
	mu        sync.Mutex
	events    map[string]outcome
	ackedAt   map[string]time.Time
	statuses  map[int]int
	noRetry   int // 503s without Retry-After
	netErrors int
	last503   time.Time
}

func newLedger() *ledger {
	return &ledger{events: map[string]outcome{}, ackedAt: map[string]time.Time{}, statuses: map[int]int{}}
}

func (l *ledger) record(ids []string, status int, retryAfter bool, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := unknown
	switch {
	case status == 0:
		l.netErrors++
	case status == http.StatusAccepted:
		o = acked
	default:
		o = refused
	}
	if status != 0 {
		l.statuses[status]++
	}
	if status == http.StatusServiceUnavailable {
		l.last503 = at
		if !retryAfter {
			l.noRetry++
		}
	}
	for _, id := range ids {
		l.events[id] = o
		if o == acked {
			l.ackedAt[id] = at
		}
	}
}

func (l *ledger) count(o outcome) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.events {
		if v == o {
			n++
		}
	}
	return n
}

// load sends batches of valid events with client-made event_ids.
type load struct {
	url     func() string
	workers int
	batch   int
	rate    float64 // events per second, all workers together
	client  *http.Client
	// onStatus, when set, sees every answer's status in order per worker.
	onStatus func(status int, at time.Time)
}

// run sends until ctx ends and records every event in led.
func (l load) run(ctx context.Context, led *ledger) {
	lim := rate.NewLimiter(rate.Limit(l.rate/float64(l.batch)), l.workers)
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range l.workers {
		wg.Go(func() {
			for lim.Wait(ctx) == nil {
				ids, body := batchBody(l.batch, w, seq.Add(1))
				status, retryAfter := l.post(ctx, body)
				now := time.Now()
				if status == 0 && ctx.Err() != nil {
					// Cut off by the end of the run, not by the service.
					led.record(ids, 0, false, now)
					return
				}
				led.record(ids, status, retryAfter, now)
				if l.onStatus != nil {
					l.onStatus(status, now)
				}
			}
		})
	}
	wg.Wait()
}

func (l load) post(ctx context.Context, body []byte) (int, bool) {
	// The request outlives the run's end by a little, so answers to
	// requests already sent are still counted.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, l.url()+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After") != ""
}

func batchBody(n, worker int, seq int64) ([]string, []byte) {
	ids := make([]string, n)
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for i := range ids {
		ids[i] = uuid.NewString()
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"play_progress","event_id":%q,"anonymous_id":"dev-%d","session_id":"sess-%d-%d","platform":"tv","content_id":"prog-%d","position_ms":%d}`,
			ids[i], worker, worker, seq%16, seq%50, seq*1000+int64(i))
	}
	b.WriteString(`]}`)
	return ids, b.Bytes()
}

// tally accounts for every event the clients sent.
type tally struct {
	Sent, Acked, Refused, Unknown int
	InStream, InDLQ               int // copies of the clients' events found
	Found                         int // acknowledged events found somewhere
	Lost                          int // acknowledged events found nowhere
	Duplicates                    int // copies beyond the first
	UnackedFound                  int // refused or unanswered events stored anyway
	lost                          []string
}

func account(led *ledger, stream, dlq []spate.Record) (tally, error) {
	led.mu.Lock()
	defer led.mu.Unlock()
	var t tally
	copies := map[string]int{}
	for _, set := range []struct {
		recs []spate.Record
		n    *int
	}{{stream, &t.InStream}, {dlq, &t.InDLQ}} {
		for _, r := range set.recs {
			id, err := EventID(r)
			if err != nil {
				return t, err
			}
			if _, ours := led.events[id]; !ours {
				return t, fmt.Errorf("found event %s no client sent", id)
			}
			copies[id]++
			*set.n++
		}
	}
	for id, o := range led.events {
		t.Sent++
		n := copies[id]
		if n > 1 {
			t.Duplicates += n - 1
		}
		switch o {
		case acked:
			t.Acked++
			if n > 0 {
				t.Found++
			} else {
				t.Lost++
				t.lost = append(t.lost, id)
			}
		case refused:
			t.Refused++
		default:
			t.Unknown++
		}
		if o != acked && n > 0 {
			t.UnackedFound++
		}
	}
	return t, nil
}
