package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/internal/faulttest"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewarddemo"
	"github.com/spate-dev/spate/rewardhttp"
)

// rewardFake scripts Deliver per aggregate id.
type rewardFake struct {
	mu          sync.Mutex
	fail        map[string]error
	discardFail error
	delivered   []string
	discarded   []string
	block       bool
}

func (f *rewardFake) Deliver(ctx context.Context, a aggregate.Aggregate) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[a.ID]; err != nil {
		return err
	}
	f.delivered = append(f.delivered, a.ID)
	return nil
}

func (f *rewardFake) Discard(_ context.Context, data []byte, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.discardFail != nil {
		return f.discardFail
	}
	f.discarded = append(f.discarded, reason)
	return nil
}

func rewardRecord(seq int, data string) events.KinesisEventRecord {
	s := fmt.Sprintf("49590338271490256608559692538361571095921575989136%06d", seq)
	return events.KinesisEventRecord{
		EventID: "shardId-000000000000:" + s, EventSource: "aws:kinesis",
		Kinesis: events.KinesisRecord{SequenceNumber: s, PartitionKey: "k", Data: []byte(data)},
	}
}

func rewardAggJSON(id string) string {
	return `{"id":"` + id + `","window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z",` +
		`"rows":[{"content_id":"c1","image_variant":"a","platform":"web","impressions":4,"clicks":1,"play_starts":0}]}`
}

func TestRewardHandlerReportsFirstUnfinished(t *testing.T) {
	f := &rewardFake{fail: map[string]error{"a3": errors.New("api down")}}
	h := awslambda.NewRewardHandler(f, 0, nil)
	ev := events.KinesisEvent{Records: []events.KinesisEventRecord{
		rewardRecord(1, rewardAggJSON("a1")),
		rewardRecord(2, `{"not":"an aggregate"}`),
		rewardRecord(3, rewardAggJSON("a3")),
		rewardRecord(4, rewardAggJSON("a4")),
	}}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := []events.KinesisBatchItemFailure{{ItemIdentifier: ev.Records[2].Kinesis.SequenceNumber}}
	if !slices.Equal(resp.BatchItemFailures, want) {
		t.Errorf("failures %+v, want %+v", resp.BatchItemFailures, want)
	}
	if !slices.Equal(f.delivered, []string{"a1"}) || len(f.discarded) != 1 {
		t.Errorf("delivered %v discarded %v: want a1 delivered, the bad record discarded, nothing after a3", f.delivered, f.discarded)
	}

	// Everything through: an empty (not null) failure list.
	f.fail = nil
	resp, _ = h.Handle(context.Background(), events.KinesisEvent{Records: ev.Records[2:]})
	raw, _ := json.Marshal(resp)
	if string(raw) != `{"batchItemFailures":[]}` {
		t.Errorf("response %s", raw)
	}
}

func TestRewardHandlerReportsUndecodableWhenDiscardFails(t *testing.T) {
	f := &rewardFake{discardFail: errors.New("sqs down")}
	h := awslambda.NewRewardHandler(f, 0, nil)
	ev := events.KinesisEvent{Records: []events.KinesisEventRecord{rewardRecord(1, "garbage"), rewardRecord(2, rewardAggJSON("a2"))}}
	resp, _ := h.Handle(context.Background(), ev)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[0].Kinesis.SequenceNumber {
		t.Errorf("failures %+v, want the undecodable record", resp.BatchItemFailures)
	}
}

func TestRewardHandlerAnswersBeforeTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := awslambda.NewRewardHandler(&rewardFake{block: true}, 3*time.Second, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		start := time.Now()
		resp, err := h.Handle(ctx, events.KinesisEvent{Records: []events.KinesisEventRecord{rewardRecord(1, rewardAggJSON("a1"))}})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 57*time.Second {
			t.Errorf("returned after %s, want 57s (deadline minus margin)", took)
		}
		if len(resp.BatchItemFailures) != 1 {
			t.Errorf("failures %+v", resp.BatchItemFailures)
		}
	})
}

