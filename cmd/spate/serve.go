package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/registry"
)

// frontConfig is what ingest and local mode share: the HTTP API and the
// producer in front of a sink.
type frontConfig struct {
	Addr         string
	MetricsAddr  string // "": /metrics is served on Addr with the API
	Memory       memorySettings
	DrainTimeout time.Duration
	AckMode      string // durable or buffered
	HTTP         ingest.Config
	Producer     batch.Config
	// Registry is the compiled schemas (required: the callers load them
	// from --schemas or SPATE_SCHEMAS).
	Registry *registry.Registry
}

// front is the ingest HTTP service bound to a producer.
type front struct {
	server   *ingest.Server
	producer *batch.Producer
	http     *http.Server
	ln       net.Listener
	metrics  net.Listener // nil: /metrics is on ln
	cfg      frontConfig
	log      *slog.Logger
}

func newFront(cfg frontConfig, sink spate.Sink, log *slog.Logger) (*front, error) {
	if cfg.AckMode != "durable" && cfg.AckMode != "buffered" {
		return nil, fmt.Errorf("ack mode %q: want durable or buffered", cfg.AckMode)
	}
	cfg.HTTP.BodyMemory = cfg.Memory.apply(cfg.HTTP.BodyMemory, log)
	producer := batch.NewProducer(sink, cfg.Producer, log.With("subsystem", "producer"))
	var p ingest.Producer = producer
	if cfg.AckMode == "buffered" {
		p = bufferedAck{producer}
	}
	srv := ingest.New(cfg.Registry, p, cfg.HTTP, log.With("subsystem", "http"))
	ln, err := srv.Listen(cfg.Addr)
	if err != nil {
		_ = producer.Close(context.Background())
		return nil, err
	}
	f := &front{server: srv, producer: producer, ln: ln, cfg: cfg, log: log}
	if cfg.MetricsAddr != "" {
		if f.metrics, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			_ = ln.Close()
			_ = producer.Close(context.Background())
			return nil, fmt.Errorf("listen %s (metrics): %w", cfg.MetricsAddr, err)
		}
	}
	return f, nil
}

// bufferedAck answers as soon as the events are buffered: faster, but a
// SIGKILL loses what was buffered (see docs/reliability.md).
type bufferedAck struct{ p *batch.Producer }

func (b bufferedAck) Submit(recs []spate.Record) (*batch.Ticket, error) {
	if _, err := b.p.Submit(recs); err != nil {
		return nil, err
	}
	return batch.Resolved(), nil
}

// serve runs the HTTP server until ctx ends, then drains: not ready, let
// in-flight requests finish, flush the producer, all within DrainTimeout.
// metrics is served on its own listener when there is one, else on mux.
func (f *front) serve(ctx context.Context, mux chi.Router, metrics http.Handler) error {
	f.http = f.server.HTTPServer(mux)
	var metricsSrv *http.Server
	if f.metrics != nil {
		m := http.NewServeMux()
		m.Handle("GET /metrics", metrics)
		// The API's timeouts, with ingest's defaults applied (the raw
		// config's IdleTimeout is 0 in local mode).
		metricsSrv = f.server.HTTPServer(m)
		go func() { _ = metricsSrv.Serve(f.metrics) }()
		f.log.Info("metrics listening", "addr", f.metrics.Addr().String())
	} else {
		mux.Method(http.MethodGet, "/metrics", metrics)
	}
	errc := make(chan error, 1)
	go func() { errc <- f.http.Serve(f.ln) }()
	f.log.Info("listening", "addr", f.ln.Addr().String())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	f.log.Info("draining", "deadline", f.cfg.DrainTimeout.String())
	f.server.Drain()
	dctx, cancel := context.WithTimeout(context.Background(), f.cfg.DrainTimeout)
	defer cancel()
	if err := f.http.Shutdown(dctx); err != nil {
		f.log.Error("http shutdown", "err", err)
	}
	if err := f.producer.Close(dctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if metricsSrv != nil {
		// Last: the drain itself is worth watching.
		_ = metricsSrv.Shutdown(dctx)
	}
	st := f.producer.Stats()
	f.log.Info("drained", "written", st.Written, "failed", st.Failed)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}
