// Command spate-router is the router Lambda (provided.al2023): it reads
// batches from the ingest Kinesis stream and sends each event to its type's
// Firehose delivery stream, packed, reporting what is left with
// ReportBatchItemFailures. Configured by environment:
//
//	SPATE_FIREHOSE_PREFIX        delivery stream of a type: prefix + type (default "spate-")
//	SPATE_FIREHOSE_STREAMS       per-type overrides: "type=stream,type=stream"
//	SPATE_DEAD_LETTER_QUEUE_URL  SQS queue for records no route takes (required)
//	SPATE_LOG_LEVEL              debug, info (default), warn, error
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/firehose"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
	"github.com/spate-dev/spate/sqs"
)

func main() {
	log := awslambda.NewLogger(os.Stdout, os.Getenv)
	h, err := setup(context.Background(), log)
	if err != nil {
		log.Error("router: setup", "error", err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(h.Handle)
}

func setup(ctx context.Context, log *slog.Logger) (*awslambda.RouterHandler, error) {
	reg := registry.New(registry.Limits{})
	streams, err := awslambda.RouterStreams(reg.Types(), os.Getenv)
	if err != nil {
		return nil, err
	}
	queue := os.Getenv("SPATE_DEAD_LETTER_QUEUE_URL")
	if queue == "" {
		return nil, errors.New("SPATE_DEAD_LETTER_QUEUE_URL is required")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	dlq := sqs.NewDLQ(awssqs.NewFromConfig(cfg), queue, sqs.DLQConfig{})
	r, err := router.New(reg, firehose.NewDestination(awsfirehose.NewFromConfig(cfg)), dlq, router.Config{Streams: streams}, log)
	if err != nil {
		return nil, err
	}
	return awslambda.NewRouterHandler(r, log), nil
}
