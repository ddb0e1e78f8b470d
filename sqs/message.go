// Package sqs adapts Amazon SQS to spate as the dead-letter queue of
// ingest: records Kinesis would not take are packed many to a message with
// what an operator needs to know, and redriven into Kinesis later.
package sqs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spate-dev/spate"
)

// MessageVersion is the DLQ message format version.
const MessageVersion = 1

// Message is one DLQ message body: a pack of records and why they are here.
type Message struct {
	Version int    `json:"spate_dlq"`
	Reason  string `json:"reason"`
	// Stream the records were read from, when a stream consumer (the
	// router, the reward function) dead-lettered them.
	Stream          string       `json:"stream,omitempty"`
	Count           int          `json:"count"`
	FirstReceivedAt string       `json:"first_received_at,omitempty"`
	LastReceivedAt  string       `json:"last_received_at,omitempty"`
	Records         []WireRecord `json:"records"`
}

// WireRecord is a record in a DLQ message. Event JSON is embedded as is, so
// an operator can read it; other data is base64. A payload too big for the
// queue is in S3 instead (S3 names it) or, where no bucket is configured,
// nowhere (PayloadOmitted): the record's coordinates then say where on the
// stream it can still be read until the stream's retention ends.
type WireRecord struct {
	Key  string          `json:"key"`
	JSON json.RawMessage `json:"json,omitempty"`
	B64  string          `json:"b64,omitempty"`
	// Where a stream consumer read the record; empty for ingest's.
	Shard     string `json:"shard,omitempty"`
	Sequence  string `json:"seq,omitempty"`
	ArrivedAt string `json:"arrived_at,omitempty"`
	// Size is the payload's length in bytes when it is not in the message.
	Size           int      `json:"size,omitempty"`
	S3             *Pointer `json:"s3,omitempty"`
	PayloadOmitted bool     `json:"payload_omitted,omitempty"`
}

// coordinates is the record's wire form without its payload.
func coordinates(r spate.Record) WireRecord {
	w := WireRecord{Key: r.PartitionKey, Shard: r.ShardID, Sequence: r.SequenceNumber}
	if !r.ArrivedAt.IsZero() {
		w.ArrivedAt = r.ArrivedAt.UTC().Format(spate.TimeLayout)
	}
	return w
}

func wireRecord(r spate.Record) WireRecord {
	w := coordinates(r)
	if json.Valid(r.Data) {
		w.JSON = r.Data
	} else {
		w.B64 = base64.StdEncoding.EncodeToString(r.Data)
	}
	return w
}

// encodeWire writes w as a message body holds it: without HTML escaping,
// so an event's JSON is embedded byte for byte (json.Marshal would turn
// each <, > and & into six bytes, past the size it was packed for).
func encodeWire(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("sqs dlq: marshal: %v", err)) // records hold valid JSON or base64
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// ErrBadMessage marks a DLQ message that cannot be decoded.
var ErrBadMessage = errors.New("not a spate DLQ message")

// DecodeMessage parses a DLQ message body into its records.
func DecodeMessage(body []byte) (Message, []spate.Record, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return m, nil, fmt.Errorf("decode dlq message: %w: %v", ErrBadMessage, err)
	}
	if m.Version != MessageVersion {
		return m, nil, fmt.Errorf("decode dlq message: %w: version %d", ErrBadMessage, m.Version)
	}
	if m.Count != len(m.Records) {
		return m, nil, fmt.Errorf("decode dlq message: %w: count %d but %d records", ErrBadMessage, m.Count, len(m.Records))
	}
	recs := make([]spate.Record, len(m.Records))
	for i, w := range m.Records {
		recs[i].PartitionKey = w.Key
		switch {
		case len(w.JSON) > 0:
			recs[i].Data = bytes.Clone(w.JSON)
		default:
			data, err := base64.StdEncoding.DecodeString(w.B64)
			if err != nil {
				return m, nil, fmt.Errorf("decode dlq message: %w: record %d: %v", ErrBadMessage, i, err)
			}
			recs[i].Data = data
		}
		recs[i].ShardID, recs[i].SequenceNumber = w.Shard, w.Sequence
		if w.ArrivedAt != "" {
			if at, err := time.Parse(spate.TimeLayout, w.ArrivedAt); err == nil {
				recs[i].ArrivedAt = at
			}
		}
		elsewhere := w.S3 != nil || w.PayloadOmitted
		switch {
		case recs[i].PartitionKey == "":
			return m, nil, fmt.Errorf("decode dlq message: %w: record %d has no key", ErrBadMessage, i)
		case elsewhere && (len(recs[i].Data) > 0 || w.Size <= 0):
			return m, nil, fmt.Errorf("decode dlq message: %w: record %d has a payload and a pointer, or no size", ErrBadMessage, i)
		case w.S3 != nil && (w.S3.Bucket == "" || w.S3.Key == ""):
			return m, nil, fmt.Errorf("decode dlq message: %w: record %d has an empty pointer", ErrBadMessage, i)
		case !elsewhere && len(recs[i].Data) == 0:
			return m, nil, fmt.Errorf("decode dlq message: %w: record %d empty", ErrBadMessage, i)
		}
	}
	return m, recs, nil
}

// ErrPayloadOmitted marks a dead letter that carries only its record's
// coordinates: its payload was too big for the queue and no bucket was
// configured to hold it.
var ErrPayloadOmitted = errors.New("dead letter without its payload")

// FetchPayloads fills in the data of recs (as DecodeMessage returned them
// from m) whose payload is in S3, reading it with pr. It fails with
// ErrPayloadOmitted when a record's payload is nowhere, and with pr's error
// (or ErrBadMessage when pr is nil or the object is not what the letter
// says) when one cannot be read.
func FetchPayloads(ctx context.Context, pr PayloadReader, m Message, recs []spate.Record) error {
	for i, w := range m.Records {
		switch {
		case w.PayloadOmitted:
			return fmt.Errorf("record %d (shard %s, sequence %s, %d bytes): %w", i, w.Shard, w.Sequence, w.Size, ErrPayloadOmitted)
		case w.S3 == nil:
			continue
		case pr == nil:
			return fmt.Errorf("record %d is at %s and no S3 reader is configured: %w", i, w.S3, ErrBadMessage)
		}
		data, err := pr.GetPayload(ctx, *w.S3)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if len(data) != w.Size {
			return fmt.Errorf("record %d at %s: %d bytes, the letter says %d: %w", i, w.S3, len(data), w.Size, ErrBadMessage)
		}
		recs[i].Data = data
	}
	return nil
}

// receivedAt finds the received_at of a canonical event without decoding it
// (ingest writes it at a fixed place); "" when absent.
func receivedAt(data []byte) string {
	const key = `"received_at":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return ""
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 40 {
		return ""
	}
	return string(rest[:j])
}