// TestAggregatesThroughKinesisToRewards runs the AWS shape against
// kinesalite: the aggregator writes to a real aggregates stream, the reward
// handler reads it back as the event source mapping would, delivering over
// HTTP to the demo receiver behind an API that fails at first; redelivery
// starts from the reported record, and the receiver's totals come out exact.
func TestAggregatesThroughKinesisToRewards(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	kc := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	if err := faulttest.CreateStream(ctx, kc, "spate-aggregates", 1); err != nil {
		t.Fatal(err)
	}

	// Two shards of the events stream, one window each.
	agg := awslambda.NewAggregatorHandler(mustAggFolder(t, aggregate.Config{}), kinesis.NewSink(kc, "spate-aggregates", kinesis.SinkConfig{}), nil)
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		sh := &aggShard{id: shard}
		resp, err := aggInvoke(t, agg, aggEvent(shard, sh.records("impression c1 a", "impression c1 b", "click c1 a", "impression c2 a"), map[string]string{}))
		if err != nil {
			t.Fatal(err)
		}
		final := aggEvent(shard, sh.records("play_start c1 a", "impression c1 a"), resp.State)
		final.IsFinalInvokeForWindow = true
		if _, err := aggInvoke(t, agg, final); err != nil {
			t.Fatal(err)
		}
	}

	// The reward API answers 503 to its first three calls.
	rc := rewarddemo.New(rewarddemo.Config{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		rc.Routes().ServeHTTP(w, r)
	}))
	defer srv.Close()
	client, err := rewardhttp.New(srv.URL+"/v1/rewards", rewardhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// MaxElapsed so short that the first delivery gives up and the batch
	// item failure path is taken. The sender's clock is the fixture's: its
	// window has just ended, so MaxAge is far off on any day the suite runs.
	sender, err := reward.New([]reward.Endpoint{{Model: "thumbnails", Rewarder: client}},
		reward.Config{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxElapsed: time.Nanosecond,
			Now: func() time.Time { return aggWindowStart.Add(2 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	h := awslambda.NewRewardHandler(sender, 0, nil)

	recs := rewardReadStream(ctx, t, kc, "spate-aggregates")
	if len(recs) != 2 {
		t.Fatalf("%d aggregate records on the stream, want 2 (one per shard)", len(recs))
	}
	invocations, failures := 0, 0
	for len(recs) > 0 {
		invocations++
		if invocations > 10 {
			t.Fatal("no progress after 10 invocations")
		}
		resp, err := h.Handle(ctx, events.KinesisEvent{Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) == 0 {
			break
		}
		failures++
		// The mapping checkpoints before the reported record and resumes there.
		i := slices.IndexFunc(recs, func(r events.KinesisEventRecord) bool {
			return r.Kinesis.SequenceNumber == resp.BatchItemFailures[0].ItemIdentifier
		})
		if i < 0 {
			t.Fatalf("reported %q, not in the batch", resp.BatchItemFailures[0].ItemIdentifier)
		}
		recs = recs[i:]
	}
	if failures == 0 {
		t.Error("the failing API never caused a batch item failure")
	}
	tot := rc.Totals()
	want := map[string]rewarddemo.Counts{
		"c1/a": {Impressions: 4, Clicks: 2, PlayStarts: 2},
		"c1/b": {Impressions: 2},
		"c2/a": {Impressions: 2},
	}
	got := map[string]rewarddemo.Counts{}
	for _, r := range tot.Rewards {
		got[r.ContentID+"/"+r.ImageVariant] = r.Counts
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || tot.Requests != 2 {
		t.Errorf("receiver %+v, want %v in 2 requests", tot, want)
	}
}

// rewardReadStream reads every record of stream's shards as Lambda would
// hand them over.
func rewardReadStream(ctx context.Context, t *testing.T, c *awskinesis.Client, stream string) []events.KinesisEventRecord {
	t.Helper()
	shards, err := c.ListShards(ctx, &awskinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var out []events.KinesisEventRecord
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &awskinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := c.GetRecords(ctx, &awskinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				out = append(out, events.KinesisEventRecord{
					EventID: aws.ToString(sh.ShardId) + ":" + aws.ToString(r.SequenceNumber), EventSource: "aws:kinesis",
					Kinesis: events.KinesisRecord{
						PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: aws.ToString(r.SequenceNumber), Data: r.Data,
						ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aws.ToTime(r.ApproximateArrivalTimestamp)},
					},
				})
			}
			if len(res.Records) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return out
}

func TestParseRewardURLs(t *testing.T) {
	got, err := awslambda.ParseRewardURLs(" thumbnails=https://a.example/v1/rewards, thumbnails=https://b.example/r ,rows=https://c/x,", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []awslambda.RewardURL{{"thumbnails", "https://a.example/v1/rewards"}, {"thumbnails", "https://b.example/r"}, {"rows", "https://c/x"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "https://a.example", "=https://a", "m=", " , ", "m=http://c/x", "m=ftp://c/x", "m=c/x"} {
		if _, err := awslambda.ParseRewardURLs(bad, false); err == nil {
			t.Errorf("ParseRewardURLs(%q) accepted", bad)
		}
	}
	// http:// only when explicitly allowed (tests against loopback stand-ins).
	if got, err := awslambda.ParseRewardURLs("m=http://127.0.0.1:9/r", true); err != nil || len(got) != 1 {
		t.Errorf("allowed http = %v, %v", got, err)
	}
	if _, err := awslambda.ParseRewardURLs("m=ftp://c/x", true); err == nil {
		t.Error("ftp accepted with http allowed")
	}
}
