package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate"
)

// SendAPI is the part of the SQS client the DLQ writes with.
type SendAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// DLQConfig holds the DLQ's limits; zero values take the defaults.
type DLQConfig struct {
	// MaxMessageBytes bounds one message body (default 256 KiB, SQS's
	// long-standing limit; raise to 1 MiB where the queue allows it).
	MaxMessageBytes int
	// MaxBatchBytes bounds one SendMessageBatch call (default 256 KiB).
	MaxBatchBytes int
}

// DLQ is a spate.Sink that packs records into SQS messages.
type DLQ struct {
	api      SendAPI
	queueURL string
	cfg      DLQConfig
}

// NewDLQ returns a DLQ writing to queueURL.
func NewDLQ(api SendAPI, queueURL string, cfg DLQConfig) *DLQ {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 256 << 10
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 256 << 10
	}
	return &DLQ{api: api, queueURL: queueURL, cfg: cfg}
}

// Put sends recs with an unspecified reason.
func (d *DLQ) Put(ctx context.Context, recs []spate.Record) error {
	return d.PutReason(ctx, recs, "unspecified")
}

// envelope bytes of a message besides its records, reason excluded.
const envelopeBytes = 160

type pack struct {
	idx  []int // indexes into the input records
	body []byte
}

// PutReason packs recs into as few messages as fit and sends them in
// batches of at most 10 messages, checking each entry's result. Records of
// a message SQS refused come back failed in a *spate.BatchError.
func (d *DLQ) PutReason(ctx context.Context, recs []spate.Record, reason string) error {
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	be := spate.NewBatchError(len(recs))
	var packs []pack
	var cur []int
	size := envelopeBytes + len(reason)
	flush := func() {
		if len(cur) > 0 {
			packs = append(packs, pack{idx: cur, body: d.body(recs, cur, reason)})
			cur, size = nil, envelopeBytes+len(reason)
		}
	}
	for i, r := range recs {
		n := wireSize(r)
		if envelopeBytes+len(reason)+n > d.cfg.MaxMessageBytes {
			be.Failed(i, fmt.Errorf("sqs dlq: record of %d bytes: %w", r.Size(), spate.ErrTooLarge))
			continue
		}
		if size+n > d.cfg.MaxMessageBytes {
			flush()
		}
		cur = append(cur, i)
		size += n
	}
	flush()

	for len(packs) > 0 {
		n, total := 0, 0
		for n < len(packs) && n < 10 && (n == 0 || total+len(packs[n].body) <= d.cfg.MaxBatchBytes) {
			total += len(packs[n].body)
			n++
		}
		d.send(ctx, recs, packs[:n], be)
		packs = packs[n:]
	}
	return be.OrNil()
}

func (d *DLQ) body(recs []spate.Record, idx []int, reason string) []byte {
	m := Message{Version: MessageVersion, Reason: reason, Count: len(idx), Records: make([]WireRecord, len(idx))}
	for j, i := range idx {
		m.Records[j] = wireRecord(recs[i])
		if at := receivedAt(recs[i].Data); at != "" {
			if m.FirstReceivedAt == "" || at < m.FirstReceivedAt {
				m.FirstReceivedAt = at
			}
			if at > m.LastReceivedAt {
				m.LastReceivedAt = at
			}
		}
	}
	// Without HTML escaping an event's JSON is embedded byte for byte:
	// json.Marshal would turn each <, > and & into six bytes, past the
	// size the message was packed for.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		panic(fmt.Sprintf("sqs dlq: marshal message: %v", err)) // records hold valid JSON or base64
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

func (d *DLQ) send(ctx context.Context, recs []spate.Record, packs []pack, be *spate.BatchError) {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(d.queueURL)}
	for j, p := range packs {
		in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{
			Id:          aws.String(strconv.Itoa(j)),
			MessageBody: aws.String(string(p.body)),
			MessageAttributes: map[string]types.MessageAttributeValue{
				"spate_count": {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(len(p.idx)))},
			},
		})
	}
	out, err := d.api.SendMessageBatch(ctx, in)
	if err != nil {
		err = fmt.Errorf("sqs dlq send: %w", err)
		for _, p := range packs {
			for _, i := range p.idx {
				be.Failed(i, err)
			}
		}
		return
	}
	ok := make(map[string]bool, len(out.Successful))
	for _, s := range out.Successful {
		ok[aws.ToString(s.Id)] = true
	}
	failed := make(map[string]string, len(out.Failed))
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
	}
	for j, p := range packs {
		id := strconv.Itoa(j)
		if ok[id] && failed[id] == "" {
			continue
		}
		why := failed[id]
		if why == "" {
			why = "no result for entry"
		}
		for _, i := range p.idx {
			be.Failed(i, fmt.Errorf("sqs dlq send: %s", why))
		}
	}
}

var _ interface {
	PutReason(ctx context.Context, recs []spate.Record, reason string) error
} = (*DLQ)(nil)
