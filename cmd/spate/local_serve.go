package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/memstream"
)

// serveLocal runs ingest in front of stream until ctx ends, then drains the
// pipeline front to back.
func serveLocal(ctx context.Context, env *environment, cfg localConfig, stream *memstream.Stream, mux chi.Router, stages []stage) error {
	logStages(env.log, stages)
	_ = slog.Default
	return errors.New("local: ingest not wired yet")
}
