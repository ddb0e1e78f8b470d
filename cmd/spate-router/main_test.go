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
	t.Setenv("AWS_REGION", "eu-north-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSPATETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_ENDPOINT_URL_SQS", ep.SQS)
	log := slog.New(slog.DiscardHandler)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup without a dead-letter queue succeeded")
	}
	env["SPATE_DEAD_LETTER_QUEUE_URL"] = ep.SQS + "/000000000000/no-such-queue"
	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup with a queue it cannot read succeeded: the limit must be read at start")
	}
	q, err := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) }).
		CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("spate-router-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	env["SPATE_DEAD_LETTER_QUEUE_URL"] = aws.ToString(q.QueueUrl)
	env["SPATE_FIREHOSE_STREAMS"] = "purchase=x"
	if _, err := setup(context.Background(), getenv, log); err == nil {
		t.Error("setup with a stream for an unknown type succeeded")
	}
	env["SPATE_FIREHOSE_STREAMS"] = "click=clicks-v2"
	if h, err := setup(context.Background(), getenv, log); err != nil || h == nil {
		t.Errorf("setup: %v", err)
	}
}
