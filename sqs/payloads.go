package sqs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate/internal/clock"
)

// DeadLetterPrefix is where payloads too big for their dead-letter queue
// are kept in the lake bucket; terraform grants the Lambdas this prefix
// and nothing else of the bucket.
const DeadLetterPrefix = "dead-letter/"

// Pointer names a dead letter's payload kept in S3 rather than in its SQS
// message (the SQS extended-client pattern).
type Pointer struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

func (p Pointer) String() string { return "s3://" + p.Bucket + "/" + p.Key }

// PayloadWriter keeps payloads too big for a queue message.
type PayloadWriter interface {
	PutPayload(ctx context.Context, reason string, data []byte) (Pointer, error)
}

// PayloadReader fetches a payload a dead letter points at.
type PayloadReader interface {
	GetPayload(ctx context.Context, p Pointer) ([]byte, error)
}

// ObjectAPI is the part of the S3 client the payload store uses.
type ObjectAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// S3Payloads keeps payloads in a bucket under DeadLetterPrefix.
type S3Payloads struct {
	api    ObjectAPI
	bucket string
	now    func() time.Time
}

// NewS3Payloads returns the store writing to bucket; now dates the keys
// (nil: clock.Wall). A store that only reads takes no bucket: a pointer
// names its own.
func NewS3Payloads(api ObjectAPI, bucket string, now func() time.Time) *S3Payloads {
	return &S3Payloads{api: api, bucket: bucket, now: clock.Or(now)}
}

// PutPayload writes data at dead-letter/<class>/dt=YYYY-MM-DD/<sha256>,
// where class is the reason up to its first colon ("too_large",
// "rejected"). The key is the content's hash, so a retried invocation
// writing the same dead letter writes the same object, never a second one.
func (s *S3Payloads) PutPayload(ctx context.Context, reason string, data []byte) (Pointer, error) {
	sum := sha256.Sum256(data)
	p := Pointer{Bucket: s.bucket, Key: DeadLetterPrefix + reasonClass(reason) + "/dt=" + s.now().UTC().Format(time.DateOnly) + "/" + hex.EncodeToString(sum[:])}
	_, err := s.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(p.Bucket),
		Key:           aws.String(p.Key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		return Pointer{}, fmt.Errorf("s3 put dead letter %s: %w", p, err)
	}
	return p, nil
}

// maxPayloadBytes bounds what GetPayload reads: a Kinesis record is at
// most 10 MiB, a reward letter far less.
const maxPayloadBytes = 16 << 20

// GetPayload reads the payload p points at.
func (s *S3Payloads) GetPayload(ctx context.Context, p Pointer) ([]byte, error) {
	if !strings.HasPrefix(p.Key, DeadLetterPrefix) {
		return nil, fmt.Errorf("s3 get dead letter %s: %w: key outside %s", p, ErrBadMessage, DeadLetterPrefix)
	}
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)})
	if err != nil {
		return nil, fmt.Errorf("s3 get dead letter %s: %w", p, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxPayloadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("s3 get dead letter %s: %w", p, err)
	}
	if len(data) > maxPayloadBytes {
		return nil, fmt.Errorf("s3 get dead letter %s: over %d bytes: %w", p, maxPayloadBytes, ErrBadMessage)
	}
	return data, nil
}

// reasonClass is the reason's first word, safe in a key.
func reasonClass(reason string) string {
	class, _, _ := strings.Cut(reason, ":")
	var b strings.Builder
	for _, c := range strings.TrimSpace(class) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteRune(c)
		case c >= 'A' && c <= 'Z':
			b.WriteRune(c + 'a' - 'A')
		case c == ' ':
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	if b.Len() == 0 {
		return "unspecified"
	}
	return b.String()
}

// AttributesAPI is the part of the SQS client that reads queue attributes.
type AttributesAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// QueueMaxMessageBytes reads the queue's MaximumMessageSize, the largest
// message body (with attributes) it takes: 1,024 bytes to 1 MiB, set per
// queue. A DLQ sized from it never assumes a limit the queue does not have.
func QueueMaxMessageBytes(ctx context.Context, api AttributesAPI, queueURL string) (int, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameMaximumMessageSize},
	})
	if err != nil {
		return 0, fmt.Errorf("sqs get attributes %s: %w", queueURL, err)
	}
	v, ok := out.Attributes[string(types.QueueAttributeNameMaximumMessageSize)]
	if !ok {
		return 0, fmt.Errorf("sqs get attributes %s: no MaximumMessageSize", queueURL)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1024 {
		return 0, fmt.Errorf("sqs get attributes %s: MaximumMessageSize %q: %w", queueURL, v, errors.ErrUnsupported)
	}
	return n, nil
}

// OpenAPI is what OpenDLQ needs of the SQS client.
type OpenAPI interface {
	SendAPI
	AttributesAPI
}

// OpenDLQ returns a DLQ on queueURL sized to the queue's own
// MaximumMessageSize, read now: a stream consumer's dead letters then use
// all the queue allows, and go to cfg.Payloads only beyond it. A queue
// that cannot be read fails here, at start, not at the first dead letter.
func OpenDLQ(ctx context.Context, api OpenAPI, queueURL string, cfg DLQConfig) (*DLQ, error) {
	n, err := QueueMaxMessageBytes(ctx, api, queueURL)
	if err != nil {
		return nil, err
	}
	if cfg.MaxMessageBytes <= 0 || cfg.MaxMessageBytes > n {
		cfg.MaxMessageBytes = n
	}
	return NewDLQ(api, queueURL, cfg), nil
}

// MaxMessageBytes is the largest message body the DLQ sends.
func (d *DLQ) MaxMessageBytes() int { return d.cfg.MaxMessageBytes }

// PathStyleOnCustomEndpoint is an S3 client option: with an endpoint
// configured (AWS_ENDPOINT_URL_S3, for an S3-compatible store or a fake on
// loopback) buckets are addressed in the path, as such stores expect;
// against AWS itself the SDK's default, virtual-hosted style, stays.
func PathStyleOnCustomEndpoint(o *s3.Options) {
	if o.BaseEndpoint != nil {
		o.UsePathStyle = true
	}
}
