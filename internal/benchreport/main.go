// Command benchreport is `make bench`: it runs, in one go on this machine,
// the ingest benchmarks, the router and lake benchmarks, an HTTP load run
// of spate local against the decode-only ceiling, and an end-to-end run
// counting every acknowledged event in the lake, then rewrites the
// generated sections of docs/benchmarks.md. Everything runs on loopback
// and every step has a deadline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// run is one benchreport invocation.
type run struct {
	root     string // repository root
	goCmd    string
	tmp      string
	spateBin string
	started  time.Time
	runs     int // loadgen runs so far, to name their reports
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %5.0fs  %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	if err := runMain(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func runMain(args []string) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	out := fs.String("out", "docs/benchmarks.md", "the document to update")
	goCmd := fs.String("go", "go", "the go command")
	only := fs.String("only", "ingest,router-lake,http,e2e", "sections to run")
	limit := fs.Duration("timeout", 9*time.Minute, "the whole run's deadline")
	ceiling := fs.String("serve-ceiling", "", "serve the ceiling handler on this address (benchreport runs itself so)")
	p := httpPlan{}
	fs.Float64Var(&p.From, "http-from", 200, "breakpoint ramp start, requests/s")
	fs.Float64Var(&p.To, "http-to", 12000, "breakpoint ramp end, requests/s")
	fs.DurationVar(&p.Ramp, "http-ramp", 30*time.Second, "breakpoint ramp length")
	fs.DurationVar(&p.BreakP99, "break-p99", 100*time.Millisecond, "p99 budget the breakpoint judges by")
	fs.DurationVar(&p.Step, "step", 10*time.Second, "length of each sustained run of the peak search")
	fs.DurationVar(&p.Settle, "settle", 5*time.Second, "how soon the server must be idle after a sustained run for it to hold")
	fs.DurationVar(&p.Steady, "steady", 20*time.Second, "length of the run at a share of the peak")
	fs.Float64Var(&p.Share, "share", 0.7, "share of the peak for the steady run")
	fs.DurationVar(&p.TargetP99, "target-p99", 50*time.Millisecond, "p99 target at that share")
	fs.DurationVar(&p.E2E, "e2e", 15*time.Second, "length of the end-to-end run")
	fs.DurationVar(&p.FlushInterval, "flush-interval", 2*time.Second, "spate local --flush-interval")
	e2eRate := fs.Float64("e2e-rate", 0, "end-to-end rate, requests/s (default: half the peak)")
	work := fs.String("work", "", "keep binaries, logs, lakes and reports in this directory (default: a temporary one, removed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ceiling != "" {
		return serveCeiling(*ceiling)
	}
	want := strings.Split(*only, ",")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()

	root, err := os.Getwd()
	if err != nil {
		return err
	}
	tmp := *work
	if tmp == "" {
		if tmp, err = os.MkdirTemp("", "spate-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
	} else if tmp, err = filepath.Abs(tmp); err != nil {
		return err
	} else if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	r := &run{root: root, goCmd: *goCmd, tmp: tmp, started: time.Now()}
	m := readMachine(ctx, r.goCmd)

	var sections []section
	var errs []error
	if slices.Contains(want, "ingest") {
		s, err := r.ingestSection(ctx)
		errs = append(errs, err)
		if err == nil {
			sections = append(sections, s)
		}
	}
	if slices.Contains(want, "router-lake") {
		ss, err := r.routerLakeSections(ctx)
		errs = append(errs, err)
		sections = append(sections, ss...)
	}
	peak := 0.0
	if slices.Contains(want, "http") || slices.Contains(want, "e2e") {
		r.spateBin = filepath.Join(tmp, "spate")
		r.logf("building spate")
		build := exec.CommandContext(ctx, r.goCmd, "build", "-trimpath", "-o", r.spateBin, "./cmd/spate")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("go build ./cmd/spate: %w", err))...)
		}
	}
	if slices.Contains(want, "http") {
		s, pk, err := r.httpSection(ctx, p)
		errs = append(errs, err)
		if err == nil {
			sections = append(sections, s)
			peak = pk
		}
	}
	if slices.Contains(want, "e2e") {
		rate := *e2eRate
		if rate == 0 {
			// Correctness, not speed, is the point here: leave headroom
			// for the other tenants of the machine.
			rate = math.Round(peak / 2)
		}
		if rate <= 0 {
			rate = 200
		}
		s, err := r.e2eSection(ctx, p, rate)
		errs = append(errs, err)
		if s.name != "" {
			sections = append(sections, s)
		}
	}
	m.loadEnd, m.psiEnd = loadAvg(), cpuPressure()
	m.took = time.Since(r.started)
	sections = append([]section{{name: "run", body: m.render(want)}}, sections...)

	path := *out
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc, err := splice(string(old), sections)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return err
	}
	r.logf("wrote %s", *out)
	return errors.Join(errs...)
}

// machine is what the figures were measured on.
type machine struct {
	cpus          int
	model, goVer  string
	date          time.Time
	load, loadEnd string
	psi, psiEnd   string
	took          time.Duration
}

func readMachine(ctx context.Context, goCmd string) machine {
	m := machine{cpus: runtime.NumCPU(), date: time.Now().UTC(), load: loadAvg(), psi: cpuPressure(), goVer: runtime.Version()}
	if out, err := exec.CommandContext(ctx, goCmd, "version").Output(); err == nil {
		m.goVer = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (m machine) render(sections []string) string {
	var b strings.Builder
	b.WriteString("The sections marked as generated are rewritten by `make bench` (`go run ./internal/benchreport`), which runs all of them in one go on one machine; text outside the `<!-- bench:… -->` markers is written by hand and kept.\n\n")
	fmt.Fprintf(&b, "Last `make bench`: %s, sections %s, took %s. Machine: `nproc` %d; CPU `%s`; `%s`; load average %s at the start and %s at the end; CPU pressure (PSI `some avg10`) %s at the start and %s at the end.\n\n",
		m.date.Format("2006-01-02 15:04 UTC"), strings.Join(sections, ", "), m.took.Round(time.Second), m.cpus, m.model, m.goVer, m.load, m.loadEnd, m.psi, m.psiEnd)
	b.WriteString("**Absolute figures are noisy**: the 2 cores are shared with other engineers' builds and tests, and the load average above is theirs as much as ours. Compare the **ratios**, which come from the same run minutes apart, and the per-CPU-second figures, which count only the process measured.\n")
	return b.String()
}
