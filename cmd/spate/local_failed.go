package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spate-dev/spate/failed"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/registry"
)

// startFailed keeps rejected events as Parquet under <data>/failed/dt=/hour=:
// a lake of the one failed-events table, in the failed Firehose stream's
// place. Its stop func, called after ingest has drained, writes out what
// is queued and closes the files.
func startFailed(ctx context.Context, cfg localConfig, reg *registry.Registry, log *slog.Logger) (*failed.Keeper, func(context.Context) error, error) {
	lk, err := lake.Open(registry.Failed(), lake.Config{Dir: cfg.DataDir, FlushInterval: cfg.FlushInterval, Now: cfg.Now}, log.With("stage", "failed"))
	if err != nil {
		return nil, nil, err
	}
	k := failed.New(lk, reg, failed.Config{}, log.With("stage", "failed"))
	go k.Run(context.WithoutCancel(ctx))
	return k, func(ctx context.Context) error {
		kerr := k.Close(ctx)
		lerr := lk.Close(ctx)
		st := k.Stats()
		log.Info("failed events: stopped", "kept", st.Kept, "dropped", st.Dropped)
		if err := errors.Join(kerr, lerr); err != nil {
			return fmt.Errorf("failed events close: %w", err)
		}
		return nil
	}, nil
}

// tables maps each type to its lake table: locally each table is its
// delivery stream (a new MODEL is a new table, <type>_v<MODEL>).
func tables(reg *registry.Registry) map[string]string {
	m := map[string]string{}
	for _, t := range reg.Types() {
		s, _ := reg.Schema(t)
		m[t] = s.Table
	}
	return m
}
