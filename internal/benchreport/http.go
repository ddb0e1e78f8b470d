package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/loadgen"
)

// ceilingHandler is the HTTP ceiling: the minimal chi handler of the ingest
// benchmark (decode the JSON, answer 202), plus what a real client's
// bodies need (gzip) and the answer loadgen reads.
func ceilingHandler() http.Handler {
	r := chi.NewRouter()
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	r.Post("/v1/events", func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		var v map[string]any
		if err := json.NewDecoder(body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := 1
		if evs, ok := v["events"].([]any); ok {
			n = len(evs)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"accepted":%d,"rejected":[]}`+"\n", n)
	})
	return r
}

// serveCeiling serves the ceiling on addr until SIGTERM: benchreport runs
// itself this way, so the ceiling is a process of its own like spate local.
func serveCeiling(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ceilingHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// httpPlan is how the HTTP runs are shaped.
type httpPlan struct {
	From, To      float64       // breakpoint ramp, requests/s
	Ramp          time.Duration // breakpoint length
	BreakP99      time.Duration // budget breakpoint judges by
	Steady        time.Duration // length of the run at a share of the peak
	Share         float64       // of the peak, for the steady run
	TargetP99     time.Duration // what the steady run must stay under
	Step          time.Duration // length of each sustained run of the peak search
	Settle        time.Duration // how soon the server must be idle after one
	E2E           time.Duration // length of the end-to-end run
	FlushInterval time.Duration // spate local's lake buffer interval
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

func fmtRate(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// peakOf is the breakpoint's answer: the last passing window's offered rate.
func peakOf(lr *loadRun) (rate float64, broke bool) {
	if bp := lr.res.Breakpoint; bp != nil {
		return bp.Rate, bp.Broke
	}
	return 0, false
}

// step is one sustained run at a fixed rate while searching for the peak.
type step struct {
	lr     *loadRun
	rate   float64
	settle time.Duration // how long the server took to go idle after it
	holds  bool
}

// sustain runs rate for p.Step and judges it: at most 1 % of requests not
// answered 202 or over the breakpoint budget, and the server idle again
// within p.Settle, so no stage behind ingest (stream, router, lake) was
// left with a backlog the run did not see.
func (r *run) sustain(ctx context.Context, s *server, p httpPlan, rate float64) (step, error) {
	lr, err := r.loadgen(ctx, s, "sustained", "--scenario", "steady", "--rate", fmtRate(rate), "--duration", p.Step.String(), "--p99", ms(p.BreakP99))
	if err != nil {
		return step{}, err
	}
	st := step{lr: lr, rate: rate, settle: s.settle(30 * time.Second)}
	res := lr.res
	n := float64(max(res.Requests.Scheduled, 1))
	over := 1.0
	for _, c := range res.Thresholds {
		if c.Name == "over_p99_budget" {
			over = c.Value
		}
	}
	st.holds = float64(res.Requests.Scheduled-res.Status["202"])/n <= 0.01 && over <= 0.01 && st.settle <= p.Settle
	verdict := "holds"
	if !st.holds {
		verdict = "does not hold"
	}
	r.logf("%s at %s/s: %s (p99 %.1f ms, %d not 202, idle after %v)", s.name, fmtRate(rate), verdict,
		res.Latency.P99, res.Requests.Scheduled-res.Status["202"], st.settle.Round(100*time.Millisecond))
	return st, nil
}

// findPeak ramps to where s breaks, then steps down from there until a
// sustained run holds, and halves the gap to the step above it once: a
// ramp alone overestimates a pipeline whose buffers absorb seconds of
// overload. The peak is the highest rate that held; it is only a lower
// bound (capped) when the ramp never broke and its top held.
func (r *run) findPeak(ctx context.Context, s *server, p httpPlan) (bp *loadRun, steps []step, peak float64, capped bool, err error) {
	r.logf("%s settled in %v", s.name, s.settle(20*time.Second).Round(100*time.Millisecond))
	bp, err = r.loadgen(ctx, s, "breakpoint", "--scenario", "breakpoint", "--rate", fmtRate(p.From), "--peak-rate", fmtRate(p.To), "--duration", p.Ramp.String(), "--p99", ms(p.BreakP99))
	if err != nil {
		return nil, nil, 0, false, err
	}
	top, broke := peakOf(bp)
	if top <= 0 {
		top = p.From
	}
	fractions := []float64{0.8, 0.65, 0.5, 0.4, 0.3, 0.2}
	if !broke {
		// Nothing broke: try the ramp's top itself first.
		fractions = append([]float64{1}, fractions...)
	}
	s.settle(30 * time.Second)
	for i, f := range fractions {
		st, err := r.sustain(ctx, s, p, math.Round(top*f))
		if err != nil {
			return nil, nil, 0, false, err
		}
		steps = append(steps, st)
		if !st.holds {
			continue
		}
		peak = st.rate
		if !broke && i == 0 {
			return bp, steps, peak, true, nil
		}
		above := 1.0 // the ramp's answer, when the first step holds
		if i > 0 {
			above = fractions[i-1]
		}
		mid, err := r.sustain(ctx, s, p, math.Round(top*(f+above)/2))
		if err != nil {
			return nil, nil, 0, false, err
		}
		steps = append(steps, mid)
		if mid.holds {
			peak = mid.rate
		}
		return bp, steps, peak, false, nil
	}
	return bp, steps, 0, false, nil
}

// notAccepted counts the requests due that got no 202, and why: the
// server's answers, connection errors, or loadgen's own limits (dropped:
// every slot and the backlog busy, so never sent).
func notAccepted(res *loadgen.Result) string {
	n := res.Requests.Scheduled - res.Status["202"]
	if n == 0 {
		return "0"
	}
	var why []string
	for _, k := range slices.Sorted(maps.Keys(res.Status)) {
		if k != "202" {
			why = append(why, fmt.Sprintf("%s %s", k, num(float64(res.Status[k]), 0)))
		}
	}
	if d := res.Requests.Dropped + res.Requests.Unstarted; d > 0 {
		why = append(why, "not sent "+num(float64(d), 0))
	}
	return num(float64(n), 0) + " (" + strings.Join(why, ", ") + ")"
}

// httpSection drives spate local and the ceiling over loopback HTTP: find
// each one's peak, then run both at a share of spate's.
func (r *run) httpSection(ctx context.Context, p httpPlan) (section, float64, error) {
	local, err := r.start(ctx, "spate-local", r.spateBin, "local", "--addr", "ADDR", "--data", r.tmp+"/http-data", "--flush-interval", p.FlushInterval.String())
	if err != nil {
		return section{}, 0, err
	}
	defer local.kill()
	self, err := os.Executable()
	if err != nil {
		return section{}, 0, err
	}
	ceil, err := r.start(ctx, "ceiling", self, "-serve-ceiling", "ADDR")
	if err != nil {
		return section{}, 0, err
	}
	defer ceil.kill()

	spBreak, spSteps, peak, capped, err := r.findPeak(ctx, local, p)
	if err != nil {
		return section{}, 0, err
	}
	if peak <= 0 {
		return section{}, 0, fmt.Errorf("spate local: no sustained rate held (see %s)", local.log.Name())
	}
	ceBreak, ceSteps, cePeak, ceCapped, err := r.findPeak(ctx, ceil, p)
	if err != nil {
		return section{}, 0, err
	}

	steadyRate := math.Round(peak * p.Share)
	steadyArgs := []string{"--scenario", "steady", "--rate", fmtRate(steadyRate), "--duration", p.Steady.String(), "--p99", ms(p.TargetP99)}
	var steady []*loadRun
	for _, s := range []*server{local, ceil} {
		r.logf("%s settled in %v", s.name, s.settle(20*time.Second).Round(100*time.Millisecond))
		lr, err := r.loadgen(ctx, s, "steady", steadyArgs...)
		if err != nil {
			return section{}, 0, err
		}
		steady = append(steady, lr)
	}
	spSteady, ceSteady := steady[0], steady[1]
	if err := local.stop(60 * time.Second); err != nil {
		return section{}, 0, err
	}
	if err := ceil.stop(30 * time.Second); err != nil {
		return section{}, 0, err
	}

	var b strings.Builder
	b.WriteString("```\n")
	fmt.Fprintf(&b, "spate local --addr 127.0.0.1:PORT --data TMP --flush-interval %s\n", p.FlushInterval)
	fmt.Fprintf(&b, "%s\n", spBreak.cmdline)
	fmt.Fprintf(&b, "spate loadgen --url http://127.0.0.1:PORT --scenario steady --rate R --duration %s --p99 %s   # R stepping down from the ramp's answer\n", p.Step, ms(p.BreakP99))
	fmt.Fprintf(&b, "%s\n", spSteady.cmdline)
	b.WriteString("```\n\n")
	fmt.Fprintf(&b, "`spate local` (the binary `make build` makes: ingest → in-process stream → router → Parquet lake, and the aggregator) on 127.0.0.1, driven by `spate loadgen` from a second process on the same 2 cores: the realistic request mix of `loadtest/` (about 4.5 events per request; single events, shelves of impressions, gzipped offline flushes), open-model pacing, latency counted from when each request was due.\n\n")
	fmt.Fprintf(&b, "Finding the peak takes two steps. A breakpoint run ramps the offered rate from %s to %s requests/s over %s, judged in 1 s windows, and stops at the third window in a row that breaks a threshold (errors > 1 %%, 503s > 1 %%, or more than 1 %% of requests over %s). A ramp overestimates a pipeline whose buffers absorb seconds of overload, so sustained runs of %s follow, at 80 %%, 65 %%, 50 %%, … of the ramp's answer (from 100 %% if the ramp never broke), and one more halfway between the first that holds and the step (or the ramp's answer) above it. The highest that holds is the peak. To hold, at most 1 %% of requests may miss a 202 or the %s budget, and the server must be idle again within %s afterwards, so that no stage behind ingest was left with a backlog. A steady run at %.0f %% of spate's peak then checks the p99 target (%s). The ceiling gets the same search and the same steady rate. It is the ingest benchmark's decode-only chi handler plus gunzip, in a process of its own.\n\n",
		fmtRate(p.From), fmtRate(p.To), p.Ramp, ms(p.BreakP99), p.Step, ms(p.BreakP99), p.Settle, 100*p.Share, ms(p.TargetP99))

	var rows [][]string
	add := func(target, run string, lr *loadRun, extra string) {
		res := lr.res
		perCPU := "–"
		if lr.cpu > 0 {
			perCPU = num(float64(res.Events.Accepted)/lr.cpu.Seconds(), 0)
		}
		rows = append(rows, []string{target, run + extra, lr.load + " / " + lr.psi, num(res.RequestsPerSec, 0), num(res.EventsPerSec, 0),
			num(res.Latency.P50, 1), num(res.Latency.P99, 1), num(res.Latency.Max, 1),
			notAccepted(res), num(lr.cpu.Seconds(), 1), perCPU, num(lr.genCPU.Seconds(), 1)})
	}
	for _, t := range []struct {
		name  string
		bp    *loadRun
		steps []step
	}{{"spate local", spBreak, spSteps}, {"ceiling", ceBreak, ceSteps}} {
		bp := t.bp.res.Breakpoint
		if bp != nil && bp.Broke {
			add(t.name, fmt.Sprintf("ramp: %s/s before it broke at %.0f s (%s)", num(bp.Rate, 0), bp.At, bp.Reason), t.bp, "")
		} else if bp != nil {
			add(t.name, fmt.Sprintf("ramp: did not break by %s/s", num(bp.Rate, 0)), t.bp, "")
		}
		for _, st := range t.steps {
			verdict := "holds"
			if !st.holds {
				verdict = "does not hold"
			}
			add(t.name, fmt.Sprintf("sustained %s/s: %s", fmtRate(st.rate), verdict), st.lr, fmt.Sprintf(", idle %.1f s after", st.settle.Seconds()))
		}
	}
	add("spate local", fmt.Sprintf("steady %s/s (%.0f %% of peak)", fmtRate(steadyRate), 100*p.Share), spSteady, "")
	add("ceiling", fmt.Sprintf("steady %s/s", fmtRate(steadyRate)), ceSteady, "")
	b.WriteString(table([]string{"target", "run", "load / CPU pressure", "202 req/s", "events/s", "p50 ms", "p99 ms", "max ms", "not 202", "server CPU-s", "events per server CPU-s", "loadgen CPU-s"}, rows))

	evPerReq := 0.0
	if res := spSteady.res; res.Status["202"] > 0 {
		evPerReq = float64(res.Events.Accepted) / float64(res.Status["202"])
	}
	atLeast := func(capped bool) string {
		if capped {
			return "at least "
		}
		return ""
	}
	ceilNote := fmt.Sprintf("The ceiling's peak: %s%s requests/s; spate local sustains %s of it.", atLeast(ceCapped), num(cePeak, 0), ratio(peak, cePeak))
	switch {
	case cePeak == 0:
		ceilNote = "The ceiling held at none of its steps (see the table), so there is no ratio this run."
	case ceCapped && capped:
		ceilNote += " Both held at the top of the ramp, so the ratio says only that neither broke."
	case ceCapped:
		ceilNote += " The ceiling held at the top of the ramp, so the ratio is an upper bound."
	case capped:
		ceilNote += " Spate held at the top of the ramp, so the ratio is a lower bound."
	}
	fmt.Fprintf(&b, "\n- **Peak of spate local: %s%s requests/s sustained** (≈ %s events/s). %s\n", atLeast(capped), num(peak, 0), num(peak*evPerReq, 0), ceilNote)
	machineNote := ""
	if ceSteady.res.Latency.P99 >= float64(p.TargetP99.Milliseconds()) {
		machineNote = ", over the target too: the machine, not only spate, set the limit during that run"
	}
	verdict := "meets"
	if spSteady.res.Latency.P99 >= float64(p.TargetP99.Milliseconds()) || spSteady.res.Requests.Scheduled != spSteady.res.Status["202"] {
		verdict = "misses"
	}
	fmt.Fprintf(&b, "- **At %.0f %% of the peak (%s requests/s, %s events/s acknowledged) spate local's p99 is %s ms**, which %s the %s target. %s of %s requests were not answered 202. The ceiling's p99 at the same rate is %s ms%s. Up to 10 ms of spate's latency is by design: a 202 waits until the producer's batch (linger 10 ms, `SPATE_BATCH_LINGER`) is written to the stream.\n",
		100*p.Share, fmtRate(steadyRate), num(spSteady.res.EventsPerSec, 0), num(spSteady.res.Latency.P99, 1), verdict, ms(p.TargetP99),
		num(float64(spSteady.res.Requests.Scheduled-spSteady.res.Status["202"]), 0), num(float64(spSteady.res.Requests.Scheduled), 0), num(ceSteady.res.Latency.P99, 1), machineNote)
	if spSteady.cpu > 0 && ceSteady.cpu > 0 {
		fmt.Fprintf(&b, "- Server CPU at the same rate: spate local used %s the ceiling's (%s vs %s CPU-s). That buys the whole local pipeline (validation, durable ack, stream, router, Parquet, aggregates), where the ceiling only decodes.\n",
			ratio(spSteady.cpu.Seconds(), ceSteady.cpu.Seconds()), num(spSteady.cpu.Seconds(), 1), num(ceSteady.cpu.Seconds(), 1))
	}
	b.WriteString("- loadgen shares the 2 cores with the server it measures; its CPU is the last column. So a peak here is what one machine does with its own generator, not a server's capacity alone. The load column is the machine's 1-minute load average when the run started, other engineers' builds and fuzzers included; CPU pressure is the share of the run's last 10 s in which some task waited for a CPU (Linux PSI `some avg10`). The start lag loadgen reports (how late it sent requests) is inside every latency here.\n")
	return section{name: "http", title: "## HTTP load: spate local over loopback", body: b.String()}, peak, nil
}

// best is the breakpoint run that found the higher peak.
func best(runs []*loadRun) *loadRun {
	top, topRate := runs[0], 0.0
	for _, lr := range runs {
		if rate, _ := peakOf(lr); rate > topRate {
			top, topRate = lr, rate
		}
	}
	return top
}
