package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/diskstream"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/local"
	"github.com/spate-dev/spate/memstream"
	"github.com/spate-dev/spate/prom"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// localConfig is what `spate local` is configured with.
type localConfig struct {
	Addr          string
	DataDir       string
	FlushInterval time.Duration
	Window        time.Duration
	RewardURLs    []string
	Shards        int
	MaxDisk       int64
	Stream        string // disk or memory
	Schemas       string // directory replacing the embedded schemas
	// Now is local mode's one clock: the stream's arrival stamps, the
	// lake's partitions, ingest's received_at, window closes and the
	// reward sender's MaxAge all read it.
	Now         func() time.Time
	MetricsAddr string
	BodyTimeout time.Duration
	BodyMemory  int64
	MaxConns    int
}

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint([]string(*l)) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// byteSize is a flag of bytes with an optional KiB, MiB, GiB (or KB, MB,
// GB) suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Set(v string) error {
	n, err := parseBytes(v)
	*b = byteSize(n)
	return err
}

func parseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := v, int64(1)
	for _, u := range units {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = s, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, KiB, MiB or GiB", v)
	}
	return n * mult, nil
}

func parseLocal(args []string, env *environment) (localConfig, error) {
	cfg := localConfig{MaxDisk: 1 << 30}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP listen address for ingest (and the demo reward receiver)")
	fs.StringVar(&cfg.DataDir, "data", "./data", "directory for the stream (<data>/stream) and the lake (<data>/lake/<type>/dt=YYYY-MM-DD/hour=HH/*.parquet)")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", 60*time.Second, "how long the lake buffers events before committing its files (like Firehose's buffer interval)")
	fs.DurationVar(&cfg.Window, "window", 60*time.Second, "tumbling window of the real-time aggregates (at most 15m)")
	fs.Var((*stringList)(&cfg.RewardURLs), "reward-url", "reward API URL to POST aggregates to (repeatable); none: the built-in demo receiver")
	fs.StringVar(&cfg.Stream, "stream", "disk", "disk: the durable stream under <data>/stream (a 202 survives kill -9); memory: in memory, for benchmarks (a crash loses what is not yet in the lake)")
	fs.IntVar(&cfg.Shards, "shards", 4, "shards of the stream (fixed when <data>/stream is created)")
	fs.StringVar(&cfg.Schemas, "schemas", env.getenv("SPATE_SCHEMAS"), "directory of event schemas replacing the embedded ones (default $SPATE_SCHEMAS)")
	fs.Var((*byteSize)(&cfg.MaxDisk), "max-disk", "most disk the stream may use (e.g. 512MiB, 4GiB); when it is full ingest answers 503 until the consumers catch up")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "listen address of GET /metrics; empty: served on --addr")
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", 5*time.Second, "longest a request body may take to arrive after its headers (408 after)")
	fs.Int64Var(&cfg.BodyMemory, "body-memory", 0, "bytes all request bodies may hold at once (503 beyond); 0: 1/64 of the memory limit, else 64 MiB")
	fs.IntVar(&cfg.MaxConns, "max-conns", 4096, "open connections at most")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.Window <= 0 || cfg.Window > 15*time.Minute {
		return cfg, errors.New("--window must be between 1s and 15m")
	}
	if cfg.FlushInterval <= 0 {
		return cfg, errors.New("--flush-interval must be positive")
	}
	if cfg.Stream != "disk" && cfg.Stream != "memory" {
		return cfg, errors.New("--stream must be disk or memory")
	}
	if cfg.MaxDisk < 1<<20 {
		return cfg, errors.New("--max-disk must be at least 1MiB")
	}
	return cfg, nil
}

