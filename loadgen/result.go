package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outcomes of a request that got no HTTP status.
const (
	errError      = "error"      // connection refused, reset, …
	errTimeout    = "timeout"    // no answer within Config.Timeout
	errUnfinished = "unfinished" // still in flight when the run ended
	errBadAck     = "bad_ack"    // a 202 whose body is not the ingest answer
)

// outcome is one request's end.
type outcome struct {
	at       time.Time // due
	status   int
	err      string
	events   int
	accepted int
	rejected int
	detail   string // the first error of a kind, for the report
}

// windowStats counts the requests due in one window.
type windowStats struct {
	scheduled, dropped, unstarted int64
	ok, s503, failed              int64 // failed: every outcome but a 202
	latency                       Histogram
}

// recorder collects outcomes from concurrent requests.
type recorder struct {
	mu      sync.Mutex
	start   time.Time
	sc      Scenario
	window  time.Duration
	windows []*windowStats
	latency Histogram // every HTTP answer, from when it was due
	lag     Histogram // due → sent
	counts  Requests
	status  map[string]int64
	events  Events
	ids     *bufferedIDs
	breakAt int
	sample  string
}

func newRecorder(start time.Time, sc Scenario, window time.Duration, ids io.Writer) *recorder {
	n := int((sc.Profile.Duration() + window - 1) / window)
	r := &recorder{start: start, sc: sc, window: window, windows: make([]*windowStats, n), status: map[string]int64{}, breakAt: -1}
	for i := range r.windows {
		r.windows[i] = &windowStats{}
	}
	if ids != nil {
		r.ids = &bufferedIDs{w: bufio.NewWriterSize(ids, 64<<10)}
	}
	return r
}

func (r *recorder) win(at time.Time) *windowStats {
	i := int(at.Sub(r.start) / r.window)
	return r.windows[min(max(i, 0), len(r.windows)-1)]
}

func (r *recorder) scheduled(at time.Time) {
	r.mu.Lock()
	r.counts.Scheduled++
	r.win(at).scheduled++
	r.mu.Unlock()
}

func (r *recorder) queued() {
	r.mu.Lock()
	r.counts.Queued++
	r.mu.Unlock()
}

func (r *recorder) dropped(at time.Time) {
	r.mu.Lock()
	r.counts.Dropped++
	r.win(at).dropped++
	r.mu.Unlock()
}

func (r *recorder) unstarted(at time.Time) {
	r.mu.Lock()
	r.counts.Unstarted++
	r.win(at).unstarted++
	r.mu.Unlock()
}

func (r *recorder) started(at, now time.Time) {
	r.mu.Lock()
	r.counts.Sent++
	r.lag.Record(now.Sub(at))
	r.mu.Unlock()
}

func (r *recorder) done(o outcome, ids []string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.win(o.at)
	r.events.Sent += int64(o.events)
	if o.err != "" {
		if r.sample == "" && o.detail != "" {
			r.sample = o.detail
		}
		r.status[o.err]++
		w.failed++
		if o.err == errUnfinished {
			r.counts.Unfinished++
		}
		return
	}
	r.counts.Answered++
	r.status[strconv.Itoa(o.status)]++
	latency := now.Sub(o.at)
	r.latency.Record(latency)
	w.latency.Record(latency)
	switch o.status {
	case 202:
		w.ok++
		r.events.Accepted += int64(o.accepted)
		r.events.Rejected += int64(o.rejected)
		for _, id := range ids {
			if id == "" {
				r.events.ServerIDs++
			}
		}
		if r.ids != nil {
			r.ids.write(ids)
		}
	case 503:
		w.s503++
		w.failed++
	default:
		w.failed++
	}
}

// expected is how many requests the profile has due in window i.
func (r *recorder) expected(i int) int64 {
	from := time.Duration(i) * r.window
	to := min(from+r.window, r.sc.Profile.Duration())
	return int64(math.Round(r.sc.Profile.Count(to) - r.sc.Profile.Count(from)))
}

