package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/awslambda"
)

var aggWindowStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const aggStreamARN = "arn:aws:kinesis:eu-north-1:123456789012:stream/spate-events"

// aggSink collects what the aggregator writes, failing on demand.
type aggSink struct {
	mu   sync.Mutex
	recs []spate.Record
	fail error
}

func (s *aggSink) Put(_ context.Context, recs []spate.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *aggSink) aggregates(t *testing.T) []aggregate.Aggregate {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []aggregate.Aggregate
	for _, r := range s.recs {
		a, err := aggregate.Decode(r.Data)
		if err != nil {
			t.Fatalf("aggregate record %s: %v", r.Data, err)
		}
		if r.PartitionKey != a.ID {
			t.Errorf("partition key %q, want the aggregate id %q", r.PartitionKey, a.ID)
		}
		out = append(out, a)
	}
	return out
}

// aggShard builds Lambda's tumbling-window invocations for one shard.
type aggShard struct {
	id  string
	seq int
}

func (s *aggShard) records(typs ...string) []events.KinesisEventRecord {
	var out []events.KinesisEventRecord
	for _, spec := range typs {
		var typ, content, variant string
		fmt.Sscanf(spec, "%s %s %s", &typ, &content, &variant)
		e := spate.Event{Type: typ, EventID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", OccurredAt: aggWindowStart, ReceivedAt: aggWindowStart,
			SessionID: "s1", Platform: "web", Props: []spate.Prop{spate.Str("content_id", content), spate.Str("image_variant", variant)}}
		seq := fmt.Sprintf("4959033827149025660855969253836157109592157598913%07d", s.seq)
		s.seq++
		out = append(out, events.KinesisEventRecord{
			EventID: s.id + ":" + seq, EventSource: "aws:kinesis", EventSourceArn: aggStreamARN,
			Kinesis: events.KinesisRecord{PartitionKey: "s1", SequenceNumber: seq, Data: e.AppendJSON(nil),
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aggWindowStart.Add(time.Second)}},
		})
	}
	return out
}

// invoke sends ev through JSON both ways, as the Lambda runtime does.
func aggInvoke(t *testing.T, h *awslambda.AggregatorHandler, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var in events.KinesisTimeWindowEvent
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), in)
	if err != nil {
		return resp, err
	}
	out, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back events.KinesisTimeWindowEventResponse
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.State == nil {
		t.Fatalf("response %s has no state: Lambda treats that as a failed invocation", out)
	}
	if len(out) > 1_000_000 {
		t.Fatalf("response of %d bytes: state over Lambda's 1 MB", len(out))
	}
	return back, nil
}

func aggEvent(shard string, recs []events.KinesisEventRecord, state map[string]string) events.KinesisTimeWindowEvent {
	ev := events.KinesisTimeWindowEvent{}
	ev.Records = recs
	ev.Window = events.Window{Start: events.RFC3339EpochTime{Time: aggWindowStart}, End: events.RFC3339EpochTime{Time: aggWindowStart.Add(time.Minute)}}
	ev.State = state
	ev.ShardID = shard
	ev.EventSourceARN = aggStreamARN
	return ev
}

func aggTotals(aggs []aggregate.Aggregate) map[string]aggregate.Counts {
	out := map[string]aggregate.Counts{}
	for _, a := range aggs {
		for _, r := range a.Rows {
			k := r.ContentID + "/" + r.ImageVariant
			c := out[k]
			c.Impressions += r.Impressions
			c.Clicks += r.Clicks
			c.PlayStarts += r.PlayStarts
			out[k] = c
		}
	}
	return out
}

func mustAggFolder(t *testing.T, cfg aggregate.Config) *aggregate.Folder {
	t.Helper()
	f, err := aggregate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAggregatorFixture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "aggregator-time-window-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisTimeWindowEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	sink := &aggSink{}
	h := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{}), sink, nil)
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.recs) != 0 {
		t.Fatalf("wrote %d aggregates before the window's final invocation", len(sink.recs))
	}
	st, err := aggregate.DecodeState(resp.State)
	if err != nil || st == nil {
		t.Fatalf("state %v: %v", resp.State, err)
	}
	if st.Source != aggStreamARN+"/shardId-000000000003" {
		t.Errorf("source %q", st.Source)
	}
	if got := st.Get(aggregate.Key{ContentID: "c1", ImageVariant: "hero_a", Platform: "web"}); got != (aggregate.Counts{Impressions: 1, Clicks: 1}) {
		t.Errorf("hero_a %+v", got)
	}
	// The final invocation carries no records, only the state.
	final := aggEvent("shardId-000000000003", nil, resp.State)
	final.IsFinalInvokeForWindow = true
	resp, err = h.Handle(context.Background(), final)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.State) != 0 || resp.BatchItemFailures == nil {
		t.Errorf("final response %+v: want empty state and an empty failure list", resp)
	}
	aggs := sink.aggregates(t)
	if len(aggs) != 1 || !aggs[0].Window.Start.Equal(aggWindowStart) || aggs[0].Partial {
		t.Fatalf("aggregates %+v", aggs)
	}
	want := map[string]aggregate.Counts{"c1/hero_a": {Impressions: 1, Clicks: 1}, "c1/hero_b": {Impressions: 1}}
	if fmt.Sprint(aggTotals(aggs)) != fmt.Sprint(want) {
		t.Errorf("totals %v, want %v", aggTotals(aggs), want)
	}
}

