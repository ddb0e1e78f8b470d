//go:build linux

package rietest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/sqs"
)

// rieModule is the emulator's command, pinned by the tool directive in
// go.mod: a fresh machine gets exactly this version from the module proxy.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

var binaries struct {
	once sync.Once
	dir  string // <dir>/<fn>/bootstrap and <dir>/aws-lambda-rie
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// build makes the three bootstraps with `make lambdas` for the host's
// architecture (the very recipe that ships them) and the RIE, once per run.
func build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("RIE suite: runs in make test, not -short")
	}
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "spate-rie-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		root := spatetest.RepoRoot(t)
		gobin := goBin()
		mk := exec.Command("make", "-s", "-C", root, "lambdas", "LAMBDA_ARCH="+runtime.GOARCH, "DIST="+dir, "GO="+gobin)
		if out, err := mk.CombinedOutput(); err != nil {
			binaries.err = fmt.Errorf("make lambdas: %v\n%s", err, out)
			return
		}
		gb := exec.Command(gobin, "build", "-o", filepath.Join(dir, "aws-lambda-rie"), rieModule)
		gb.Dir = root
		if out, err := gb.CombinedOutput(); err != nil {
			binaries.err = fmt.Errorf("build the RIE: %v\n%s", err, out)
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.dir
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{written: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.written)
	b.written = make(chan struct{})
	return b.buf.Write(p)
}

// waitFor reports whether the output contains s within d: the RIE relays
// the function's output on its own schedule, after the invocation's answer.
func (b *syncBuffer) waitFor(s string, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		b.mu.Lock()
		found, written := strings.Contains(b.buf.String(), s), b.written
		b.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-written:
		case <-timer.C:
			return false
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// function is one bootstrap running under the RIE.
type function struct {
	url string
	out *syncBuffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// start runs fn's bootstrap under the RIE on loopback ports with exactly
// env (plus PATH and fake credentials) and a timeout of timeout seconds.
// The RIE initialises the function at the first invocation.
func start(t *testing.T, fn string, timeout int, env map[string]string) *function {
	t.Helper()
	dir := build(t)
	api, emu := freeAddr(t), freeAddr(t)
	cmd := exec.Command(filepath.Join(dir, "aws-lambda-rie"),
		"--runtime-interface-emulator-address", emu, "--runtime-api-address", api, "--log-level", "error",
		filepath.Join(dir, fn, "bootstrap"))
	cmd.Dir = filepath.Join(dir, fn)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDSPATETEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_FUNCTION_NAME=spate-" + fn, fmt.Sprintf("AWS_LAMBDA_FUNCTION_TIMEOUT=%d", timeout),
		// A shifted run (make test) shifts the functions' clocks too.
		clock.ShiftEnv + "=" + os.Getenv(clock.ShiftEnv),
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so the bootstrap the RIE forks dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the RIE: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s under the RIE said:\n%s", fn, out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		c, err := net.Dial("tcp", emu)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the RIE did not listen on %s within 10s: %v\n%s", emu, err, out.String())
		}
		time.Sleep(wait) // polling a port the child opens; no event to wait on
	}
	return &function{url: "http://" + emu + "/2015-03-31/functions/function/invocations", out: out}
}

// invoke posts payload as Lambda's invoke API does and returns the status
// and body, and how long the call took.
func (f *function) invoke(t *testing.T, payload []byte) (int, []byte, time.Duration) {
	t.Helper()
	ctx := spatetest.Context(t, 60*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, time.Since(began)
}

// kinesisResponse invokes with ev and decodes the stream response; a
// function error (HTTP 200 with errorType under the RIE) fails the test.
func (f *function) kinesisResponse(t *testing.T, ev any) (events.KinesisEventResponse, time.Duration) {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	status, body, took := f.invoke(t, payload)
	if status != http.StatusOK || bytes.Contains(body, []byte(`"errorType"`)) || bytes.HasPrefix(body, []byte("Task timed out")) {
		t.Fatalf("invoke: HTTP %d %s", status, body)
	}
	var resp events.KinesisEventResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.BatchItemFailures == nil {
		t.Fatalf("response %s: %v (want batchItemFailures, empty or not)", body, err)
	}
	return resp, took
}

// awsTestdata reads one of aws-lambda-go's own sample events, from the
// module version go.mod pins.
func awsTestdata(t *testing.T, name string) []byte {
	t.Helper()
	out, err := exec.Command(goBin(), "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-lambda-go").Output()
	if err != nil {
		t.Fatalf("locate aws-lambda-go: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "events", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// letter is one dead-lettered record, its payload fetched from S3 when the
// message points there.
type letter struct {
	Reason string
	Stream string
	Wire   sqs.WireRecord
	Record spate.Record
}

// deadLetters drains the queue and returns every record in it.
func deadLetters(t *testing.T, ctx context.Context, qc *awssqs.Client, url string, s3 *spatetest.S3) []letter {
	t.Helper()
	var store sqs.PayloadReader
	if s3 != nil {
		store = sqs.NewS3Payloads(s3.Client, "", nil)
	}
	var out []letter
	for {
		res, err := qc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 300})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			msg, recs, err := sqs.DecodeMessage([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("dead letter %.300s: %v", aws.ToString(m.Body), err)
			}
			if err := sqs.FetchPayloads(ctx, store, msg, recs); err != nil && s3 != nil {
				t.Fatalf("dead letter payload: %v", err)
			}
			for i, r := range recs {
				out = append(out, letter{Reason: msg.Reason, Stream: msg.Stream, Wire: msg.Records[i], Record: r})
			}
		}
	}
}

func newQueue(t *testing.T, ctx context.Context, qc *awssqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	q, err := qc.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl)
}

// shardRecords builds a Kinesis event of one shard from data, sequence
// numbers ascending from base.
func shardRecords(stream, shard string, base int, data ...[]byte) events.KinesisEvent {
	var ev events.KinesisEvent
	for i, d := range data {
		seq := fmt.Sprintf("4959033827149025660855969253836157109592157598913%07d", base+i)
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			EventID: shard + ":" + seq, EventSource: "aws:kinesis", EventName: "aws:kinesis:record", EventVersion: "1.0",
			EventSourceArn: "arn:aws:kinesis:us-east-1:123456789012:stream/" + stream, AwsRegion: "us-east-1",
			Kinesis: events.KinesisRecord{KinesisSchemaVersion: "1.0", PartitionKey: fmt.Sprintf("pk-%d", i), SequenceNumber: seq, Data: d,
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: clock.Wall()().Truncate(time.Millisecond)}},
		})
	}
	return ev
}

// goBin is the go command running this test.
func goBin() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}
