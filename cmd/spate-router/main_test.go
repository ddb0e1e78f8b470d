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

	t.Setenv("SPATE_DEAD_LETTER_QUEUE_URL", "")
	if _, err := setup(context.Background(), log); err == nil {
		t.Error("setup without a dead-letter queue succeeded")
	}
	t.Setenv("SPATE_DEAD_LETTER_QUEUE_URL", "https://sqs.eu-north-1.amazonaws.com/123456789012/spate-router-dlq")
	t.Setenv("SPATE_FIREHOSE_STREAMS", "purchase=x")
	if _, err := setup(context.Background(), log); err == nil {
		t.Error("setup with a stream for an unknown type succeeded")
	}
	t.Setenv("SPATE_FIREHOSE_STREAMS", "click=clicks-v2")
	if h, err := setup(context.Background(), log); err != nil || h == nil {
		t.Errorf("setup: %v", err)
	}
}
