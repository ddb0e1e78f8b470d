package awslambda_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kpl"
	"github.com/spate-dev/spate/router"
)

// aggregateFixture re-packs the router fixture as ingest writes with
// aggregation on, the way Lambda hands it over: records 0-3 in one
// aggregated record, 4-5 (the play_progress ones) in another, the rest
// plain. Each aggregated record takes the sequence number of its last.
func aggregateFixture(t *testing.T) (plain, packed events.KinesisEvent) {
	t.Helper()
	plain = kinesisEvent(t, "router-kinesis-event.json")
	if len(plain.Records) < 7 {
		t.Fatalf("fixture has %d records", len(plain.Records))
	}
	pack := func(rs []events.KinesisEventRecord) events.KinesisEventRecord {
		var users []kpl.Record
		for _, r := range rs {
			users = append(users, kpl.Record{PartitionKey: r.Kinesis.PartitionKey, Data: r.Kinesis.Data})
		}
		out := rs[len(rs)-1]
		out.Kinesis.Data = kpl.Marshal(users)
		return out
	}
	packed = plain
	packed.Records = append([]events.KinesisEventRecord{pack(plain.Records[0:4]), pack(plain.Records[4:6])}, plain.Records[6:]...)
	return plain, packed
}

// TestRouterDeaggregates: an aggregated batch routes exactly as the plain
// one does, and mixed batches (plain next to aggregated) are fine.
func TestRouterDeaggregates(t *testing.T) {
	plain, packed := aggregateFixture(t)
	ctx := spatetest.Context(t, 10*time.Second)
	outputs := func(ev events.KinesisEvent) map[string]string {
		h, srv, streams := routerStack(t, &deadLetters{}, router.Config{})
		resp, err := h.Handle(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("resp %+v, err %v", resp, err)
		}
		out := map[string]string{}
		for _, s := range streams {
			for _, r := range srv.Records(s) {
				out[s] += string(r)
			}
		}
		return out
	}
	want, got := outputs(plain), outputs(packed)
	if len(want) == 0 {
		t.Fatal("the plain fixture routed nothing")
	}
	for s, w := range want {
		if got[s] != w {
			t.Errorf("%s: aggregated batch delivered %q, plain %q", s, got[s], w)
		}
	}
}

// TestRouterFailureInsideAggregatedRecord: a failed event inside an
// aggregated record is reported by that record's real sequence number, so
// Lambda redelivers the whole record.
func TestRouterFailureInsideAggregatedRecord(t *testing.T) {
	_, packed := aggregateFixture(t)
	h, srv, streams := routerStack(t, &deadLetters{}, router.Config{MaxAttempts: 2, MinBackoff: time.Millisecond})
	srv.FailRecords(func(stream string, _ []byte) string {
		if stream == streams["play_progress"] {
			return "ServiceUnavailableException"
		}
		return ""
	})
	resp, err := h.Handle(spatetest.Context(t, 10*time.Second), packed)
	if err != nil {
		t.Fatal(err)
	}
	want := packed.Records[1].Kinesis.SequenceNumber
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != want {
		t.Fatalf("failures %+v, want the aggregated record %s", resp.BatchItemFailures, want)
	}
}

// TestRouterDeadLettersBrokenAggregate: an aggregated record whose MD5 does
// not match is dead-lettered whole as undecodable, never guessed at; its
// neighbours route.
func TestRouterDeadLettersBrokenAggregate(t *testing.T) {
	_, packed := aggregateFixture(t)
	broken := slices.Clone(packed.Records[0].Kinesis.Data)
	broken[len(broken)-1] ^= 0xff
	packed.Records[0].Kinesis.Data = broken
	dl := &deadLetters{}
	h, srv, streams := routerStack(t, dl, router.Config{})
	resp, err := h.Handle(spatetest.Context(t, 10*time.Second), packed)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
	bad := dl.recs[router.ReasonUndecodable]
	if len(bad) != 1 || !slices.Equal(bad[0].Data, broken) || bad[0].SequenceNumber != packed.Records[0].Kinesis.SequenceNumber {
		t.Fatalf("undecodable dead letters %+v", dl.recs)
	}
	if n := len(srv.Records(streams["play_progress"])); n != 1 {
		t.Errorf("play_progress got %d records, want its events from the intact aggregate", n)
	}
}

// TestAggregatorDeaggregates: the aggregator counts the events inside
// aggregated records as it counts plain ones.
func TestAggregatorDeaggregates(t *testing.T) {
	plain, packed := aggregateFixture(t)
	count := func(ev events.KinesisEvent) string {
		sink := &aggSink{}
		h := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{}), sink, nil)
		tw := events.KinesisTimeWindowEvent{}
		tw.Records = ev.Records
		start := time.Date(2026, 3, 1, 19, 59, 0, 0, time.UTC)
		tw.Window = events.Window{Start: events.RFC3339EpochTime{Time: start}, End: events.RFC3339EpochTime{Time: start.Add(time.Minute)}}
		tw.ShardID = "shardId-000000000003"
		tw.IsFinalInvokeForWindow = true
		if _, err := h.Handle(spatetest.Context(t, 10*time.Second), tw); err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, r := range sink.recs {
			var a map[string]any
			if err := json.Unmarshal(r.Data, &a); err != nil {
				t.Fatal(err)
			}
			delete(a, "id")
			delete(a, "first_sequence") // the first record of the batch differs
			b, _ := json.Marshal(a)
			rows = append(rows, string(b))
		}
		slices.Sort(rows)
		return strings.Join(rows, "\n")
	}
	want, got := count(plain), count(packed)
	if want == "" {
		t.Fatal("the plain fixture counted nothing")
	}
	if got != want {
		t.Errorf("aggregated batch counted\n%s\nplain\n%s", got, want)
	}
}

var _ spate.Sink = (*aggSink)(nil)
