// Command spate-router is the router Lambda (provided.al2023): it reads
// batches from the ingest Kinesis stream and sends each event to its type's
// Firehose delivery stream, packed, reporting what is left with
// ReportBatchItemFailures. Configured by environment:
//
//	SPATE_FIREHOSE_PREFIX        delivery stream of a type: prefix + type (default "spate-")
//	SPATE_FIREHOSE_STREAMS       per-type overrides: "type=stream,type=stream"
//	SPATE_DEAD_LETTER_QUEUE_URL  SQS queue for records no route takes (required)
//	SPATE_DEAD_LETTER_BUCKET     bucket for dead letters over the queue's MaximumMessageSize,
//	                             under dead-letter/ (default: such letters carry coordinates only)
//	SPATE_SOURCE_STREAM          the stream the function reads, named in dead letters
//	SPATE_LOG_LEVEL              debug, info (default), warn, error
//
// Every record that can never be routed (undecodable, unknown type, too
// large) is dead-lettered and skipped on its first attempt.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/firehose"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
	"github.com/spate-dev/spate/sqs"
)

func main() {
	log := awslambda.NewLogger(os.Stdout, os.Getenv)
	h, err := setup(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("router: setup", "error", err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(h.Handle)
}

func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*awslambda.RouterHandler, error) {
	reg, err := registry.FromDir(getenv("SPATE_SCHEMAS"), registry.Limits{})
	if err != nil {
		return nil, fmt.Errorf("SPATE_SCHEMAS: %w", err)
	}
	// Delivery streams are per lake table (a new MODEL is a new table,
	// <type>_v<MODEL>, as terraform names them from glue_columns.json).
	var tables []string
	tableOf := map[string]string{}
	for _, t := range reg.Types() {
		sc, _ := reg.Schema(t)
		tables = append(tables, sc.Table)
		tableOf[t] = sc.Table
	}
	byTable, err := awslambda.RouterStreams(tables, getenv)
	if err != nil {
		return nil, err
	}
	streams := map[string]string{}
	for t, table := range tableOf {
		streams[t] = byTable[table]
	}
	queue := getenv("SPATE_DEAD_LETTER_QUEUE_URL")
	if queue == "" {
		return nil, errors.New("SPATE_DEAD_LETTER_QUEUE_URL is required")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	dlq, err := awslambda.OpenDeadLetters(ctx, awssqs.NewFromConfig(cfg), awss3.NewFromConfig(cfg, sqs.PathStyleOnCustomEndpoint), awslambda.DeadLetterConfigFromEnv("router", queue, getenv), log)
	if err != nil {
		return nil, err
	}
	r, err := router.New(reg, firehose.NewDestination(awsfirehose.NewFromConfig(cfg)), dlq, router.Config{Streams: streams}, log)
	if err != nil {
		return nil, err
	}
	return awslambda.NewRouterHandler(r, log), nil
}
