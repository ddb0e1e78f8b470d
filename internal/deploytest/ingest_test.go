package deploytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/internal/spatetest"
)

// testIngestStart runs the image's command (`spate ingest`) the way the ECS
// task definition does — configuration only from the environment — against
// kinesalite and local-aws-sqs, posts one event, finds it in the stream and
// stops the service with SIGTERM as ECS would.
func testIngestStart(t *testing.T, bin string) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 2*time.Minute)
	cfg := spatetest.AWSConfig()
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	qc := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) })

	const stream = "spate-events"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if err := kinesis.NewStreamExistsWaiter(kc).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, time.Minute); err != nil {
		t.Fatalf("stream not active: %v", err)
	}
	q, err := qc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("spate-dlq")})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}

	addr, metricsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "ingest")
	// Exactly the variables terraform/ingest_service.tf gives the task,
	// with emulator endpoints instead of the real ones. A clean
	// environment, so nothing from the developer's ~/.aws leaks in.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"SPATE_ADDR=" + addr,
		"SPATE_STREAM=" + stream,
		"SPATE_DLQ_URL=" + aws.ToString(q.QueueUrl),
		"SPATE_DRAIN_TIMEOUT=5s",
		// Not set by terraform (the default :9090 is what the task
		// uses); a free port here, so parallel runs do not collide.
		"SPATE_METRICS_ADDR=" + metricsAddr,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDSPATETEST",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_KINESIS=" + ep.Kinesis,
		"AWS_ENDPOINT_URL_SQS=" + ep.SQS,
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	cmd.Stdout = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	base := "http://" + addr
	if err := waitReady(ctx, base+"/readyz", exited, &waitErr); err != nil {
		t.Fatalf("ingest did not become ready: %v\n%s", err, stderr.String())
	}

	const eventID = "0190c8a4-7a1e-7cc3-a6f1-2f1d9e5b7a10"
	body := fmt.Sprintf(`{"type":"page_view","event_id":%q,"anonymous_id":"dev-1","platform":"web","page":"/deploytest"}`, eventID)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/events: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %s, want 202\n%s", resp.Status, stderr.String())
	}

	// Metrics are on their own listener, not on the API port.
	for _, c := range []struct {
		url  string
		want int
	}{{base + "/metrics", http.StatusNotFound}, {"http://" + metricsAddr + "/metrics", http.StatusOK}} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatalf("GET %s: %v", c.url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || c.want == http.StatusOK && !strings.Contains(string(b), "spate_events_accepted_total 1") {
			t.Errorf("GET %s: %s, want %d: %.200s", c.url, resp.Status, c.want, b)
		}
	}

	// Durable acknowledgement: the 202 came after Kinesis took the record.
	if !streamHas(ctx, t, kc, stream, eventID) {
		t.Errorf("acknowledged event %s not in stream %s", eventID, stream)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("ingest exited with %v after SIGTERM, want 0\n%s", waitErr, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("ingest did not exit after SIGTERM\n%s", stderr.String())
	}
}

// syncBuffer collects the child's output, which exec copies from its own
// goroutine while the test may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady polls url until it answers 200, the process exits or ctx ends.
// Polling is the contract here: readiness is what the ALB polls too.
func waitReady(ctx context.Context, url string, exited <-chan struct{}, waitErr *error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			err := *waitErr
			if err == nil {
				err = errors.New("exited with status 0")
			}
			return fmt.Errorf("process ended: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func streamHas(ctx context.Context, t *testing.T, kc *kinesis.Client, stream, needle string) bool {
	t.Helper()
	events, err := spatetest.ReadEvents(ctx, kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if bytes.Contains(e.Data, []byte(needle)) {
			return true
		}
	}
	return false
}
