// Package faulttest proves spate's delivery promise under faults: it drives
// real traffic through the real ingest binary with faults injected in front
// of the emulators, then accounts for every acknowledged event by event_id
// in what the stream and the dead-letter queue hold. Its exported helpers
// (read-back, accounting, load) serve other packages' integration tests.
package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/spatetest"
	spatesqs "github.com/spate-dev/spate/sqs"
)

// KinesisReader is the part of the Kinesis client ReadStream uses.
type KinesisReader = spatetest.KinesisReader

// ReadStream returns every event in stream, shard by shard from the trim
// horizon to the tip, with aggregated records unpacked
// (spatetest.ReadEvents).
func ReadStream(ctx context.Context, api KinesisReader, stream string) ([]spate.Record, error) {
	return spatetest.ReadEvents(ctx, api, stream)
}

// SQSReader is the part of the SQS client ReadQueue uses.
type SQSReader interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
}

// QueueContents is what a DLQ holds.
type QueueContents struct {
	Messages int
	Records  []spate.Record
	Poison   [][]byte // bodies that are not DLQ messages
}

// ReadQueue receives every visible message of a queue, hiding each for
// hide so it is read once, and decodes them. Receives long-poll for wait
// (whole seconds) until a first message arrives, then not at all; it stops
// at the first empty receive, so messages another consumer holds are not
// seen.
func ReadQueue(ctx context.Context, api SQSReader, url string, hide, wait time.Duration) (QueueContents, error) {
	var qc QueueContents
	for {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: int32(wait / time.Second),
			VisibilityTimeout: int32(hide / time.Second),
		})
		if err != nil {
			return qc, fmt.Errorf("receive %s: %w", url, err)
		}
		if len(out.Messages) == 0 {
			return qc, nil
		}
		wait = 0
		for _, m := range out.Messages {
			qc.Messages++
			_, recs, err := spatesqs.DecodeMessage([]byte(aws.ToString(m.Body)))
			if errors.Is(err, spatesqs.ErrBadMessage) {
				qc.Poison = append(qc.Poison, []byte(aws.ToString(m.Body)))
				continue
			}
			qc.Records = append(qc.Records, recs...)
		}
	}
}

// EventID returns the event_id of a record holding canonical event JSON.
func EventID(r spate.Record) (string, error) {
	var e struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(r.Data, &e); err != nil {
		return "", fmt.Errorf("record is not event JSON: %w", err)
	}
	if e.EventID == "" {
		return "", errors.New("record has no event_id")
	}
	return e.EventID, nil
}

// Name returns a stream or queue name unique to this test run: letters,
// digits and hyphens, at most 80 characters.
func Name(tb testing.TB, prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteByte('-')
	for _, c := range tb.Name() {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	n := b.String()
	if len(n) > 60 {
		n = n[len(n)-60:]
	}
	return n + "-" + uuid.NewString()[:8]
}

// StreamAPI is the part of the Kinesis client CreateStream uses.
type StreamAPI interface {
	CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, opts ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error)
	DescribeStream(ctx context.Context, in *kinesis.DescribeStreamInput, opts ...func(*kinesis.Options)) (*kinesis.DescribeStreamOutput, error)
}

// CreateStream creates a stream of shards shards and waits until it is
// active.
func CreateStream(ctx context.Context, api StreamAPI, name string, shards int) error {
	if _, err := api.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	// kinesalite activates a stream within milliseconds; the waiter's
	// default first pause is 10 s.
	waiter := kinesis.NewStreamExistsWaiter(api, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 500*time.Millisecond
	})
	if err := waiter.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		return fmt.Errorf("stream %s not active: %w", name, err)
	}
	return nil
}
