package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/memstream"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// startLake subscribes the router, writing to the on-disk lake under
// <data>/lake, to stream: the same routing code the Lambda runs, with the
// lake in Firehose's place and its dead-letter files in SQS's. The stop
// func, called once the stream has drained, writes out the open files.
func startLake(ctx context.Context, cfg localConfig, stream *memstream.Stream, log *slog.Logger) (func(context.Context) error, error) {
	reg := registry.New(registry.Limits{})
	lk, err := lake.Open(reg, lake.Config{Dir: filepath.Join(cfg.DataDir, "lake"), FlushInterval: cfg.FlushInterval, Now: cfg.Now}, log.With("stage", "lake"))
	if err != nil {
		return nil, err
	}
	// Locally each type's delivery stream is its lake table.
	r, err := router.New(reg, lk, lk, router.Config{Streams: router.StreamNames(reg.Types(), "")}, log.With("stage", "router"))
	if err != nil {
		return nil, errors.Join(err, lk.Close(ctx))
	}
	stream.Subscribe(memstream.ConsumerConfig{Name: "router", BatchSize: 500}, r.Route)
	return func(ctx context.Context) error {
		err := lk.Close(ctx)
		rs, ls := r.Stats(), lk.Stats()
		log.Info("lake: stopped", "events", rs.Routed, "dead_lettered", rs.DeadLettered, "files", ls.Files, "rows", ls.Rows, "parquet_bytes", ls.FileBytes)
		if err != nil {
			return fmt.Errorf("lake close: %w", err)
		}
		return nil
	}, nil
}
