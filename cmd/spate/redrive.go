package main

import (
	"context"
	"errors"

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate"
)

func runRedrive(ctx context.Context, env *environment, args []string) error {
	return errors.New("redrive: not implemented yet")
}

// startRedrive runs the background DLQ redrive; the returned func stops it.
func startRedrive(ctx context.Context, env *environment, client *awssqs.Client, queueURL string, sink spate.Sink, healthy func() bool, rate int) func() {
	return func() {}
}
