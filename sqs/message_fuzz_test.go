package sqs

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/spate-dev/spate"
)

// FuzzDecodeMessage feeds DLQ message bodies, well-formed and not, to
// DecodeMessage: it must never panic, refuse with ErrBadMessage only, and
// whatever it accepts must survive being packed again unchanged, which is
// what a partial redrive does with refused records.
func FuzzDecodeMessage(f *testing.F) {
	d := NewDLQ(nil, "q", DLQConfig{})
	recs := []spate.Record{
		{PartitionKey: "s1", Data: []byte(`{"type":"click","event_id":"e","received_at":"2026-01-02T03:04:05.000Z"}`)},
		{PartitionKey: "s2", Data: []byte{0xff, 0x00, 'x'}},
	}
	f.Add(bodyOf(d, recs, []int{0, 1}, "kinesis put s: ProvisionedThroughputExceededException"))
	f.Add([]byte(`{"spate_dlq":1,"reason":"too_large","stream":"s","count":1,"records":[{"key":"k","shard":"shardId-1","seq":"9","size":5,"s3":{"bucket":"b","key":"dead-letter/x"}}]}`))
	f.Add([]byte(`{"spate_dlq":1,"reason":"too_large","count":1,"records":[{"key":"k","shard":"shardId-1","seq":"9","arrived_at":"2026-01-02T03:04:05.000Z","size":5,"payload_omitted":true}]}`))
	f.Add([]byte(`{"spate_dlq":1,"reason":"r","count":1,"records":[{"key":"k","b64":"AAE="}]}`))
	f.Add([]byte(`{"spate_dlq":1,"count":2,"records":[{"key":"k","json":{}}]}`))
	f.Add([]byte(`{"spate_dlq":1,"count":1,"records":[{"key":"","json":1}]}`))
	f.Add([]byte(`{"spate_dlq":2,"count":0,"records":[]}`))
	f.Add([]byte(`{"spate_dlq":1,"count":1,"records":[{"key":"k","b64":"!!"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, recs, err := DecodeMessage(body)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			if recs != nil {
				t.Fatalf("records returned with error %v", err)
			}
			return
		}
		if len(recs) != m.Count {
			t.Fatalf("%d records, count %d", len(recs), m.Count)
		}
		idx := make([]int, len(recs))
		for i := range idx {
			w := m.Records[i]
			if elsewhere := w.S3 != nil || w.PayloadOmitted; elsewhere {
				if len(recs[i].Data) != 0 || w.Size <= 0 {
					t.Fatalf("record %d: pointer %+v with data or without size", i, w)
				}
				// Its payload is elsewhere: nothing to repack.
				return
			}
			if recs[i].PartitionKey == "" || len(recs[i].Data) == 0 {
				t.Fatalf("record %d accepted empty", i)
			}
			idx[i] = i
		}
		again := bodyOf(d, recs, idx, m.Reason)
		m2, recs2, err := DecodeMessage(again)
		if err != nil {
			t.Fatalf("repacked message does not decode: %v\n%s", err, again)
		}
		if m2.Count != len(recs) || m2.Reason != m.Reason {
			t.Fatalf("repacked envelope differs: %+v vs %+v", m2, m)
		}
		for i := range recs {
			// Embedded JSON loses only insignificant whitespace.
			want := recs[i].Data
			if json.Valid(want) {
				var c bytes.Buffer
				if err := json.Compact(&c, want); err != nil {
					t.Fatal(err)
				}
				want = c.Bytes()
			}
			if recs2[i].PartitionKey != recs[i].PartitionKey || !bytes.Equal(recs2[i].Data, want) {
				t.Fatalf("record %d changed by repacking:\n%q\n%q", i, recs[i].Data, recs2[i].Data)
			}
		}
		if third := bodyOf(d, recs2, idx, m2.Reason); !bytes.Equal(third, again) {
			t.Fatalf("repacking is not stable:\n%s\n%s", again, third)
		}
	})
}

// bodyOf packs recs[idx] into one message body as PutReason does.
func bodyOf(d *DLQ, recs []spate.Record, idx []int, reason string) []byte {
	wires := make([][]byte, len(recs))
	for _, i := range idx {
		wires[i] = encodeWire(wireRecord(recs[i]))
	}
	return d.body(recs, wires, idx, reason)
}
