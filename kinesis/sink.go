// Package kinesis adapts Kinesis Data Streams to spate: a Sink over
// PutRecords that reads every record's result, and the capacity controls
// prescaling uses.
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/spate-dev/spate"
)

// PutRecords' limits.
const (
	MaxRecords     = 500
	MaxCallBytes   = 5 << 20
	MaxRecordBytes = 1 << 20
)

// API is the part of the Kinesis client the Sink uses.
type API interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// SinkConfig holds optional hooks.
type SinkConfig struct {
	// Observe, when set, sees every PutRecords call: its duration, records
	// sent and records failed (failed == sent when the call erred).
	Observe func(d time.Duration, records, failed int)
}

// Sink writes records to one stream with PutRecords.
type Sink struct {
	api    API
	stream string
	cfg    SinkConfig
}

var _ spate.Sink = (*Sink)(nil)

// NewSink returns a Sink for stream, a stream name or ARN.
func NewSink(api API, stream string, cfg SinkConfig) *Sink {
	return &Sink{api: api, stream: stream, cfg: cfg}
}

// Put writes recs in calls of at most 500 records and 5 MiB. Records
// Kinesis refuses come back in a *spate.BatchError, throttled ones wrapping
// spate.ErrThrottled; a record over 1 MiB fails with spate.ErrTooLarge.
func (s *Sink) Put(ctx context.Context, recs []spate.Record) error {
	be := spate.NewBatchError(len(recs))
	start := 0
	for start < len(recs) {
		end, size := start, 0
		for end < len(recs) && end-start < MaxRecords && size+recs[end].Size() <= MaxCallBytes {
			size += recs[end].Size()
			end++
		}
		if end == start { // a single record over the call limit
			be.Failed(start, fmt.Errorf("kinesis put %s: record of %d bytes: %w", s.stream, recs[start].Size(), spate.ErrTooLarge))
			start++
			continue
		}
		s.put(ctx, recs[start:end], be, start)
		start = end
	}
	return be.OrNil()
}

func (s *Sink) put(ctx context.Context, recs []spate.Record, be *spate.BatchError, offset int) {
	in := &kinesis.PutRecordsInput{Records: make([]types.PutRecordsRequestEntry, 0, len(recs))}
	if strings.HasPrefix(s.stream, "arn:") {
		in.StreamARN = aws.String(s.stream)
	} else {
		in.StreamName = aws.String(s.stream)
	}
	var idx []int
	for i, r := range recs {
		if r.Size() > MaxRecordBytes {
			be.Failed(offset+i, fmt.Errorf("kinesis put %s: record of %d bytes: %w", s.stream, r.Size(), spate.ErrTooLarge))
			continue
		}
		in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(r.PartitionKey)})
		idx = append(idx, offset+i)
	}
	if len(idx) == 0 {
		return
	}
	began := time.Now()
	out, err := s.api.PutRecords(ctx, in)
	if err != nil {
		err = fmt.Errorf("kinesis put %s: %w", s.stream, classify(err))
		for _, i := range idx {
			be.Failed(i, err)
		}
		s.observe(began, len(idx), len(idx))
		return
	}
	failed := 0
	for j, res := range out.Records {
		if j >= len(idx) {
			break
		}
		if res.ErrorCode == nil {
			continue
		}
		failed++
		var cause error = errors.New(aws.ToString(res.ErrorMessage))
		if aws.ToString(res.ErrorCode) == "ProvisionedThroughputExceededException" {
			cause = spate.ErrThrottled
		}
		be.Failed(idx[j], fmt.Errorf("kinesis put %s: %s: %w", s.stream, aws.ToString(res.ErrorCode), cause))
	}
	// A response with fewer entries than requested would be a broken
	// endpoint; never count the missing ones as written.
	for j := len(out.Records); j < len(idx); j++ {
		failed++
		be.Failed(idx[j], fmt.Errorf("kinesis put %s: no result for record", s.stream))
	}
	s.observe(began, len(idx), failed)
}

func (s *Sink) observe(began time.Time, records, failed int) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(time.Since(began), records, failed)
	}
}

// classify maps throttling API errors to spate.ErrThrottled.
func classify(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException":
			return fmt.Errorf("%w: %w", spate.ErrThrottled, err)
		}
	}
	return err
}