// judgeLive judges window i while the run goes on: a request due in it
// that has no answer yet is already over the latency budget.
func (r *recorder) judgeLive(i int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.windows[i]
	return judge(max(w.scheduled, r.expected(i)), w, r.sc.Limits)
}

func (r *recorder) broke(i int) {
	r.mu.Lock()
	r.breakAt = i
	r.mu.Unlock()
}

// judge names the first threshold window w breaks with n requests due in
// it, or returns "". A request counts against p99 unless it was answered
// within the budget: one never sent or never answered is slower than any.
func judge(n int64, w *windowStats, l Limits) string {
	if n == 0 {
		return ""
	}
	fast := w.latency.Count() - w.latency.CountAbove(l.P99)
	switch {
	case float64(w.failed+w.dropped+w.unstarted)/float64(n) > l.ErrorRate:
		return "errors"
	case float64(w.s503)/float64(n) > l.Share503:
		return "503s"
	case float64(n-fast)/float64(n) > 0.01:
		return "p99"
	}
	return ""
}

// Result is what a run measured. Latencies are in milliseconds, counted
// from when each request was due, not from when it was sent.
type Result struct {
	Scenario    string  `json:"scenario"`
	URL         string  `json:"url"`
	Seconds     float64 `json:"seconds"` // how long requests were scheduled
	MaxInFlight int     `json:"max_in_flight"`
	Interrupted bool    `json:"interrupted,omitempty"`
	// Offered is the scheduled rate; RequestsPerSec and EventsPerSec count
	// what was acknowledged with a 202.
	Offered        float64          `json:"offered_per_sec"`
	RequestsPerSec float64          `json:"requests_per_sec"`
	EventsPerSec   float64          `json:"events_per_sec"`
	Requests       Requests         `json:"requests"`
	Events         Events           `json:"events"`
	Status         map[string]int64 `json:"status"`
	Latency        Latency          `json:"latency_ms"`
	// StartLag is how late requests were sent after they were due: the
	// generator's own delay, already inside Latency.
	StartLag   Latency     `json:"start_lag_ms"`
	Thresholds []Check     `json:"thresholds"`
	Breakpoint *Breakpoint `json:"breakpoint,omitempty"`
	Windows    []Window    `json:"windows"`
	IDs        int64       `json:"ids_written"`
	// ErrorSample is the first connection-level error, if any.
	ErrorSample string `json:"error_sample,omitempty"`
}

// Requests counts requests by how far they got.
type Requests struct {
	Scheduled int64 `json:"scheduled"`
	Sent      int64 `json:"sent"`
	Answered  int64 `json:"answered"`
	// Queued waited for a free slot (MaxInFlight busy) before being sent;
	// the wait is in their latency.
	Queued int64 `json:"queued"`
	// Dropped found the backlog full and were never sent; Unstarted still
	// waited when the run ended; Unfinished were in flight then.
	Dropped    int64 `json:"dropped"`
	Unstarted  int64 `json:"unstarted"`
	Unfinished int64 `json:"unfinished"`
}

