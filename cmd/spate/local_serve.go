package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/memstream"
	"github.com/spate-dev/spate/prom"
)

// serveLocal runs ingest in front of stream until ctx ends, then drains the
// pipeline front to back: requests, producer, stream, then each stage.
func serveLocal(ctx context.Context, env *environment, cfg localConfig, stream *memstream.Stream, mux chi.Router, stages []stage) error {
	// The in-process stream throttles when its consumers fall behind, as a
	// full shard would: the same bounded retries apply, then 503.
	sink := batch.Retry(stream, batch.RetryConfig{MaxAttempts: 6})
	f, err := newFront(frontConfig{Addr: cfg.Addr, DrainTimeout: 30 * time.Second, AckMode: "durable", HTTP: ingest.Config{Now: cfg.Now}}, sink, env.log)
	if err != nil {
		return err
	}
	metrics := prom.New(prom.Sources{
		Ingest:   func() ingest.Snapshot { return f.server.Stats().Snapshot() },
		Producer: f.producer.Stats,
	})
	mux.Mount("/", f.server.Routes())
	mux.Handle("/metrics", metrics.Handler())

	streamDone := make(chan error, 1)
	go func() { streamDone <- stream.Run(context.WithoutCancel(ctx)) }()
	env.log.Info("local pipeline", "data", cfg.DataDir, "flush_interval", cfg.FlushInterval.String(), "window", cfg.Window.String(), "reward_urls", len(cfg.RewardURLs))

	serveErr := f.serve(ctx, mux)
	stream.Close()
	var errs []error
	if serveErr != nil {
		errs = append(errs, serveErr)
	}
	if err := <-streamDone; err != nil {
		errs = append(errs, fmt.Errorf("stream: %w", err))
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range stages {
		if err := s.stop(sctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
		}
	}
	if len(errs) == 0 {
		env.log.Info("stopped cleanly")
	}
	return errors.Join(errs...)
}
