//go:build linux

package rietest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/internal/fakefirehose"
	"github.com/spate-dev/spate/internal/faultproxy"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kpl"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// routerEnv is what the router Lambda talks to.
type routerEnv struct {
	qc       *awssqs.Client
	queue    string
	s3       *spatetest.S3
	firehose *fakefirehose.Server
	proxy    *faultproxy.Proxy // in front of the Firehose fake
	env      map[string]string
}

func newRouterEnv(t *testing.T, ep spatetest.Endpoints, name string) *routerEnv {
	t.Helper()
	ctx := spatetest.Context(t, 30*time.Second)
	var streams []string
	for _, typ := range registry.New(registry.Limits{}).Types() {
		streams = append(streams, "spate-"+typ)
	}
	fh := fakefirehose.New(streams...)
	t.Cleanup(fh.Close)
	proxy, err := faultproxy.New(fh.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	e := &routerEnv{
		qc:       awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) }),
		s3:       spatetest.NewS3(t, "spate-lake"),
		firehose: fh,
		proxy:    proxy,
	}
	// The queue as terraform makes it: SQS's default (and largest)
	// MaximumMessageSize, 1 MiB, which the function reads at start.
	e.queue = newQueue(t, ctx, e.qc, name, nil)
	e.env = map[string]string{
		"AWS_ENDPOINT_URL_SQS":        ep.SQS,
		"AWS_ENDPOINT_URL_FIREHOSE":   proxy.URL(),
		"AWS_ENDPOINT_URL_S3":         e.s3.URL,
		"SPATE_DEAD_LETTER_QUEUE_URL": e.queue,
		"SPATE_DEAD_LETTER_BUCKET":    "spate-lake",
		"SPATE_SOURCE_STREAM":         "spate-events",
		"SPATE_LOG_LEVEL":             "warn",
	}
	return e
}

// event is an event of typ padded by pad bytes. Its event_id follows from
// both: the router skips an event_id it delivered lately from the same
// shard, so different events need different ids.
func event(typ string, pad int) []byte {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", typ, pad)
	return fmt.Appendf(nil, `{"type":%q,"event_id":"6ba7b810-9dad-11d1-80b4-%012x","occurred_at":"2026-11-27T12:00:00.000Z","received_at":"2026-11-27T12:00:00.000Z","platform":"web","content_id":"c1","image_variant":"hero_a","anonymous_id":"a1","pad":%q}`,
		typ, h.Sum64()&(1<<48-1), strings.Repeat("x", pad))
}

