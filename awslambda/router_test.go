package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/firehose"
	"github.com/spate-dev/spate/internal/fakefirehose"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
	"github.com/spate-dev/spate/sqs"
)

// kinesisEvent reads a fixture as Lambda hands it to the handler.
func kinesisEvent(t *testing.T, name string) events.KinesisEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

type deadLetters struct {
	mu   sync.Mutex
	recs map[string][]spate.Record
}

func (d *deadLetters) PutReason(_ context.Context, recs []spate.Record, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.recs == nil {
		d.recs = map[string][]spate.Record{}
	}
	d.recs[reason] = append(d.recs[reason], recs...)
	return nil
}

// routerStack is the Lambda's wiring with the fake Firehose.
func routerStack(t *testing.T, dlq router.DeadLetter, cfg router.Config) (*awslambda.RouterHandler, *fakefirehose.Server, map[string]string) {
	t.Helper()
	reg := registry.New(registry.Limits{})
	streams, err := awslambda.RouterStreams(reg.Types(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	srv := fakefirehose.New(slices.Collect(maps.Values(streams))...)
	t.Cleanup(srv.Close)
	fh := awsfirehose.NewFromConfig(spatetest.AWSConfig(), func(o *awsfirehose.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	cfg.Streams = streams
	r, err := router.New(reg, firehose.NewDestination(fh), dlq, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return awslambda.NewRouterHandler(r, nil), srv, streams
}

func responseJSON(t *testing.T, resp events.KinesisEventResponse) string {
	t.Helper()
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRouterAWSSampleEvent feeds aws-lambda-go's published sample: its
// records hold "Hello World", which no route takes, so both are
// dead-lettered with their shard and sequence numbers and the batch
// succeeds.
func TestRouterAWSSampleEvent(t *testing.T) {
	dl := &deadLetters{}
	h, _, _ := routerStack(t, dl, router.Config{})
	resp, err := h.Handle(spatetest.Context(t, 10*time.Second), kinesisEvent(t, "router-aws-sample-kinesis-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := responseJSON(t, resp); got != `{"batchItemFailures":[]}` {
		t.Errorf("response %s", got)
	}
	got := dl.recs[router.ReasonUndecodable]
	if len(got) != 2 {
		t.Fatalf("dead letters %v", dl.recs)
	}
	want := []string{"49568167373333333333333333333333333333333333333333333333", "49568167373333333334444444444444444444444444444444444444"}
	for i, r := range got {
		if string(r.Data) != "Hello World" || r.ShardID != "shardId-000000000000" || r.SequenceNumber != want[i] || r.PartitionKey != "s1" {
			t.Errorf("dead letter %d = %+v", i, r)
		}
	}
	if !got[0].ArrivedAt.Equal(time.Unix(1480641523, 477e6)) {
		t.Errorf("arrived at %v", got[0].ArrivedAt)
	}
}

// TestRouterFixture routes a batch of every type, in Lambda's shape, to
// the per-type streams, packed.
func TestRouterFixture(t *testing.T) {
	dl := &deadLetters{}
	h, srv, streams := routerStack(t, dl, router.Config{})
	ev := kinesisEvent(t, "router-kinesis-event.json")
	resp, err := h.Handle(spatetest.Context(t, 10*time.Second), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
	want := map[string][]string{}
	for _, r := range ev.Records {
		var e spate.Event
		if err := json.Unmarshal(r.Kinesis.Data, &e); err != nil {
			t.Fatal(err)
		}
		if _, known := streams[e.Type]; known {
			want[streams[e.Type]] = append(want[streams[e.Type]], string(r.Kinesis.Data)+"\n")
		}
	}
	for _, stream := range streams {
		recs := srv.Records(stream)
		if len(recs) != 1 {
			t.Fatalf("%s: %d records, want one packed record", stream, len(recs))
		}
		if got := string(recs[0]); got != strings.Join(want[stream], "") {
			t.Errorf("%s: %q", stream, got)
		}
	}
	if u := dl.recs[router.ReasonUnknownType]; len(u) != 1 || !strings.Contains(string(u[0].Data), `"purchase"`) || u[0].ShardID != "shardId-000000000003" {
		t.Errorf("unknown-type dead letters %+v", dl.recs)
	}
}

// TestRouterReportsTheLowestFailedSequence: when one type's stream keeps
// failing, the response names the first of its records, so Lambda
// checkpoints before it.
func TestRouterReportsTheLowestFailedSequence(t *testing.T) {
	h, srv, streams := routerStack(t, &deadLetters{}, router.Config{MaxAttempts: 2, MinBackoff: time.Millisecond})
	srv.FailRecords(func(stream string, _ []byte) string {
		if stream == streams["play_progress"] {
			return "ServiceUnavailableException"
		}
		return ""
	})
	ev := kinesisEvent(t, "router-kinesis-event.json")
	resp, err := h.Handle(spatetest.Context(t, 10*time.Second), ev)
	if err != nil {
		t.Fatal(err)
	}
	// Records 4 and 5 are play_progress.
	want := ev.Records[4].Kinesis.SequenceNumber
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != want {
		t.Errorf("failures %+v, want %s", resp.BatchItemFailures, want)
	}
	if srv.Calls(streams["play_progress"]) != 2 {
		t.Errorf("play_progress calls = %d, want 2 attempts", srv.Calls(streams["play_progress"]))
	}
}

type routeFunc func(ctx context.Context, recs []spate.Record) error

func (f routeFunc) Route(ctx context.Context, recs []spate.Record) error { return f(ctx, recs) }

func TestRouterOrdersSequenceNumbersNumerically(t *testing.T) {
	seqs := []string{"8", "10", "9", "100", "0011"}
	ev := events.KinesisEvent{}
	for _, s := range seqs {
		ev.Records = append(ev.Records, events.KinesisEventRecord{EventID: "shardId-000000000000:" + s, Kinesis: events.KinesisRecord{SequenceNumber: s}})
	}
	tests := []struct {
		name   string
		failed []int
		err    error
		want   string
	}{
		{"numeric, not lexical", []int{1, 2, 3}, nil, "9"},
		{"leading zeros", []int{3, 4}, nil, "0011"},
		{"whole batch", nil, errors.New("boom"), "8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := awslambda.NewRouterHandler(routeFunc(func(_ context.Context, recs []spate.Record) error {
				if tc.err != nil {
					return tc.err
				}
				be := spate.NewBatchError(len(recs))
				for _, i := range tc.failed {
					be.Failed(i, spate.ErrThrottled)
				}
				return be
			}), nil)
			resp, err := h.Handle(context.Background(), ev)
			if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != tc.want {
				t.Errorf("resp %+v, err %v; want %s", resp, err, tc.want)
			}
		})
	}
}

func TestRouterStreams(t *testing.T) {
	types := []string{"click", "play_end"}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	got, err := awslambda.RouterStreams(types, env(nil))
	if err != nil || got["click"] != "spate-click" || got["play_end"] != "spate-play_end" {
		t.Errorf("defaults: %v %v", got, err)
	}
	got, err = awslambda.RouterStreams(types, env(map[string]string{"SPATE_FIREHOSE_PREFIX": "prod-", "SPATE_FIREHOSE_STREAMS": "click=clicks-v2"}))
	if err != nil || got["click"] != "clicks-v2" || got["play_end"] != "prod-play_end" {
		t.Errorf("overrides: %v %v", got, err)
	}
	if _, err := awslambda.RouterStreams(types, env(map[string]string{"SPATE_FIREHOSE_STREAMS": "purchase=x"})); err == nil {
		t.Error("accepted an override for an unknown type")
	}
}

// TestRouterDeadLettersToSQS runs the dead-letter path against the SQS
// emulator: what no route takes is in the queue with its reason.
func TestRouterDeadLettersToSQS(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 30*time.Second)
	client := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) })
	q, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("spate-router-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := routerStack(t, sqs.NewDLQ(client, aws.ToString(q.QueueUrl), sqs.DLQConfig{}), router.Config{})
	resp, err := h.Handle(ctx, kinesisEvent(t, "router-aws-sample-kinesis-event.json"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
	out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range out.Messages {
		msg, recs, err := sqs.DecodeMessage([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Reason != router.ReasonUndecodable {
			t.Errorf("reason %q", msg.Reason)
		}
		for _, r := range recs {
			got = append(got, string(r.Data))
		}
	}
	if !slices.Equal(got, []string{"Hello World", "Hello World"}) {
		t.Errorf("queue holds %q", got)
	}
}
