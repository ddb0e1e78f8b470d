package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spate-dev/spate/loadgen"
	"github.com/spate-dev/spate/registry"
)

// errThresholds marks a run that completed but failed its thresholds: the
// report is printed, the exit status says so, as k6's does.
var errThresholds = errors.New("thresholds failed")

func runLoadgen(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: spate loadgen [flags]\n\nSends generated events (the mix of loadtest/) to URL/v1/events at a target\narrival rate, open-model, and reports throughput, status codes and latency\nmeasured from when each request was due. Always stops by itself.\n\nFlags:")
		fs.PrintDefaults()
	}
	target := fs.String("url", "http://127.0.0.1:8080", "ingest base URL (requests go to URL/v1/events)")
	scenario := fs.String("scenario", "steady", "load shape: "+strings.Join(loadgen.Scenarios, ", "))
	rate := fs.Float64("rate", 100, "requests/s: the steady rate, the spike's base, where breakpoint starts")
	peak := fs.Float64("peak-rate", 0, "spike top or breakpoint ramp end, requests/s (default: the k6 ratios, 4.2x and 8.3x --rate)")
	duration := fs.Duration("duration", 30*time.Second, "how long requests are scheduled")
	perRequest := fs.Int("events-per-request", 0, "events in every request (default: the realistic mix of single events and batches)")
	apiKey := fs.String("api-key", "", "X-Api-Key to send (default $SPATE_LOADGEN_API_KEY)")
	output := fs.String("output", "table", "report format: table or json")
	idsFile := fs.String("ids", "", "write the event_id of every acknowledged event to this file, one per line")
	maxInFlight := fs.Int("max-in-flight", 0, "concurrent requests at most (default: highest rate x 2 x p99 budget, at least 10)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout; the run ends at most this long after the schedule")
	p99 := fs.Duration("p99", 500*time.Millisecond, "p99 latency budget the thresholds judge (spike allows twice as much)")
	window := fs.Duration("window", 0, "interval results are broken down by and breakpoint judges (default 1s)")
	seed := fs.Uint64("seed", 1, "seed of the generated traffic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected arguments %q", fs.Args())
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("loadgen: --output %q: want table or json", *output)
	}
	if *perRequest < 0 || *perRequest > 500 {
		return fmt.Errorf("loadgen: --events-per-request %d: want 0 to 500", *perRequest)
	}
	sc, err := loadgen.NewScenario(*scenario, *rate, *peak, *duration, *p99)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	if *apiKey == "" {
		*apiKey = env.getenv("SPATE_LOADGEN_API_KEY")
	}
	cfg := loadgen.Config{
		URL: *target, APIKey: *apiKey, Scenario: sc, MaxInFlight: *maxInFlight, Timeout: *timeout, Window: *window,
		Seed: *seed, Traffic: loadgen.TrafficConfig{EventsPerRequest: *perRequest}, Registry: registry.New(registry.Limits{}),
	}
	var ids *os.File
	if *idsFile != "" {
		if ids, err = os.Create(*idsFile); err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
		defer ids.Close()
		cfg.IDs = ids
	}
	env.log.Info("loadgen", "scenario", sc.Name, "url", *target, "rate", *rate, "duration", duration.String())
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if ids != nil {
		if err := ids.Close(); err != nil {
			return fmt.Errorf("loadgen: close %s: %w", *idsFile, err)
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = res.WriteTable(env.stdout)
	}
	if err != nil {
		return fmt.Errorf("loadgen: write report: %w", err)
	}
	// Breaking is what a breakpoint run is for; other scenarios fail.
	if !sc.Abort && !res.OK() {
		return fmt.Errorf("loadgen %s: %w", sc.Name, errThresholds)
	}
	return nil
}