func TestRouterUnderRIE(t *testing.T) {
	ep := spatetest.Emulators(t)

	t.Run("aws-lambda-go sample event: dead-lettered, shard moves on", func(t *testing.T) {
		e := newRouterEnv(t, ep, "router-sample")
		fn := start(t, "router", 10, e.env)
		var ev events.KinesisEvent
		if err := json.Unmarshal(awsTestdata(t, "kinesis-event.json"), &ev); err != nil {
			t.Fatal(err)
		}
		resp, _ := fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %+v", resp.BatchItemFailures)
		}
		got := deadLetters(t, spatetest.Context(t, 20*time.Second), e.qc, e.queue, e.s3)
		if len(got) != 2 {
			t.Fatalf("%d dead letters, want both records", len(got))
		}
		for i, l := range got {
			if l.Reason != router.ReasonUndecodable || string(l.Record.Data) != "Hello World" || l.Stream != "spate-events" ||
				l.Wire.Shard != "shardId-000000000000" || l.Wire.Sequence != ev.Records[i].Kinesis.SequenceNumber {
				t.Errorf("dead letter %d: %+v", i, l)
			}
		}
	})

	t.Run("spate event: routed per type", func(t *testing.T) {
		e := newRouterEnv(t, ep, "router-happy")
		fn := start(t, "router", 10, e.env)
		ev := shardRecords("spate-events", "shardId-000000000001", 0, event("impression", 10), event("click", 10), event("impression", 20))
		resp, _ := fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %+v", resp.BatchItemFailures)
		}
		imp := e.firehose.Records("spate-impression")
		if len(imp) != 1 || bytes.Count(imp[0], []byte("\n")) != 2 || len(e.firehose.Records("spate-click")) != 1 {
			t.Errorf("firehose got impression %q, click %q", imp, e.firehose.Records("spate-click"))
		}
		if got := deadLetters(t, spatetest.Context(t, 20*time.Second), e.qc, e.queue, e.s3); len(got) != 0 {
			t.Errorf("%d dead letters, want none", len(got))
		}
	})

	// Every class of record that can never be routed, big ones included,
	// is dead-lettered with its reason on the first attempt; the good
	// records after them are routed and nothing is reported for retry.
	t.Run("every bad-record class", func(t *testing.T) {
		e := newRouterEnv(t, ep, "router-bad")
		fn := start(t, "router", 10, e.env)
		tooLarge := event("click", router.MaxRecordBytes+100) // over one Firehose record, within the queue's 1 MiB
		huge := event("click", 1200<<10)                      // over the queue's 1 MiB too (Kinesis takes 10 MiB)
		bigUnknown := event("purchase", 300<<10)              // over the 256 KiB the DLQ used to assume
		bigGarbage := bytes.Repeat([]byte{0xc3, 0x28}, 200<<10)
		ev := shardRecords("spate-events", "shardId-000000000002", 10,
			[]byte("not json"), tooLarge, event("purchase", 0), bigUnknown, bigGarbage, huge,
			[]byte(`{"type":"click","event_id":"e","type":"click"}`), event("click", 0))
		resp, _ := fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %+v: a poison record holds the shard", resp.BatchItemFailures)
		}
		if n := len(e.firehose.Records("spate-click")); n != 1 {
			t.Errorf("%d click records routed, want the good one", n)
		}
		got := deadLetters(t, spatetest.Context(t, 20*time.Second), e.qc, e.queue, e.s3)
		want := map[string]string{ // sequence → reason
			ev.Records[0].Kinesis.SequenceNumber: router.ReasonUndecodable,
			ev.Records[1].Kinesis.SequenceNumber: router.ReasonTooLarge,
			ev.Records[2].Kinesis.SequenceNumber: router.ReasonUnknownType,
			ev.Records[3].Kinesis.SequenceNumber: router.ReasonUnknownType,
			ev.Records[4].Kinesis.SequenceNumber: router.ReasonUndecodable,
			ev.Records[5].Kinesis.SequenceNumber: router.ReasonTooLarge,
			ev.Records[6].Kinesis.SequenceNumber: router.ReasonUndecodable, // a duplicate key
		}
		if len(got) != len(want) {
			t.Fatalf("%d dead letters, want %d", len(got), len(want))
		}
		for _, l := range got {
			seq := l.Wire.Sequence
			if want[seq] != l.Reason {
				t.Errorf("record %s dead-lettered as %q, want %q", seq, l.Reason, want[seq])
			}
			var in []byte
			for _, r := range ev.Records {
				if r.Kinesis.SequenceNumber == seq {
					in = r.Kinesis.Data
				}
			}
			if !bytes.Equal(l.Record.Data, in) {
				t.Errorf("record %s: dead letter holds %d bytes, not the record's %d", seq, len(l.Record.Data), len(in))
			}
			if (l.Wire.S3 != nil) != (seq == ev.Records[5].Kinesis.SequenceNumber) {
				t.Errorf("record %s of %d bytes: pointer %v; only the one over the queue's limit goes to S3", seq, len(in), l.Wire.S3)
			}
		}
		if keys := e.s3.Keys(t, "spate-lake", ""); len(keys) != 1 || !strings.HasPrefix(keys[0], "dead-letter/too_large/dt=") {
			t.Errorf("bucket holds %q", keys)
		}
	})

	// A KPL-aggregated record (ingest's default) whose user records are
	// bad in different ways, and one whose aggregation is corrupt.
	t.Run("bad records inside an aggregated record", func(t *testing.T) {
		e := newRouterEnv(t, ep, "router-kpl")
		fn := start(t, "router", 10, e.env)
		agg := kpl.Marshal([]kpl.Record{
			{PartitionKey: "s1", Data: event("click", 0)},
			{PartitionKey: "s1", Data: event("purchase", 0)},
			{PartitionKey: "s1", Data: []byte("{not json")},
		})
		corrupt := append(bytes.Clone(agg[:len(agg)-16]), bytes.Repeat([]byte{0}, 16)...) // bad MD5 trailer
		ev := shardRecords("spate-events", "shardId-000000000006", 60, agg, corrupt)
		resp, _ := fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %+v", resp.BatchItemFailures)
		}
		if n := len(e.firehose.Records("spate-click")); n != 1 {
			t.Errorf("%d click records routed, want the good user record", n)
		}
		got := map[string]string{}
		for _, l := range deadLetters(t, spatetest.Context(t, 20*time.Second), e.qc, e.queue, e.s3) {
			got[l.Reason+" "+l.Wire.Sequence] = string(l.Record.Data[:min(len(l.Record.Data), 9)])
		}
		want := map[string]string{
			router.ReasonUnknownType + " " + ev.Records[0].Kinesis.SequenceNumber: `{"type":"`,
			router.ReasonUndecodable + " " + ev.Records[0].Kinesis.SequenceNumber: "{not json",
			router.ReasonUndecodable + " " + ev.Records[1].Kinesis.SequenceNumber: string(corrupt[:9]),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("dead letters %q, want %q", got, want)
		}
	})

	t.Run("no bucket: coordinates-only letter, counted", func(t *testing.T) {
		e := newRouterEnv(t, ep, "router-nobucket")
		delete(e.env, "SPATE_DEAD_LETTER_BUCKET")
		fn := start(t, "router", 10, e.env)
		ev := shardRecords("spate-events", "shardId-000000000003", 20, event("click", 1200<<10))
		resp, _ := fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %+v", resp.BatchItemFailures)
		}
		got := deadLetters(t, spatetest.Context(t, 20*time.Second), e.qc, e.queue, nil)
		if len(got) != 1 {
			t.Fatalf("%d dead letters, want 1", len(got))
		}
		if w := got[0].Wire; !w.PayloadOmitted || w.Size != len(ev.Records[0].Kinesis.Data) || len(w.JSON) != 0 ||
			w.Shard != "shardId-000000000003" || w.Sequence != ev.Records[0].Kinesis.SequenceNumber || got[0].Reason != router.ReasonTooLarge {
			t.Fatalf("dead letter %s %s/%s size %d omitted %v", got[0].Reason, w.Shard, w.Sequence, w.Size, w.PayloadOmitted)
		}
		if !fn.out.waitFor(`"DeadLettersWithoutPayload":1`, 10*time.Second) {
			t.Errorf("no DeadLettersWithoutPayload metric in the function's output:\n%s", fn.out.String())
		}
	})

	t.Run("6 MB batch", func(t *testing.T) {
		e := newRouterEnv(t, ep, "router-6mb")
		fn := start(t, "router", 20, e.env)
		var data [][]byte
		for i := range 8 {
			data = append(data, event("play_progress", 550_000+i))
		}
		ev := shardRecords("spate-events", "shardId-000000000004", 30, data...)
		payload, _ := json.Marshal(ev)
		// Lambda's invocation limit is 6 MB; the RIE truncates above 6 MiB.
		if len(payload) < 5_800_000 || len(payload) > 6<<20 {
			t.Fatalf("payload of %d bytes: not a 6 MB batch", len(payload))
		}
		resp, _ := fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %+v", resp.BatchItemFailures)
		}
		n := 0
		for _, r := range e.firehose.Records("spate-play_progress") {
			n += bytes.Count(r, []byte("\n"))
		}
		if n != len(data) {
			t.Errorf("%d events routed, want %d", n, len(data))
		}
	})

	// Downstream failures: the records are reported from the first one
	// (Lambda retries from there) before the invocation's deadline, with
	// the router's margin to spare, however the destination misbehaves.
	for _, tc := range []struct {
		name  string
		fault func(e *routerEnv)
	}{
		{"firehose 500", func(e *routerEnv) {
			e.proxy.Set(faultproxy.Rule{Ops: []string{"PutRecordBatch"}, Status: http.StatusInternalServerError})
		}},
		{"firehose throttling", func(e *routerEnv) { e.firehose.Throttle(1 << 20) }},
		{"firehose hangs", func(e *routerEnv) { e.proxy.Set(faultproxy.Rule{Ops: []string{"PutRecordBatch"}, Blackhole: true}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRouterEnv(t, ep, "router-"+strings.ReplaceAll(tc.name, " ", "-"))
			const timeout = 3
			fn := start(t, "router", timeout, e.env)
			// A first invocation initialises the function outside the
			// measured one.
			if resp, _ := fn.kinesisResponse(t, shardRecords("spate-events", "shardId-000000000005", 40, []byte("warm-up"))); len(resp.BatchItemFailures) != 0 {
				t.Fatalf("warm-up failures %+v", resp.BatchItemFailures)
			}
			tc.fault(e)
			ev := shardRecords("spate-events", "shardId-000000000005", 50, event("click", 0), event("click", 0), event("purchase", 0))
			resp, took := fn.kinesisResponse(t, ev)
			if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[0].Kinesis.SequenceNumber {
				t.Errorf("failures %+v, want the first record %s", resp.BatchItemFailures, ev.Records[0].Kinesis.SequenceNumber)
			}
			if took >= timeout*time.Second {
				t.Errorf("answered after %s, past the %ds timeout", took, timeout)
			}
			e.proxy.Clear()
			// The unknown type in the batch was dead-lettered regardless.
			reasons := map[string]int{}
			for _, l := range deadLetters(t, spatetest.Context(t, 20*time.Second), e.qc, e.queue, e.s3) {
				reasons[l.Reason]++
			}
			if reasons[router.ReasonUndecodable] != 1 || reasons[router.ReasonUnknownType] != 1 || len(reasons) != 2 {
				t.Errorf("dead letters %v: want the warm-up record and the unknown type", reasons)
			}
		})
	}

	t.Run("missing configuration fails init", func(t *testing.T) {
		e := newRouterEnv(t, ep, "router-noconfig")
		delete(e.env, "SPATE_DEAD_LETTER_QUEUE_URL")
		fn := start(t, "router", 10, e.env)
		status, body, _ := fn.invoke(t, awsTestdata(t, "kinesis-event.json"))
		if status != http.StatusBadGateway {
			t.Errorf("HTTP %d %s, want the RIE's 502 for a failed init", status, body)
		}
		if !fn.out.waitFor("SPATE_DEAD_LETTER_QUEUE_URL is required", 10*time.Second) {
			t.Errorf("init failure not explained in the log:\n%s", fn.out.String())
		}
	})
}
