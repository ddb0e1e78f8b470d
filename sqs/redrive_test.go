package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/faulttest"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/sqs"
)

// redriveEnv is one stream and one DLQ on the shared emulators.
type redriveEnv struct {
	kc     *awskinesis.Client
	qc     *awssqs.Client
	stream string
	queue  string
	sink   *kinesis.Sink
}

func newRedriveEnv(t *testing.T, ctx context.Context, ep spatetest.Endpoints, queueAttrs map[string]string) *redriveEnv {
	t.Helper()
	cfg := spatetest.AWSConfig()
	e := &redriveEnv{
		kc:     awskinesis.NewFromConfig(cfg, func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) }),
		qc:     awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) }),
		stream: faulttest.Name(t, "stream"),
	}
	if err := faulttest.CreateStream(ctx, e.kc, e.stream, 2); err != nil {
		t.Fatal(err)
	}
	q, err := e.qc.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(faulttest.Name(t, "dlq")), Attributes: queueAttrs})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	e.queue = aws.ToString(q.QueueUrl)
	e.sink = kinesis.NewSink(e.kc, e.stream, kinesis.SinkConfig{})
	return e
}

// records returns n distinct event records.
func records(n int) []spate.Record {
	recs := make([]spate.Record, n)
	for i := range recs {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		recs[i] = spate.Record{
			PartitionKey: fmt.Sprintf("session-%d", i%7),
			Data:         fmt.Appendf(nil, `{"type":"click","event_id":%q,"occurred_at":"2026-01-02T03:04:05.000Z","received_at":"2026-01-02T03:04:05.%03dZ","anonymous_id":"a","platform":"web","content_id":"c%d"}`, id, i%1000, i),
		}
	}
	return recs
}

// enqueue packs recs into DLQ messages of at most maxBytes each.
func (e *redriveEnv) enqueue(t *testing.T, ctx context.Context, recs []spate.Record, maxBytes int) {
	t.Helper()
	dlq := sqs.NewDLQ(e.qc, e.queue, sqs.DLQConfig{MaxMessageBytes: maxBytes})
	if err := dlq.PutReason(ctx, recs, "kinesis put s: ProvisionedThroughputExceededException: throttled"); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

func (e *redriveEnv) streamData(t *testing.T, ctx context.Context) []string {
	t.Helper()
	recs, err := faulttest.ReadStream(ctx, e.kc, e.stream)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.PartitionKey + " " + string(r.Data)
	}
	slices.Sort(out)
	return out
}

func (e *redriveEnv) queueContents(t *testing.T, ctx context.Context, wait time.Duration) faulttest.QueueContents {
	t.Helper()
	qc, err := faulttest.ReadQueue(ctx, e.qc, e.queue, time.Minute, wait)
	if err != nil {
		t.Fatal(err)
	}
	return qc
}

func want(recs []spate.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.PartitionKey + " " + string(r.Data)
	}
	slices.Sort(out)
	return out
}

