package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spate-dev/spate/internal/faultproxy"
	"github.com/spate-dev/spate/internal/spatetest"
)

// world is what every scenario shares: the binary, the emulators, clients
// that talk to them directly (never through a fault), and the report.
type world struct {
	bin    string
	ep     spatetest.Endpoints
	kc     *awskinesis.Client
	qc     *awssqs.Client
	report *report
}

// scenario is one stream and one DLQ, each behind its own fault proxy.
type scenario struct {
	w      *world
	t      *testing.T
	stream string
	queue  string
	kp, qp *faultproxy.Proxy
	client *http.Client
}

// dlqVisibility is the DLQ's visibility timeout: messages a killed
// process held come back within it.
const dlqVisibility = 5 * time.Second

func (w *world) scenario(t *testing.T, ctx context.Context) *scenario {
	t.Helper()
	s := &scenario{w: w, t: t, stream: Name(t, "events"), client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(s.client.CloseIdleConnections)
	if err := CreateStream(ctx, w.kc, s.stream, 2); err != nil {
		t.Fatal(err)
	}
	q, err := w.qc.CreateQueue(ctx, &awssqs.CreateQueueInput{
		QueueName:  aws.String(Name(t, "dlq")),
		Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(int(dlqVisibility / time.Second))},
	})
	if err != nil {
		t.Fatalf("create dlq: %v", err)
	}
	s.queue = aws.ToString(q.QueueUrl)
	for _, p := range []struct {
		target string
		dst    **faultproxy.Proxy
	}{{w.ep.Kinesis, &s.kp}, {w.ep.SQS, &s.qp}} {
		px, err := faultproxy.New(p.target, 42)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = px.Close() })
		*p.dst = px
	}
	return s
}

// env is the ingest task's environment, pointing at the proxies. Later
// entries override earlier ones.
func (s *scenario) env(extra ...string) []string {
	return append([]string{
		"SPATE_ADDR=127.0.0.1:0",
		"SPATE_METRICS_ADDR=127.0.0.1:0",
		"SPATE_STREAM=" + s.stream,
		"SPATE_DLQ_URL=" + s.queue,
		"SPATE_BREAKER_OPEN=1s",
		"SPATE_PUT_TIMEOUT=4s",
		"SPATE_ACK_TIMEOUT=5s",
		"SPATE_DRAIN_TIMEOUT=15s",
		"SPATE_REDRIVE_RATE=5000",
		// local-aws-sqs, unlike SQS, answers a long poll only once it has
		// all the messages asked for or the wait is over: a short wait
		// keeps that out of the recovery times.
		"SPATE_REDRIVE_WAIT=1s",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDSPATETEST",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_KINESIS=" + s.kp.URL(),
		"AWS_ENDPOINT_URL_SQS=" + s.qp.URL(),
	}, extra...)
}

func (s *scenario) start(extra ...string) *proc {
	return startIngest(s.t, s.w.bin, s.env(extra...))
}

func (s *scenario) load(url func() string, rate float64) load {
	// Enough clients that the rate, not their waiting for slow answers,
	// sets the load: players do not slow down when the service does.
	return load{url: url, workers: 32, batch: 20, rate: rate, client: s.client}
}

// dlqDepth is how many messages the DLQ holds, visible or in flight.
func (s *scenario) dlqDepth(ctx context.Context) (int, error) {
	out, err := s.w.qc.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.queue),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, fmt.Errorf("dlq attributes: %w", err)
	}
	n := 0
	for _, k := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, _ := strconv.Atoi(out.Attributes[string(k)])
		n += v
	}
	return n, nil
}

// waitDrained returns once the DLQ is empty, i.e. the background redrive
// has put everything back, or fails the test after within.
func (s *scenario) waitDrained(ctx context.Context, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := s.dlqDepth(ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("dlq still holds %d messages after %s", n, within)
		}
		select {
		case <-ctx.Done():
			s.t.Fatal(ctx.Err())
		case <-tick.C:
		}
	}
}

// account reads back the whole stream and DLQ and accounts for every event
// the clients sent.
func (s *scenario) account(ctx context.Context, led *ledger) tally {
	s.t.Helper()
	recs, err := ReadStream(ctx, s.w.kc, s.stream)
	if err != nil {
		s.t.Fatal(err)
	}
	q, err := ReadQueue(ctx, s.w.qc, s.queue, time.Minute, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(q.Poison) > 0 {
		s.t.Errorf("dlq holds %d undecodable messages", len(q.Poison))
	}
	tl, err := account(led, recs, q.Records)
	if err != nil {
		s.t.Fatal(err)
	}
	return tl
}

// noLoss fails the test when an acknowledged event is missing.
func (s *scenario) noLoss(tl tally) {
	s.t.Helper()
	if tl.Acked == 0 {
		s.t.Fatalf("no event was acknowledged: %+v", tl)
	}
	if tl.Lost > 0 {
		s.t.Errorf("%d of %d acknowledged events lost, e.g. %v", tl.Lost, tl.Acked, tl.lost[:min(3, len(tl.lost))])
	}
}

// runLoad runs l until stop is closed, then returns the ledger.
func runLoad(ctx context.Context, l load, led *ledger, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	lctx, cancel := context.WithTimeout(ctx, d)
	go func() {
		defer close(done)
		defer cancel()
		l.run(lctx, led)
	}()
	return done
}
