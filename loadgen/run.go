package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	wallclock "github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/registry"
)

// Config configures Run; zero values take the documented defaults.
type Config struct {
	// URL is the ingest base URL; requests go to URL/v1/events.
	URL string
	// APIKey is sent as X-Api-Key when set.
	APIKey   string
	Scenario Scenario
	// MaxInFlight bounds concurrent requests. Default: enough for the
	// profile's highest rate with every request taking twice the p99
	// budget (k6's maxVUs rule) or a second, whichever is longer; at
	// least 10.
	MaxInFlight int
	// Backlog is how many due requests may wait for a free slot (default
	// MaxInFlight); beyond it a due request is dropped and counted.
	Backlog int
	// Timeout bounds each request (default 10 s). The run ends at most
	// Timeout after the scenario's last request was due.
	Timeout time.Duration
	// Window is the interval results are broken down by and breakpoint
	// judges (default 1 s, or a 120th of longer runs).
	Window time.Duration
	// Seed makes the traffic repeatable.
	Seed    uint64
	Traffic TrafficConfig
	// Registry the events are written from (default registry.New).
	Registry *registry.Registry
	// IDs, when set, receives the event_id of every event acknowledged
	// with a 202, one per line, so a run can be counted in the lake.
	// Events the server assigned an id to are only counted.
	IDs io.Writer
	// Client sends the requests (default: keep-alive connections sized to
	// MaxInFlight).
	Client *http.Client

	clock clock // tests drive time by hand
}

// clock is time as the runner sees it.
type clock interface {
	Now() time.Time
	// After returns a channel that receives once the clock reaches t, and
	// a func releasing the timer.
	After(t time.Time) (<-chan time.Time, func())
}

// realClock is the wall clock of internal/clock (which SPATE_CLOCK_SHIFT
// moves in tests, as it moves the ingest service's).
type realClock struct{ now func() time.Time }

func (c realClock) Now() time.Time { return c.now() }

func (c realClock) After(t time.Time) (<-chan time.Time, func()) {
	tm := time.NewTimer(t.Sub(c.now()))
	return tm.C, func() { tm.Stop() }
}

// job is one due request.
type job struct {
	at  time.Time // when it was due: latency counts from here
	req Request
}

type runner struct {
	cfg      Config
	url      string
	clk      clock
	client   *http.Client
	rec      *recorder
	sem      chan struct{}
	released chan struct{}
	wg       sync.WaitGroup
}

// Run sends the scenario's requests to cfg.URL and returns what happened.
// It stops by itself: at most cfg.Timeout after the scenario's end, or at
// once when ctx ends (the result then covers what was sent).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("loadgen: url %q: want http(s)://host[:port]", cfg.URL)
	}
	sc := cfg.Scenario
	if sc.Profile.Duration() <= 0 {
		return nil, errors.New("loadgen: scenario has no duration")
	}
	peak := sc.Profile.Start
	for _, s := range sc.Profile.Stages {
		peak = max(peak, s.Target)
	}
	if peak <= 0 {
		return nil, errors.New("loadgen: scenario has no requests")
	}
	if sc.Limits.P99 <= 0 {
		sc.Limits.P99 = 500 * time.Millisecond
		cfg.Scenario = sc
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = max(10, int(math.Ceil(peak*max(2*sc.Limits.P99.Seconds(), 1))))
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = cfg.MaxInFlight
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = max(time.Second, (sc.Profile.Duration() / 120).Round(time.Second))
	}
	if cfg.Registry == nil {
		cfg.Registry = registry.New(registry.Limits{})
	}
	if cfg.clock == nil {
		cfg.clock = realClock{now: wallclock.Wall()}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.MaxInFlight,
			MaxIdleConnsPerHost: cfg.MaxInFlight,
			IdleConnTimeout:     90 * time.Second,
			// Bodies are compressed here, as clients do; answers are small.
			DisableCompression: true,
		}}
		defer cfg.Client.CloseIdleConnections()
	}
	r := &runner{
		cfg:      cfg,
		url:      strings.TrimRight(cfg.URL, "/") + "/v1/events",
		clk:      cfg.clock,
		client:   cfg.Client,
		sem:      make(chan struct{}, cfg.MaxInFlight),
		released: make(chan struct{}, cfg.MaxInFlight),
	}
	return r.run(ctx)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	cfg, sc := r.cfg, r.cfg.Scenario
	traffic := NewTraffic(cfg.Registry, cfg.Seed, cfg.Traffic)
	start := r.clk.Now()
	r.rec = newRecorder(start, sc, cfg.Window, cfg.IDs)

	// Requests stop when ctx ends or, after the schedule, at the drain
	// deadline; either way the run ends by itself.
	reqCtx, stopRequests := context.WithCancel(ctx)
	defer stopRequests()
	aborted := make(chan struct{})
	monitorDone := make(chan struct{})
	stopMonitor := make(chan struct{})
	if sc.Abort {
		go func() {
			defer close(monitorDone)
			r.monitor(start, aborted, stopMonitor)
		}()
	} else {
		close(monitorDone)
	}

	// abort is nil once seen: a closed channel would win every select.
	abort := (<-chan struct{})(aborted)
	var queue []job
	i := 0
	next, more := sc.Profile.Arrival(0)
	var pending Request
	if more {
		pending = traffic.Next(start.Add(next))
	}
	schedEnd := start.Add(sc.Profile.Duration())
	interrupted := false
	var deadline <-chan time.Time
	stopDeadline := func() {}
	drainBy := func() {
		if deadline == nil {
			// What is queued or in flight gets until Timeout after the
			// schedule's end.
			deadline, stopDeadline = r.clk.After(schedEnd.Add(cfg.Timeout))
		}
	}