// Events counts events.
type Events struct {
	Sent     int64 `json:"sent"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// ServerIDs were accepted without a client event_id: ingest assigned
	// one, so they are not among the ids written.
	ServerIDs int64 `json:"server_ids"`
}

// Latency is a distribution summary in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func summarize(h *Histogram) Latency {
	return Latency{P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Check is one threshold and how the run did against it.
type Check struct {
	Name  string  `json:"name"`
	Limit float64 `json:"limit"`
	Value float64 `json:"value"`
	OK    bool    `json:"ok"`
}

// Breakpoint is where a breakpoint run broke.
type Breakpoint struct {
	Broke bool `json:"broke"`
	// At is when the first failing window began, seconds into the run, and
	// Reason the threshold it broke.
	At     float64 `json:"at_seconds,omitempty"`
	Reason string  `json:"reason,omitempty"`
	// Rate is the offered rate of the last window that passed before it:
	// the capacity found. Throughput is what that window got 202s for.
	Rate       float64 `json:"rate_per_sec"`
	Throughput float64 `json:"throughput_per_sec"`
	Events     float64 `json:"events_per_sec"`
}

// Window is the requests due in one interval.
type Window struct {
	At      float64 `json:"at_seconds"`
	Offered float64 `json:"offered_per_sec"`
	OK      int64   `json:"ok"`
	Failed  int64   `json:"failed"`
	S503    int64   `json:"status_503"`
	P99     float64 `json:"p99_ms"`
	Verdict string  `json:"verdict,omitempty"`
}

// OK reports whether every threshold held.
func (res *Result) OK() bool {
	for _, c := range res.Thresholds {
		if !c.OK {
			return false
		}
	}
	return true
}

func (r *recorder) result(end time.Time, interrupted bool, cfg Config) (*Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := end.Sub(r.start).Seconds()
	res := &Result{
		Scenario: r.sc.Name, URL: cfg.URL, Seconds: math.Round(secs*1000) / 1000, MaxInFlight: cfg.MaxInFlight,
		Interrupted: interrupted, Requests: r.counts, Events: r.events, Status: r.status,
		Latency: summarize(&r.latency), StartLag: summarize(&r.lag), ErrorSample: r.sample,
	}
	if secs > 0 {
		res.Offered = float64(r.counts.Scheduled) / secs
		res.RequestsPerSec = float64(r.status["202"]) / secs
		res.EventsPerSec = float64(r.events.Accepted) / secs
	}
	var ids error
	if r.ids != nil {
		ids = r.ids.err
		if ids == nil {
			ids = r.ids.w.Flush()
		}
		res.IDs = r.ids.n
	}

	// Windows as a whole run saw them; the last may be cut short.
	lastGood := -1
	for i, w := range r.windows {
		from := time.Duration(i) * r.window
		if from >= end.Sub(r.start) {
			break
		}
		span := min(r.window, end.Sub(r.start)-from)
		n := w.scheduled
		win := Window{At: from.Seconds(), Offered: float64(n) / span.Seconds(), OK: w.ok, Failed: w.failed + w.dropped + w.unstarted, S503: w.s503,
			P99: ms(w.latency.Quantile(0.99)), Verdict: judge(n, w, r.sc.Limits)}
		res.Windows = append(res.Windows, win)
		if r.breakAt < 0 || i < r.breakAt {
			if win.Verdict == "" && span == r.window {
				lastGood = i
			}
		}
	}

	n := float64(max(r.counts.Scheduled, 1))
	notOK := float64(r.counts.Scheduled - r.status["202"])
	fast := r.latency.Count() - r.latency.CountAbove(r.sc.Limits.P99)
	res.Thresholds = []Check{
		{Name: "error_rate", Limit: r.sc.Limits.ErrorRate, Value: notOK / n},
		{Name: "share_503", Limit: r.sc.Limits.Share503, Value: float64(r.status["503"]) / n},
		// p99 holds when at most 1 % of what was due missed the budget,
		// requests never sent or never answered included.
		{Name: "over_p99_budget", Limit: 0.01, Value: float64(r.counts.Scheduled-fast) / n},
		{Name: "not_sent", Limit: 0, Value: float64(r.counts.Dropped + r.counts.Unstarted)},
	}
	res.Thresholds[0].OK = res.Thresholds[0].Value <= res.Thresholds[0].Limit
	res.Thresholds[1].OK = res.Thresholds[1].Value <= res.Thresholds[1].Limit
	res.Thresholds[2].OK = res.Thresholds[2].Value <= res.Thresholds[2].Limit
	res.Thresholds[3].OK = res.Thresholds[3].Value == 0

	if r.sc.Abort {
		bp := &Breakpoint{Broke: r.breakAt >= 0}
		if bp.Broke {
			bp.At = (time.Duration(r.breakAt) * r.window).Seconds()
			bp.Reason = judge(max(r.windows[r.breakAt].scheduled, r.expected(r.breakAt)), r.windows[r.breakAt], r.sc.Limits)
		}
		if lastGood >= 0 {
			w := r.windows[lastGood]
			bp.Rate = float64(w.scheduled) / r.window.Seconds()
			bp.Throughput = float64(w.ok) / r.window.Seconds()
			if r.counts.Answered > 0 && r.status["202"] > 0 {
				// Events of that window, at the run's events per 202.
				bp.Events = bp.Throughput * float64(r.events.Accepted) / float64(r.status["202"])
			}
		}
		res.Breakpoint = bp
	}
	if ids != nil {
		return res, fmt.Errorf("loadgen: write ids: %w", ids)
	}
	return res, nil
}

// WriteTable writes res for people.
func (res *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	note := ""
	if res.Interrupted {
		note = " (interrupted)"
	}
	fmt.Fprintf(&b, "spate loadgen %s → %s, %.1f s, at most %d in flight%s\n", res.Scenario, res.URL, res.Seconds, res.MaxInFlight, note)
	q := res.Requests
	fmt.Fprintf(&b, "  requests     %d due (%.1f/s): %d sent, %d answered; %d waited for a slot, %d dropped, %d never sent, %d unfinished\n",
		q.Scheduled, res.Offered, q.Sent, q.Answered, q.Queued, q.Dropped, q.Unstarted, q.Unfinished)
	fmt.Fprintf(&b, "  throughput   %.1f requests/s, %.1f events/s acknowledged (202)\n", res.RequestsPerSec, res.EventsPerSec)
	fmt.Fprintf(&b, "  events       %d sent, %d accepted (%d with server-assigned ids), %d rejected\n", res.Events.Sent, res.Events.Accepted, res.Events.ServerIDs, res.Events.Rejected)
	keys := make([]string, 0, len(res.Status))
	for k := range res.Status {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var st []string
	for _, k := range keys {
		st = append(st, fmt.Sprintf("%s: %d", k, res.Status[k]))
	}
	fmt.Fprintf(&b, "  status       %s\n", strings.Join(st, ", "))
	l := res.Latency
	fmt.Fprintf(&b, "  latency ms   p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (from when each request was due)\n", l.P50, l.P90, l.P99, l.Max)
	fmt.Fprintf(&b, "  start lag ms p99 %.2f  max %.2f\n", res.StartLag.P99, res.StartLag.Max)
	if bp := res.Breakpoint; bp != nil {
		if bp.Broke {
			fmt.Fprintf(&b, "  breakpoint   broke at %.0f s (%s); last passing window offered %.1f requests/s, got %.1f 202/s (≈ %.0f events/s)\n", bp.At, bp.Reason, bp.Rate, bp.Throughput, bp.Events)
		} else {
			fmt.Fprintf(&b, "  breakpoint   did not break; last window offered %.1f requests/s, got %.1f 202/s\n", bp.Rate, bp.Throughput)
		}
	}
	var failed []string
	for _, c := range res.Thresholds {
		if !c.OK {
			failed = append(failed, fmt.Sprintf("%s %.4g > %.4g", c.Name, c.Value, c.Limit))
		}
	}
	if len(failed) == 0 {
		b.WriteString("  thresholds   all passed\n")
	} else {
		fmt.Fprintf(&b, "  thresholds   FAILED: %s\n", strings.Join(failed, "; "))
	}
	if res.ErrorSample != "" {
		fmt.Fprintf(&b, "  first error  %s\n", res.ErrorSample)
	}
	if res.IDs > 0 {
		fmt.Fprintf(&b, "  ids          %d acknowledged event_ids written\n", res.IDs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