func newRedriver(t *testing.T, api sqs.RedriveAPI, e *redriveEnv, sink spate.Sink, cfg sqs.RedriveConfig) *sqs.Redriver {
	t.Helper()
	if cfg.WaitTime == 0 {
		cfg.WaitTime = time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 10 * time.Millisecond
	}
	if cfg.Rate == 0 {
		cfg.Rate = 1e6
	}
	r, err := sqs.NewRedriver(api, e.queue, sink, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// failingSend fails every SendMessageBatch, to break re-enqueueing.
type failingSend struct{ *awssqs.Client }

func (failingSend) SendMessageBatch(context.Context, *awssqs.SendMessageBatchInput, ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	return nil, errors.New("injected: sqs unavailable")
}

func TestRedriver(t *testing.T) {
	ep := spatetest.Emulators(t)

	t.Run("every record reaches the stream once and messages are deleted", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		recs := records(40)
		e.enqueue(t, ctx, recs, 2048)
		var results []sqs.MessageResult
		r := newRedriver(t, e.qc, e, e.sink, sqs.RedriveConfig{StopWhenEmpty: true, OnMessage: func(m sqs.MessageResult) { results = append(results, m) }})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.streamData(t, ctx); !slices.Equal(got, want(recs)) {
			t.Fatalf("stream holds %d records, want the %d enqueued exactly once", len(got), len(recs))
		}
		st := r.Stats()
		if st.Messages < 2 || st.Redriven != st.Messages || st.Records != int64(len(recs)) || st.Errors != 0 {
			t.Fatalf("stats %+v: want every message redriven", st)
		}
		for _, m := range results {
			if m.Outcome != sqs.Redriven || m.Put != m.Records || m.ReceiveCount != 1 || m.MessageID == "" {
				t.Fatalf("result %+v", m)
			}
		}
		if qc := e.queueContents(t, ctx, 0); qc.Messages != 0 {
			t.Fatalf("%d messages left in the queue", qc.Messages)
		}
	})

	t.Run("partial failure re-enqueues only the refused records", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		recs := records(30)
		e.enqueue(t, ctx, recs, 256<<10)
		// Every third record is throttled the first time it is put.
		var mu sync.Mutex
		seen := map[string]bool{}
		third := map[string]bool{}
		for i, r := range recs {
			third[string(r.Data)] = i%3 == 0
		}
		throttled := 0
		sink := spate.SinkFunc(func(ctx context.Context, batch []spate.Record) error {
			mu.Lock()
			be := spate.NewBatchError(len(batch))
			var pass []spate.Record
			var passIdx []int
			for i, r := range batch {
				k := string(r.Data)
				if !seen[k] && third[k] {
					be.Failed(i, fmt.Errorf("kinesis put: ProvisionedThroughputExceededException: %w", spate.ErrThrottled))
					throttled++
				} else {
					pass = append(pass, r)
					passIdx = append(passIdx, i)
				}
				seen[k] = true
			}
			mu.Unlock()
			for j, err := range spate.ItemErrors(e.sink.Put(ctx, pass), len(pass)) {
				if err != nil {
					be.Failed(passIdx[j], err)
				}
			}
			return be.OrNil()
		})
		r := newRedriver(t, e.qc, e, sink, sqs.RedriveConfig{StopWhenEmpty: true})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if throttled == 0 {
			t.Fatal("test sink throttled nothing")
		}
		if got := e.streamData(t, ctx); !slices.Equal(got, want(recs)) {
			t.Fatalf("stream holds %d records, want the %d enqueued exactly once", len(got), len(recs))
		}
		st := r.Stats()
		if st.Requeued != 1 || st.RequeuedRecords != int64(throttled) || st.Redriven != 1 || st.Records != int64(len(recs)) {
			t.Fatalf("stats %+v: want 1 message requeued with %d records, then redriven", st, throttled)
		}
		if qc := e.queueContents(t, ctx, 0); qc.Messages != 0 {
			t.Fatalf("%d messages left in the queue", qc.Messages)
		}
	})

	t.Run("a message the stream refuses entirely is retained whole", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		recs := records(12)
		e.enqueue(t, ctx, recs, 256<<10)
		down := spate.SinkFunc(func(context.Context, []spate.Record) error {
			return fmt.Errorf("kinesis put: %w", errors.New("connection refused"))
		})
		r := newRedriver(t, e.qc, e, down, sqs.RedriveConfig{Limit: 1, VisibilityTimeout: time.Second})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Retained != 1 || st.Records != 0 || st.Redriven != 0 {
			t.Fatalf("stats %+v: want the message retained", st)
		}
		// It comes back once its visibility timeout ends.
		qc := e.queueContents(t, ctx, 2*time.Second)
		if qc.Messages != 1 || !slices.Equal(want(qc.Records), want(recs)) {
			t.Fatalf("queue holds %d messages with %d records, want the original", qc.Messages, len(qc.Records))
		}
	})

	t.Run("a failed re-enqueue keeps the original message", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		recs := records(10)
		e.enqueue(t, ctx, recs, 256<<10)
		half := spate.SinkFunc(func(ctx context.Context, batch []spate.Record) error {
			be := spate.NewBatchError(len(batch))
			for i := range batch {
				if i >= 5 {
					be.Failed(i, spate.ErrThrottled)
				}
			}
			if err := e.sink.Put(ctx, batch[:5]); err != nil {
				return err
			}
			return be
		})
		r := newRedriver(t, failingSend{e.qc}, e, half, sqs.RedriveConfig{Limit: 1, VisibilityTimeout: time.Second})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Retained != 1 || st.Records != 5 || st.Errors != 1 {
			t.Fatalf("stats %+v: want retained after 5 records put", st)
		}
		qc := e.queueContents(t, ctx, 2*time.Second)
		if qc.Messages != 1 || len(qc.Records) != len(recs) {
			t.Fatalf("queue holds %d messages with %d records, want the original with %d", qc.Messages, len(qc.Records), len(recs))
		}
	})

	t.Run("poison is left for the queue's redrive policy", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		park, err := newQueue(ctx, ep, faulttest.Name(t, "park"), nil)
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := park.policy(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		e := newRedriveEnv(t, ctx, ep, attrs)
		garbage := `{"not":"a spate message"}`
		if _, err := e.qc.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(e.queue), MessageBody: aws.String(garbage)}); err != nil {
			t.Fatal(err)
		}
		recs := records(3)
		e.enqueue(t, ctx, recs, 256<<10)
		r := newRedriver(t, e.qc, e, e.sink, sqs.RedriveConfig{StopWhenEmpty: true, VisibilityTimeout: time.Second, WaitTime: 2 * time.Second})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Poison != 1 || st.Redriven != 1 {
			t.Fatalf("stats %+v: want 1 poison and 1 redriven", st)
		}
		if got := e.streamData(t, ctx); !slices.Equal(got, want(recs)) {
			t.Fatalf("stream holds %d records, want %d", len(got), len(recs))
		}
		parked, err := faulttest.ReadQueue(ctx, e.qc, park.url, time.Minute, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(parked.Poison) != 1 || string(parked.Poison[0]) != garbage {
			t.Fatalf("park queue holds %d poison bodies, want the garbage message unchanged", len(parked.Poison))
		}
	})

	t.Run("a message refused for good is parked, not put again", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		recs := records(4)
		e.enqueue(t, ctx, recs, 256<<10)
		var puts atomic.Int64
		tooLarge := spate.SinkFunc(func(ctx context.Context, batch []spate.Record) error {
			puts.Add(1)
			be := spate.NewBatchError(len(batch))
			be.Failed(0, fmt.Errorf("kinesis put: %w", spate.ErrTooLarge))
			if err := e.sink.Put(ctx, batch[1:]); err != nil {
				return err
			}
			return be
		})
		r := newRedriver(t, e.qc, e, tooLarge, sqs.RedriveConfig{StopWhenEmpty: true, VisibilityTimeout: time.Second})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Requeued != 1 || st.RequeuedRecords != 1 || st.Poison < 1 || puts.Load() != 1 {
			t.Fatalf("stats %+v, puts %d: want the refused record requeued once, then seen as poison", st, puts.Load())
		}
		if got := e.streamData(t, ctx); len(got) != 3 {
			t.Fatalf("stream holds %d records, want 3", len(got))
		}
		qc := e.queueContents(t, ctx, 2*time.Second)
		if qc.Messages != 1 || len(qc.Records) != 1 || string(qc.Records[0].Data) != string(recs[0].Data) {
			t.Fatalf("queue holds %d messages, %d records; want the refused record alone", qc.Messages, len(qc.Records))
		}
	})

	t.Run("nothing is received while the stream is unhealthy", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		e.enqueue(t, ctx, records(5), 256<<10)
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		var asked atomic.Int64
		r := newRedriver(t, e.qc, e, e.sink, sqs.RedriveConfig{HealthPoll: time.Millisecond, Healthy: func() bool {
			if asked.Add(1) == 3 {
				stop()
			}
			return false
		}})
		if err := r.Run(runCtx); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Receives != 0 {
			t.Fatalf("stats %+v: want no receive", st)
		}
		if qc := e.queueContents(t, ctx, 0); qc.Messages != 1 || len(qc.Records) != 5 {
			t.Fatalf("queue holds %d messages, want the one untouched", qc.Messages)
		}
	})

	t.Run("stopping hands back the messages not yet handled", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		recs := records(30)
		e2 := newRedriveEnv(t, ctx, ep, nil)
		e2.enqueue(t, ctx, recs, 2048)
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		first := 0
		sink := spate.SinkFunc(func(ctx context.Context, batch []spate.Record) error {
			if first == 0 {
				first = len(batch)
				stop()
			}
			return e2.sink.Put(ctx, batch)
		})
		r := newRedriver(t, e2.qc, e2, sink, sqs.RedriveConfig{VisibilityTimeout: time.Minute})
		if err := r.Run(runCtx); err != nil {
			t.Fatal(err)
		}
		st := r.Stats()
		if st.Redriven != 1 || st.Released != st.Messages-1 {
			t.Fatalf("stats %+v: want the message in hand finished and the rest released", st)
		}
		if got := e2.streamData(t, ctx); len(got) != first {
			t.Fatalf("stream holds %d records, want the %d of the first message", len(got), first)
		}
		// Visible at once despite the minute's visibility timeout.
		qc := e2.queueContents(t, ctx, 0)
		if len(qc.Records)+first != len(recs) {
			t.Fatalf("queue holds %d records, stream %d; want %d in all", len(qc.Records), first, len(recs))
		}
	})

	t.Run("the rate bound holds records back", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		e.enqueue(t, ctx, records(30), 256<<10)
		// 10 records at once, then one per 1000 s: the second ten cannot
		// go before the deadline, so the message is handed back untouched.
		var results []sqs.MessageResult
		r := newRedriver(t, e.qc, e, e.sink, sqs.RedriveConfig{Rate: 0.001, Burst: 10, VisibilityTimeout: time.Minute, Limit: 5,
			OnMessage: func(m sqs.MessageResult) { results = append(results, m) }})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if len(results) != 1 || results[0].Outcome != sqs.Released {
			t.Fatalf("results %+v: want the message released", results)
		}
		if got := e.streamData(t, ctx); len(got) != 0 {
			t.Fatalf("stream holds %d records, want none", len(got))
		}
		if qc := e.queueContents(t, ctx, 0); qc.Messages != 1 || len(qc.Records) != 30 {
			t.Fatalf("queue holds %d messages, want the one back", qc.Messages)
		}
	})

	t.Run("a dry run counts and leaves the queue as it was", func(t *testing.T) {
		ctx := spatetest.Context(t, time.Minute)
		e := newRedriveEnv(t, ctx, ep, nil)
		recs := records(25)
		e.enqueue(t, ctx, recs, 2048)
		if _, err := e.qc.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(e.queue), MessageBody: aws.String("garbage")}); err != nil {
			t.Fatal(err)
		}
		r := newRedriver(t, e.qc, e, e.sink, sqs.RedriveConfig{DryRun: true, StopWhenEmpty: true, VisibilityTimeout: time.Minute})
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		st := r.Stats()
		if st.Records != int64(len(recs)) || st.Poison != 1 || st.Redriven != 0 || st.Released != st.Messages {
			t.Fatalf("stats %+v: want %d records counted, 1 poison, all released", st, len(recs))
		}
		if got := e.streamData(t, ctx); len(got) != 0 {
			t.Fatalf("stream holds %d records after a dry run", len(got))
		}
		qc := e.queueContents(t, ctx, 0)
		if int64(qc.Messages) != st.Messages || len(qc.Records) != len(recs) || len(qc.Poison) != 1 {
			t.Fatalf("queue holds %d messages, %d records; want it unchanged", qc.Messages, len(qc.Records))
		}
	})
}

func TestNewRedriverValidates(t *testing.T) {
	for _, cfg := range []sqs.RedriveConfig{
		{MaxMessages: 11},
		{MaxMessages: -1},
		{WaitTime: 21 * time.Second},
		{Rate: -1},
		{VisibilityTimeout: 13 * time.Hour},
	} {
		if _, err := sqs.NewRedriver(nil, "http://q", nil, cfg, nil); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := sqs.NewRedriver(nil, "", nil, sqs.RedriveConfig{}, nil); err == nil {
		t.Error("empty queue URL accepted")
	}
}

type queue struct {
	qc  *awssqs.Client
	url string
}

func newQueue(ctx context.Context, ep spatetest.Endpoints, name string, attrs map[string]string) (*queue, error) {
	qc := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) })
	q, err := qc.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	return &queue{qc: qc, url: aws.ToString(q.QueueUrl)}, nil
}

// policy returns queue attributes sending messages to q after
// maxReceive receives.
func (q *queue) policy(ctx context.Context, maxReceive int) (map[string]string, error) {
	out, err := q.qc.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return nil, fmt.Errorf("queue arn: %w", err)
	}
	arn := out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	return map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, arn, maxReceive)}, nil
}
