package main

import (
	"context"
	"log/slog"

	"github.com/spate-dev/spate/memstream"
)

// startLake subscribes the router, writing to the on-disk lake, to stream.
func startLake(ctx context.Context, cfg localConfig, stream *memstream.Stream, log *slog.Logger) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}
