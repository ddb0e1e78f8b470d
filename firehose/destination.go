// Package firehose adapts Amazon Data Firehose to spate: the router's
// Destination over PutRecordBatch, reading every record's result.
package firehose

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/smithy-go"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/router"
)

// API is the part of the Firehose client the Destination uses.
type API interface {
	PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, opts ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error)
}

// Destination writes records to Firehose delivery streams.
type Destination struct {
	api API
}

var _ router.Destination = (*Destination)(nil)

// NewDestination returns a Destination calling api.
func NewDestination(api API) *Destination { return &Destination{api: api} }

// PutBatch writes records to stream in one PutRecordBatch call; the caller
// keeps within its limits (router does). Firehose answers 200 even when
// records failed, so each entry's ErrorCode is read: failed records come
// back in a *spate.BatchError, ServiceUnavailableException ones wrapping
// spate.ErrThrottled. Errors no retry can fix (a missing stream, a rejected
// request) wrap router.ErrPermanent.
func (d *Destination) PutBatch(ctx context.Context, stream string, records [][]byte) error {
	in := &firehose.PutRecordBatchInput{
		DeliveryStreamName: aws.String(stream),
		Records:            make([]types.Record, len(records)),
	}
	for i, r := range records {
		in.Records[i].Data = r
	}
	out, err := d.api.PutRecordBatch(ctx, in)
	if err != nil {
		return classify(stream, err)
	}
	if len(out.RequestResponses) != len(records) {
		return fmt.Errorf("firehose put %s: %d results for %d records", stream, len(out.RequestResponses), len(records))
	}
	be := spate.NewBatchError(len(records))
	for i, res := range out.RequestResponses {
		code := aws.ToString(res.ErrorCode)
		if code == "" {
			continue
		}
		err := fmt.Errorf("firehose put %s: %s: %s", stream, code, aws.ToString(res.ErrorMessage))
		if code == "ServiceUnavailableException" {
			err = fmt.Errorf("%w (%w)", err, spate.ErrThrottled)
		}
		be.Failed(i, err)
	}
	return be.OrNil()
}

func classify(stream string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ServiceUnavailableException":
			return fmt.Errorf("firehose put %s: %w (%w)", stream, err, spate.ErrThrottled)
		case "ResourceNotFoundException", "InvalidArgumentException", "InvalidKMSResourceException", "InvalidSourceException":
			return fmt.Errorf("firehose put %s: %w (%w)", stream, err, router.ErrPermanent)
		}
	}
	return fmt.Errorf("firehose put %s: %w", stream, err)
}
