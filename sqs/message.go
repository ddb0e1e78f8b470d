// Package sqs adapts Amazon SQS to spate as the dead-letter queue of
// ingest: records Kinesis would not take are packed many to a message with
// what an operator needs to know, and redriven into Kinesis later.
package sqs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spate-dev/spate"
)

// MessageVersion is the DLQ message format version.
const MessageVersion = 1

// Message is one DLQ message body: a pack of records and why they are here.
type Message struct {
	Version         int          `json:"spate_dlq"`
	Reason          string       `json:"reason"`
	Count           int          `json:"count"`
	FirstReceivedAt string       `json:"first_received_at,omitempty"`
	LastReceivedAt  string       `json:"last_received_at,omitempty"`
	Records         []WireRecord `json:"records"`
}

// WireRecord is a record in a DLQ message. Event JSON is embedded as is, so
// an operator can read it; other data is base64.
type WireRecord struct {
	Key  string          `json:"key"`
	JSON json.RawMessage `json:"json,omitempty"`
	B64  string          `json:"b64,omitempty"`
}

func wireRecord(r spate.Record) WireRecord {
	if json.Valid(r.Data) {
		return WireRecord{Key: r.PartitionKey, JSON: r.Data}
	}
	return WireRecord{Key: r.PartitionKey, B64: base64.StdEncoding.EncodeToString(r.Data)}
}

// wireSize is what a record adds to a message body, with separators.
func wireSize(r spate.Record) int {
	n := len(r.PartitionKey) + 24
	if json.Valid(r.Data) {
		return n + len(r.Data)
	}
	return n + base64.StdEncoding.EncodedLen(len(r.Data))
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
		if recs[i].PartitionKey == "" || len(recs[i].Data) == 0 {
			return m, nil, fmt.Errorf("decode dlq message: %w: record %d empty", ErrBadMessage, i)
		}
	}
	return m, recs, nil
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