func TestAggregatorCarriesStateAcrossInvocations(t *testing.T) {
	sink := &aggSink{}
	h := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{}), sink, nil)
	sh := &aggShard{id: "shardId-000000000000"}
	state := map[string]string{}
	batches := [][]string{
		{"impression c1 a", "impression c1 b", "click c1 a"},
		{"impression c1 a", "play_start c1 a", "page_view x y"},
		{"impression c2 a", "click c1 b"},
	}
	for _, b := range batches {
		resp, err := aggInvoke(t, h, aggEvent(sh.id, sh.records(b...), state))
		if err != nil {
			t.Fatal(err)
		}
		state = resp.State
	}
	final := aggEvent(sh.id, nil, state)
	final.IsFinalInvokeForWindow = true
	if _, err := aggInvoke(t, h, final); err != nil {
		t.Fatal(err)
	}
	want := map[string]aggregate.Counts{
		"c1/a": {Impressions: 2, Clicks: 1, PlayStarts: 1},
		"c1/b": {Impressions: 1, Clicks: 1},
		"c2/a": {Impressions: 1},
	}
	if got := aggTotals(sink.aggregates(t)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals %v, want %v", got, want)
	}
}

func TestAggregatorEarlyTerminationEmitsPartials(t *testing.T) {
	sink := &aggSink{}
	h := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{}), sink, nil)
	sh := &aggShard{id: "shardId-000000000000"}
	resp, err := aggInvoke(t, h, aggEvent(sh.id, sh.records("impression c1 a", "click c1 a"), map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	early := aggEvent(sh.id, sh.records("impression c1 a"), resp.State)
	early.IsWindowTerminatedEarly = true
	resp, err = aggInvoke(t, h, early)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.State) != 0 {
		t.Errorf("state after early termination %v, want empty: the window continues afresh", resp.State)
	}
	// The same window continues with a fresh state.
	resp, err = aggInvoke(t, h, aggEvent(sh.id, sh.records("impression c1 a", "click c1 a"), resp.State))
	if err != nil {
		t.Fatal(err)
	}
	final := aggEvent(sh.id, nil, resp.State)
	final.IsFinalInvokeForWindow = true
	if _, err := aggInvoke(t, h, final); err != nil {
		t.Fatal(err)
	}
	aggs := sink.aggregates(t)
	if len(aggs) != 2 || !aggs[0].Partial || aggs[1].Partial || aggs[0].ID == aggs[1].ID {
		t.Fatalf("aggregates %+v: want a partial then a final with distinct ids", aggs)
	}
	if got := aggTotals(aggs)["c1/a"]; got != (aggregate.Counts{Impressions: 3, Clicks: 2}) {
		t.Errorf("totals %+v", got)
	}
}

func TestAggregatorRetriedFinalEmitsTheSameIDs(t *testing.T) {
	sink := &aggSink{fail: errors.New("kinesis unavailable")}
	h := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{}), sink, nil)
	sh := &aggShard{id: "shardId-000000000000"}
	resp, err := aggInvoke(t, h, aggEvent(sh.id, sh.records("impression c1 a"), map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	final := aggEvent(sh.id, sh.records("click c1 a"), resp.State)
	final.IsFinalInvokeForWindow = true
	if _, err := aggInvoke(t, h, final); err == nil {
		t.Fatal("final invocation succeeded with a failing sink")
	}
	// Lambda retries the same invocation; this time some writes succeed
	// twice (a retry after a partial failure).
	sink.fail = nil
	for range 2 {
		if _, err := aggInvoke(t, h, final); err != nil {
			t.Fatal(err)
		}
	}
	aggs := sink.aggregates(t)
	if len(aggs) != 2 || aggs[0].ID != aggs[1].ID {
		t.Fatalf("aggregates %+v: want the same id on both tries", aggs)
	}
}

func TestAggregatorBudgetEmitsMidWindow(t *testing.T) {
	sink := &aggSink{}
	h := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{StateBytes: aggregate.MinStateBytes}), sink, nil)
	sh := &aggShard{id: "shardId-000000000000"}
	state := map[string]string{}
	const keys = 2000
	for b := range keys / 100 {
		var specs []string
		for i := range 100 {
			specs = append(specs, fmt.Sprintf("impression content-%05d a", b*100+i))
		}
		resp, err := aggInvoke(t, h, aggEvent(sh.id, sh.records(specs...), state))
		if err != nil {
			t.Fatal(err)
		}
		state = resp.State
		raw, _ := json.Marshal(state)
		if len(raw) > aggregate.MinStateBytes {
			t.Fatalf("state of %d bytes over the %d budget", len(raw), aggregate.MinStateBytes)
		}
	}
	if len(sink.recs) == 0 {
		t.Fatal("no aggregates written before the final invocation")
	}
	final := aggEvent(sh.id, nil, state)
	final.IsFinalInvokeForWindow = true
	if _, err := aggInvoke(t, h, final); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range aggTotals(sink.aggregates(t)) {
		n += c.Impressions
	}
	if n != keys {
		t.Errorf("%d impressions emitted, want %d", n, keys)
	}
}

func TestAggregatorStartsAfreshOnUnreadableState(t *testing.T) {
	sink := &aggSink{}
	h := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{}), sink, nil)
	sh := &aggShard{id: "shardId-000000000000"}
	ev := aggEvent(sh.id, sh.records("impression c1 a"), map[string]string{"something": "else"})
	ev.IsFinalInvokeForWindow = true
	if _, err := aggInvoke(t, h, ev); err != nil {
		t.Fatalf("unreadable state failed the invocation: %v", err)
	}
	if got := aggTotals(sink.aggregates(t))["c1/a"]; got.Impressions != 1 {
		t.Errorf("totals %+v", got)
	}
}
