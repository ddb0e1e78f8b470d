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
		t.Error("setup without endpoints succeeded")
	}
	env["SPATE_REWARD_ENDPOINTS"] = "thumbnails=ftp://x/y"
	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup with a non-HTTP endpoint succeeded")
	}
	env["SPATE_REWARD_ENDPOINTS"] = "thumbnails=https://bandit.example/v1/rewards"
	env["SPATE_REWARD_MAX_AGE"] = "soon"
	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup with a bad duration succeeded")
	}
	env["SPATE_REWARD_MAX_AGE"] = "2h"
	env["SPATE_REWARD_TIMEOUT"] = "5s"
	env["SPATE_REWARD_DLQ_URL"] = "https://sqs.eu-north-1.amazonaws.com/123456789012/spate-reward-dlq"
	if h, err := setup(context.Background(), getenv, log); err != nil || h == nil {
		t.Errorf("setup: %v", err)
	}
}
