package sqs

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

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
	// MaxMessageBytes bounds one message body with its attributes: the
	// queue's MaximumMessageSize, which QueueMaxMessageBytes reads (default
	// 256 KiB, the smallest limit SQS queues have had by default).
	MaxMessageBytes int
	// MaxBatchBytes bounds one SendMessageBatch call (default
	// MaxMessageBytes; SQS takes at most 1 MiB in one call).
	MaxBatchBytes int
	// Stream names the stream the records were read from, for the letters
	// of a stream consumer; empty for ingest's.
	Stream string
	// Payloads keeps a record too big for one message: the message then
	// carries a pointer to it (the SQS extended-client pattern). Without
	// it such a record fails with ErrTooLarge, unless OmitOversized.
	Payloads PayloadWriter
	// OmitOversized, without Payloads, dead-letters a record too big for
	// a message that was read from a stream with its coordinates (shard,
	// sequence number, size) and reason only, and tells OnOmitted: for a
	// stream consumer, whose alternative is holding its shard. Records
	// without coordinates (ingest's) still fail.
	OmitOversized bool
	// OnOmitted, when set, is told how many records were dead-lettered
	// without their payload (a metric: an alarm watches it).
	OnOmitted func(records int)
}

// DLQ is a spate.Sink that packs records into SQS messages.
type DLQ struct {
	api      SendAPI
	queueURL string
	cfg      DLQConfig

	offloaded, omitted atomic.Int64
}

// NewDLQ returns a DLQ writing to queueURL.
func NewDLQ(api SendAPI, queueURL string, cfg DLQConfig) *DLQ {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 256 << 10
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = min(cfg.MaxMessageBytes, 1<<20)
	}
	return &DLQ{api: api, queueURL: queueURL, cfg: cfg}
}

// DLQStats is a snapshot of the DLQ's counters.
type DLQStats struct {
	Offloaded int64 // records whose payload went to S3, a pointer to SQS
	Omitted   int64 // records dead-lettered without their payload
}

// Stats returns the counters now.
func (d *DLQ) Stats() DLQStats {
	return DLQStats{Offloaded: d.offloaded.Load(), Omitted: d.omitted.Load()}
}

// Put sends recs with an unspecified reason.
func (d *DLQ) Put(ctx context.Context, recs []spate.Record) error {
	return d.PutReason(ctx, recs, "unspecified")
}

// envelopeBytes of a message besides its records and reason: the JSON
// around them and the spate_count attribute, which SQS counts too.
const envelopeBytes = 192

type pack struct {
	idx  []int // indexes into the input records
	body []byte
}

// PutReason packs recs into as few messages as fit and sends them in
// batches of at most 10 messages, checking each entry's result. A record
// too big for a message of its own goes to Payloads with a pointer in the
// message, or with OmitOversized as its coordinates alone: the size of a
// record read from a stream never fails it. Records of a message SQS
// refused, or whose payload S3 refused, come back failed in a
// *spate.BatchError.
func (d *DLQ) PutReason(ctx context.Context, recs []spate.Record, reason string) error {
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	fixed := envelopeBytes + len(reason) + len(d.cfg.Stream)
	be := spate.NewBatchError(len(recs))
	wires := make([][]byte, len(recs))
	omitted := 0
	for i, r := range recs {
		wires[i] = encodeWire(wireRecord(r))
		if fixed+len(wires[i])+1 <= d.cfg.MaxMessageBytes {
			continue
		}
		w := coordinates(r)
		w.Size = len(r.Data)
		if d.cfg.Payloads != nil {
			p, err := d.cfg.Payloads.PutPayload(ctx, reason, r.Data)
			if err != nil {
				be.Failed(i, fmt.Errorf("sqs dlq: record of %d bytes: %w", len(r.Data), err))
				wires[i] = nil
				continue
			}
			w.S3 = &p
			d.offloaded.Add(1)
		} else if d.cfg.OmitOversized && r.ShardID != "" {
			w.PayloadOmitted = true
			omitted++
		} else {
			// Without coordinates a letter without payload would say
			// nothing: ingest's records, read from no stream yet, fail,
			// as does a redrive's re-enqueue (it keeps the original).
			be.Failed(i, fmt.Errorf("sqs dlq: record of %d bytes over the queue's %d: %w", len(r.Data), d.cfg.MaxMessageBytes, spate.ErrTooLarge))
			wires[i] = nil
			continue
		}
		wires[i] = encodeWire(w)
		if fixed+len(wires[i])+1 > d.cfg.MaxMessageBytes {
			// Only a key or coordinates longer than the queue's limit.
			be.Failed(i, fmt.Errorf("sqs dlq: record key and coordinates over %d bytes: %w", d.cfg.MaxMessageBytes, spate.ErrTooLarge))
			wires[i] = nil
		}
	}
	if omitted > 0 {
		d.omitted.Add(int64(omitted))
		if d.cfg.OnOmitted != nil {
			d.cfg.OnOmitted(omitted)
		}
	}

	var packs []pack
	var cur []int
	size := fixed
	flush := func() {
		if len(cur) > 0 {
			packs = append(packs, pack{idx: cur, body: d.body(recs, wires, cur, reason)})
			cur, size = nil, fixed
		}
	}
	for i := range recs {
		if wires[i] == nil {
			continue
		}
		n := len(wires[i]) + 1
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

// messageHead is Message without its records, which body appends
// already encoded (encoding them again would compact each event twice).
type messageHead struct {
	Version         int    `json:"spate_dlq"`
	Reason          string `json:"reason"`
	Stream          string `json:"stream,omitempty"`
	Count           int    `json:"count"`
	FirstReceivedAt string `json:"first_received_at,omitempty"`
	LastReceivedAt  string `json:"last_received_at,omitempty"`
}

func (d *DLQ) body(recs []spate.Record, wires [][]byte, idx []int, reason string) []byte {
	h := messageHead{Version: MessageVersion, Reason: reason, Stream: d.cfg.Stream, Count: len(idx)}
	n := 0
	for _, i := range idx {
		n += len(wires[i]) + 1
		if at := receivedAt(recs[i].Data); at != "" {
			if h.FirstReceivedAt == "" || at < h.FirstReceivedAt {
				h.FirstReceivedAt = at
			}
			if at > h.LastReceivedAt {
				h.LastReceivedAt = at
			}
		}
	}
	head := encodeWire(h)
	b := make([]byte, 0, len(head)+len(`,"records":[]`)+n)
	b = append(b, head[:len(head)-1]...) // without its closing brace
	b = append(b, `,"records":[`...)
	for j, i := range idx {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, wires[i]...)
	}
	return append(b, "]}"...)
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

var _ spate.ReasonPutter = (*DLQ)(nil)
