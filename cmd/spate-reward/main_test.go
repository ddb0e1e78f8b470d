package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/internal/spatetest"
)

func TestSetup(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 30*time.Second)
	t.Setenv("AWS_ENDPOINT_URL_SQS", ep.SQS)
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
	env["SPATE_REWARD_ENDPOINTS"] = "thumbnails=http://bandit.example/v1/rewards"
	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup with an http:// endpoint succeeded without SPATE_REWARD_ALLOW_HTTP")
	}
	env["SPATE_REWARD_ENDPOINTS"] = "thumbnails=https://bandit.example/v1/rewards"
	env["SPATE_REWARD_MAX_AGE"] = "soon"
	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup with a bad duration succeeded")
	}
	env["SPATE_REWARD_MAX_AGE"] = "2h"
	env["SPATE_REWARD_TIMEOUT"] = "5s"
	env["SPATE_REWARD_DLQ_URL"] = ep.SQS + "/000000000000/no-such-queue"
	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup with a queue it cannot read succeeded: the limit must be read at start")
	}
	q, err := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) }).
		CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("spate-reward-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	env["SPATE_REWARD_DLQ_URL"] = aws.ToString(q.QueueUrl)
	if h, err := setup(context.Background(), getenv, log); err != nil || h == nil {
		t.Errorf("setup: %v", err)
	}
}
