// Command spate-reward is the reward Lambda (provided.al2023): an event
// source mapping on the aggregates stream (ReportBatchItemFailures on)
// invokes it; it POSTs each aggregate to every reward API with an
// Idempotency-Key stable across retries, retries 5xx and timeouts with
// backoff behind a circuit breaker per API, dead-letters what an API
// refuses (4xx) or what still fails past the maximum age, and reports the
// first aggregate it could not finish so the mapping redelivers from it.
// Configured by environment:
//
//	SPATE_REWARD_ENDPOINTS     "model=url,model=url": the reward APIs, https (required)
//	SPATE_REWARD_ALLOW_HTTP    "true" admits http:// reward URLs (tests only)
//	SPATE_REWARD_DLQ_URL       SQS queue for dead letters (default: log them only)
//	SPATE_DEAD_LETTER_BUCKET   bucket for dead letters over the queue's MaximumMessageSize,
//	                           under dead-letter/ (default: such letters carry coordinates only)
//	SPATE_SOURCE_STREAM        the stream the function reads, named in dead letters
//	SPATE_REWARD_TIMEOUT       one call's timeout (default 10s)
//	SPATE_REWARD_MAX_ELAPSED   retrying one aggregate within an invocation (default 30s)
//	SPATE_REWARD_MAX_AGE       retrying at all, from the window's end (default 1h)
//	SPATE_LOG_LEVEL            debug, info (default), warn, error
//
// Give the function a timeout above SPATE_REWARD_MAX_ELAPSED, and the event
// source mapping a MaximumRecordAgeInSeconds above SPATE_REWARD_MAX_AGE, so
// that expired aggregates are dead-lettered here, with their reason, rather
// than dropped by the mapping.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewardhttp"
	"github.com/spate-dev/spate/sqs"
)

func main() {
	log := awslambda.NewLogger(os.Stdout, os.Getenv)
	h, err := setup(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("reward: setup", "error", err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(h.Handle)
}

func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*awslambda.RewardHandler, error) {
	urls, err := awslambda.ParseRewardURLs(getenv("SPATE_REWARD_ENDPOINTS"), getenv("SPATE_REWARD_ALLOW_HTTP") == "true")
	if err != nil {
		return nil, fmt.Errorf("SPATE_REWARD_ENDPOINTS: %w", err)
	}
	durations := map[string]*time.Duration{}
	var timeout time.Duration
	cfg := reward.Config{Log: log}
	durations["SPATE_REWARD_TIMEOUT"] = &timeout
	durations["SPATE_REWARD_MAX_ELAPSED"] = &cfg.MaxElapsed
	durations["SPATE_REWARD_MAX_AGE"] = &cfg.MaxAge
	for name, p := range durations {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%s=%q: want a positive duration like 10s", name, v)
			}
			*p = d
		}
	}
	var endpoints []reward.Endpoint
	for _, u := range urls {
		c, err := rewardhttp.New(u.URL, rewardhttp.Config{Timeout: timeout})
		if err != nil {
			return nil, err
		}
		endpoints = append(endpoints, reward.Endpoint{Model: u.Model, Name: u.URL, Rewarder: c})
	}
	if q := getenv("SPATE_REWARD_DLQ_URL"); q != "" {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, err
		}
		dlq, err := awslambda.OpenDeadLetters(ctx, awssqs.NewFromConfig(awsCfg), awss3.NewFromConfig(awsCfg, sqs.PathStyleOnCustomEndpoint), awslambda.DeadLetterConfigFromEnv("reward", q, getenv), log)
		if err != nil {
			return nil, err
		}
		cfg.DeadLetters = reward.SinkLetters(dlq)
	}
	sender, err := reward.New(endpoints, cfg)
	if err != nil {
		return nil, err
	}
	return awslambda.NewRewardHandler(sender, 0, log), nil
}
