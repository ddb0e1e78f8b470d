package main

import (
	"context"
	"log/slog"
	"testing"
)

func TestSetup(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-north-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSPATETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	log := slog.New(slog.DiscardHandler)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup without an aggregates stream succeeded")
	}
	env["SPATE_AGGREGATES_STREAM"] = "spate-aggregates"
	for _, bad := range []string{"lots", "2000000", "10"} {
		env["SPATE_AGGREGATE_STATE_BYTES"] = bad
		if _, err := setup(context.Background(), getenv, log); err == nil {
			t.Errorf("setup with SPATE_AGGREGATE_STATE_BYTES=%s succeeded", bad)
		}
	}
	env["SPATE_AGGREGATE_STATE_BYTES"] = "500000"
	if h, err := setup(context.Background(), getenv, log); err != nil || h == nil {
		t.Errorf("setup: %v", err)
	}
}