func runLocal(ctx context.Context, env *environment, args []string) error {
	cfg, err := parseLocal(args, env)
	if err != nil {
		return err
	}
	log := env.log
	cfg.Now = clock.Or(env.now)
	reg, err := registry.FromDir(cfg.Schemas, registry.Limits{})
	if err != nil {
		return fmt.Errorf("--schemas: %w", err)
	}
	stream, srec, err := openLocalStream(cfg)
	if err != nil {
		return err
	}
	defer stream.Close()
	lk, err := lake.Open(reg, lake.Config{Dir: filepath.Join(cfg.DataDir, "lake"), FlushInterval: cfg.FlushInterval, ManualFlush: true, Now: cfg.Now}, log.With("stage", "lake"))
	if err != nil {
		return err
	}
	defer lk.Close(context.Background())
	// Locally each type's delivery stream is its lake table.
	r, err := router.New(reg, lk, lk, router.Config{Streams: tables(reg)}, log.With("stage", "router"))
	if err != nil {
		return err
	}
	// Which types count, and which fields key the aggregates, come from
	// the schemas' annotations.
	folder, err := aggregate.New(aggregate.Config{Window: cfg.Window, Counted: reg.Counted(), KeyFields: reg.KeyFields()})
	if err != nil {
		return err
	}
	mux := chi.NewRouter()
	rewarders, err := localRewarders(cfg.RewardURLs, mux, cfg.Now)
	if err != nil {
		return err
	}
	// The failed-events keeper starts before the pipeline, so nothing
	// between the pipeline's start and listening changes.
	keeper, stopFailed, err := startFailed(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	p, rec, err := local.Start(ctx, local.Config{
		Stream: stream, Lake: lk, Router: r, FlushInterval: cfg.FlushInterval,
		Folder: folder, Rewarders: rewarders, Now: cfg.Now, Log: log,
		Crash: crashAt(env.getenv("SPATE_CRASH_AT"), log),
	})
	if err != nil {
		return errors.Join(fmt.Errorf("local: %w", err), stopFailed(context.Background()))
	}
	log.Info("recovered", "stream_records", srec.Records, "stream_bytes", srec.Bytes, "replay_records", rec.ReplayRecords,
		"lake_files_rolled_forward", rec.RolledForward, "tmp_files_removed", rec.TempRemoved, "outbox_aggregates", rec.OutboxPending)
	if len(cfg.RewardURLs) == 0 {
		log.Info("demo reward receiver", "post", "/v1/rewards", "totals", "/v1/rewards/totals", "thumbnails", "/v1/thumbnails/{content_id}")
	}

	// A full stream throttles, as a full Kinesis shard would: the same
	// bounded retries apply, then 503 with Retry-After.
	sink := batch.Retry(stream, batch.RetryConfig{MaxAttempts: 6})
	f, err := newFront(frontConfig{
		Addr: cfg.Addr, MetricsAddr: cfg.MetricsAddr, DrainTimeout: 30 * time.Second, AckMode: "durable", Registry: reg,
		HTTP:   ingest.Config{Now: cfg.Now, BodyTimeout: cfg.BodyTimeout, BodyMemory: cfg.BodyMemory, MaxConns: cfg.MaxConns, Failed: keeper},
		Memory: memorySettings{getenv: env.getenv},
	}, sink, log)
	if err != nil {
		stream.Seal()
		return errors.Join(err, p.Stop(context.Background()), stopFailed(context.Background()))
	}
	src := prom.Sources{
		Ingest:   func() ingest.Snapshot { return f.server.Stats().Snapshot() },
		Producer: f.producer.Stats,
		Failed:   keeper.Stats,
	}
	if ds, ok := stream.(*diskstream.Stream); ok {
		src.Stream = ds.Stats
	}
	metrics := prom.New(src)
	mux.Mount("/", f.server.Routes())
	log.Info("local pipeline", "stream", cfg.Stream, "data", cfg.DataDir, "flush_interval", cfg.FlushInterval.String(), "window", cfg.Window.String(),
		"reward_urls", len(cfg.RewardURLs), "max_disk", cfg.MaxDisk)

	// Drain front to back: requests and producer (everything answered 202
	// is in the stream), then the consumers and the outbox.
	var errs []error
	if err := f.serve(ctx, mux, metrics.Handler()); err != nil {
		errs = append(errs, err)
	}
	stream.Seal()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := stopFailed(sctx); err != nil {
		errs = append(errs, err)
	}
	if ds, ok := stream.(*diskstream.Stream); ok {
		st := ds.Stats()
		log.Info("stream: stopped", "records", st.Records, "commits", st.Commits, "throttled", st.Throttled, "retained_bytes", st.Retained, "file_bytes", st.FileBytes)
	}
	if len(errs) == 0 {
		log.Info("stopped cleanly")
	}
	return errors.Join(errs...)
}

// localStream is what local mode needs of its stream.
type localStream interface {
	local.Log
	spate.Sink
	Seal()
	Close() error
}

// openLocalStream opens the durable stream, or with --stream memory an
// in-memory one.
func openLocalStream(cfg localConfig) (localStream, diskstream.Recovered, error) {
	if cfg.Stream == "memory" {
		l, err := memstream.NewLog(memstream.LogConfig{Shards: cfg.Shards, Consumers: local.Consumers, Now: cfg.Now})
		return memLog{l}, diskstream.Recovered{}, err
	}
	s, rec, err := diskstream.Open(filepath.Join(cfg.DataDir, "stream"),
		diskstream.Config{Shards: cfg.Shards, Consumers: local.Consumers, MaxBytes: cfg.MaxDisk, Now: cfg.Now})
	if err != nil {
		return nil, rec, err
	}
	return s, rec, nil
}

type memLog struct{ *memstream.Log }

func (memLog) Close() error { return nil }

// crashAt returns the crash hook of SPATE_CRASH_AT=<point>[:<n>]: the
// process kills itself (SIGKILL) the n-th time it passes point (see the
// local package's Crash* points). The crash test sets it; unset, nil.
func crashAt(spec string, log *slog.Logger) func(string) {
	if spec == "" {
		return nil
	}
	point, nth, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 {
		n = 1
	}
	var hits atomic.Int64
	return func(p string) {
		if p == point && hits.Add(1) == int64(n) {
			log.Warn("crash point reached: SIGKILL", "point", p, "hit", n)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
