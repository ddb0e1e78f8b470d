package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/memstream"
)

// localConfig is what `spate local` is configured with; the lake and reward
// stages read their parts of it.
type localConfig struct {
	Addr          string
	DataDir       string
	FlushInterval time.Duration
	Window        time.Duration
	RewardURLs    []string
	Shards        int
	// Now is local mode's one clock: the stream, the lake's partitions,
	// ingest's received_at, window closes and the reward sender's MaxAge
	// all read it.
	Now func() time.Time
}

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint([]string(*l)) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseLocal(args []string, env *environment) (localConfig, error) {
	cfg := localConfig{}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP listen address for ingest (and the demo reward receiver)")
	fs.StringVar(&cfg.DataDir, "data", "./data", "directory for the lake (<data>/lake/<type>/dt=YYYY-MM-DD/hour=HH/*.parquet)")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", 60*time.Second, "how long the lake buffers a type's events before writing a file (like Firehose's buffer interval)")
	fs.DurationVar(&cfg.Window, "window", 60*time.Second, "tumbling window of the real-time aggregates (at most 15m)")
	fs.Var((*stringList)(&cfg.RewardURLs), "reward-url", "reward API URL to POST aggregates to (repeatable); none: the built-in demo receiver")
	fs.IntVar(&cfg.Shards, "shards", 4, "shards of the in-process stream")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.Window <= 0 || cfg.Window > 15*time.Minute {
		return cfg, errors.New("--window must be between 1s and 15m")
	}
	if cfg.FlushInterval <= 0 {
		return cfg, errors.New("--flush-interval must be positive")
	}
	return cfg, nil
}

// stage is a part of the local pipeline behind the stream. Start subscribes
// to the stream (before it runs); Stop flushes whatever it buffers once the
// stream has drained.
type stage struct {
	name string
	stop func(ctx context.Context) error
}

func runLocal(ctx context.Context, env *environment, args []string) error {
	cfg, err := parseLocal(args, env)
	if err != nil {
		return err
	}
	cfg.Now = clock.Or(env.now)
	stream := memstream.New(memstream.Config{Shards: cfg.Shards, Now: cfg.Now})
	mux := chi.NewRouter()
	var stages []stage
	lakeStop, err := startLake(ctx, cfg, stream, env.log)
	if err != nil {
		return fmt.Errorf("start lake: %w", err)
	}
	stages = append(stages, stage{"lake", lakeStop})
	rewardStop, err := startRewards(ctx, cfg, stream, mux, env.log)
	if err != nil {
		return fmt.Errorf("start rewards: %w", err)
	}
	stages = append(stages, stage{"rewards", rewardStop})
	return serveLocal(ctx, env, cfg, stream, mux, stages)
}