loop:
	for {
		for len(queue) > 0 && r.acquire() {
			r.launch(reqCtx, queue[0])
			queue = queue[1:]
		}
		if !more {
			if len(queue) == 0 {
				break
			}
			drainBy()
		}
		var due <-chan time.Time
		stopTimer := func() {}
		if more {
			if at := start.Add(next); at.After(r.clk.Now()) {
				due, stopTimer = r.clk.After(at)
			} else {
				// Behind schedule: no timer, but still notice an end.
				select {
				case <-ctx.Done():
					interrupted = true
					break loop
				case <-abort:
					more, schedEnd, abort = false, r.clk.Now(), nil
					continue
				default:
				}
				c := make(chan time.Time, 1)
				c <- at
				due = c
			}
		}
		select {
		case <-due:
			j := job{at: start.Add(next), req: pending}
			r.rec.scheduled(j.at)
			switch {
			case len(queue) == 0 && r.acquire():
				r.launch(reqCtx, j)
			case len(queue) < cfg.Backlog:
				queue = append(queue, j)
				r.rec.queued()
			default:
				r.rec.dropped(j.at)
			}
			i++
			if next, more = sc.Profile.Arrival(i); more {
				pending = traffic.Next(start.Add(next))
			}
		case <-r.released:
		case <-abort:
			more, schedEnd, abort = false, r.clk.Now(), nil
		case <-deadline:
			break loop
		case <-ctx.Done():
			interrupted = true
			break loop
		}
		stopTimer()
	}
	if interrupted {
		schedEnd = r.clk.Now()
	}
	for _, j := range queue {
		r.rec.unstarted(j.at)
	}
	inflight := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(inflight)
	}()
	if !interrupted {
		drainBy()
		select {
		case <-inflight:
		case <-deadline:
		case <-ctx.Done():
		}
	}
	stopDeadline()
	// Whatever is still in flight has had its chance.
	stopRequests()
	<-inflight
	close(stopMonitor)
	<-monitorDone
	return r.rec.result(schedEnd, interrupted || ctx.Err() != nil, r.cfg)
}

func (r *runner) acquire() bool {
	select {
	case r.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *runner) launch(ctx context.Context, j job) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.send(ctx, j)
		<-r.sem
		select {
		case r.released <- struct{}{}:
		default:
		}
	}()
}

// ack is the part of a 202 body the run needs.
type ack struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Index int `json:"index"`
	} `json:"rejected"`
}

func (r *runner) send(ctx context.Context, j job) {
	started := r.clk.Now()
	r.rec.started(j.at, started)
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	out := outcome{at: j.at, events: j.req.Events()}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, r.url, bytes.NewReader(j.req.Body))
	if err != nil {
		out.err = errError
		r.rec.done(out, nil, r.clk.Now())
		return
	}
	req.Header.Set("Content-Type", j.req.ContentType)
	if j.req.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if r.cfg.APIKey != "" {
		req.Header.Set("X-Api-Key", r.cfg.APIKey)
	}
	req.Header.Set("User-Agent", "spate-loadgen")
	resp, err := r.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		out.status = resp.StatusCode
	}
	now := r.clk.Now()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		// Cut by the run's end, not by the server.
		out.err = errUnfinished
	case errors.Is(err, context.DeadlineExceeded):
		out.err = errTimeout
	default:
		out.err = errError
		out.detail = err.Error()
	}
	var ids []string
	if out.err == "" && out.status == http.StatusAccepted {
		var a ack
		if json.Unmarshal(body, &a) != nil {
			out.err, out.status = errBadAck, 0
		} else {
			out.accepted = a.Accepted
			out.rejected = len(a.Rejected)
			ids = j.req.IDs
			if len(a.Rejected) > 0 {
				ids = withoutRejected(ids, a.Rejected)
			}
		}
	}
	r.rec.done(out, ids, now)
}

func withoutRejected(ids []string, rejected []struct {
	Index int `json:"index"`
}) []string {
	drop := make(map[int]bool, len(rejected))
	for _, rj := range rejected {
		drop[rj.Index] = true
	}
	kept := make([]string, 0, len(ids))
	for i, id := range ids {
		if !drop[i] {
			kept = append(kept, id)
		}
	}
	return kept
}

// abortStreak is how many failing windows in a row end a breakpoint run:
// past capacity every window fails, while a stall of the machine fails
// one or two.
const abortStreak = 3

// monitor judges each window once every request due in it has either been
// answered or is over the latency budget, and closes aborted at the
// abortStreak-th failing window in a row.
func (r *runner) monitor(start time.Time, aborted, stop chan struct{}) {
	sc, w := r.cfg.Scenario, r.cfg.Window
	streak := 0
	for i := 0; time.Duration(i)*w < sc.Profile.Duration(); i++ {
		c, release := r.clk.After(start.Add(time.Duration(i+1)*w + sc.Limits.P99))
		select {
		case <-c:
		case <-stop:
			release()
			return
		}
		release()
		if r.rec.judgeLive(i) == "" {
			streak = 0
			continue
		}
		if streak++; streak == abortStreak {
			r.rec.broke(i - abortStreak + 1)
			close(aborted)
			return
		}
	}
}

// bufferedIDs writes acknowledged ids line by line.
type bufferedIDs struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (b *bufferedIDs) write(ids []string) {
	for _, id := range ids {
		if id == "" || b.err != nil {
			continue
		}
		b.w.WriteString(id)
		if b.err = b.w.WriteByte('\n'); b.err == nil {
			b.n++
		}
	}
}
