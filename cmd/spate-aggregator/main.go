// Command spate-aggregator is the aggregator Lambda (provided.al2023): an
// event source mapping on the ingest Kinesis stream with
// TumblingWindowInSeconds (60 by default, at most 900) invokes it per shard;
// it counts impressions, clicks and play starts per content × image variant
// × platform in Lambda's window state and writes each window's aggregates to
// the aggregates stream. Configured by environment:
//
//	SPATE_AGGREGATES_STREAM      name or ARN of the aggregates stream (required)
//	SPATE_AGGREGATE_STATE_BYTES  state size at which a window is emitted early (default 900000, under Lambda's 1 MB)
//	SPATE_LOG_LEVEL              debug, info (default), warn, error
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/registry"
)

func main() {
	log := awslambda.NewLogger(os.Stdout, os.Getenv)
	h, err := setup(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("aggregator: setup", "error", err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(h.Handle)
}

func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*awslambda.AggregatorHandler, error) {
	stream := getenv("SPATE_AGGREGATES_STREAM")
	if stream == "" {
		return nil, errors.New("SPATE_AGGREGATES_STREAM is required")
	}
	var cfg aggregate.Config
	if v := getenv("SPATE_AGGREGATE_STATE_BYTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("SPATE_AGGREGATE_STATE_BYTES=%q: want an integer", v)
		}
		cfg.StateBytes = n
	}
	// Which types count, and which fields key the aggregates, come from
	// the schemas' annotations.
	reg, err := registry.FromDir(getenv("SPATE_SCHEMAS"), registry.Limits{})
	if err != nil {
		return nil, fmt.Errorf("SPATE_SCHEMAS: %w", err)
	}
	cfg.Counted, cfg.KeyFields = reg.Counted(), reg.KeyFields()
	folder, err := aggregate.New(cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	// Retry only the records Kinesis refused; what still fails fails the
	// invocation, which Lambda retries with the same state.
	sink := batch.Retry(kinesis.NewSink(awskinesis.NewFromConfig(awsCfg), stream, kinesis.SinkConfig{}), batch.RetryConfig{})
	return awslambda.NewAggregatorHandler(folder, sink, log), nil
}
