package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/faulttest"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/sqs"
)

func testEnv() (*environment, *bytes.Buffer, *bytes.Buffer) {
	var out, errs bytes.Buffer
	return &environment{stdout: &out, stderr: &errs, getenv: func(string) string { return "" }, log: slog.New(slog.DiscardHandler)}, &out, &errs
}

func TestRedriveFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--queue", "http://q"},
		{"--stream", "s"},
		{"--queue", "http://q", "--stream", "s", "--rate", "0"},
		{"--queue", "http://q", "--stream", "s", "--format", "xml"},
		{"--queue", "http://q", "--stream", "s", "--max-messages", "-1"},
		{"--queue", "http://q", "--stream", "s", "--dry-run", "--follow"},
		{"--queue", "http://q", "--stream", "s", "extra"},
	} {
		env, _, _ := testEnv()
		if err := runRedrive(context.Background(), env, args); err == nil {
			t.Errorf("args %q accepted", args)
		}
	}
}

// TestRedriveCommand runs `spate redrive` as an operator would, against
// kinesalite and local-aws-sqs: a dry run first, then the real one.
func TestRedriveCommand(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, time.Minute)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_KINESIS": ep.Kinesis, "AWS_ENDPOINT_URL_SQS": ep.SQS, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIDSPATETEST", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PROFILE": "",
	} {
		t.Setenv(k, v)
	}
	cfg := spatetest.AWSConfig()
	kc := awskinesis.NewFromConfig(cfg, func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	qc := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) })
	stream := faulttest.Name(t, "stream")
	if err := faulttest.CreateStream(ctx, kc, stream, 2); err != nil {
		t.Fatal(err)
	}
	q, err := qc.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(faulttest.Name(t, "dlq"))})
	if err != nil {
		t.Fatal(err)
	}
	queue := aws.ToString(q.QueueUrl)
	recs := make([]spate.Record, 50)
	for i := range recs {
		recs[i] = spate.Record{PartitionKey: fmt.Sprintf("s%d", i%5), Data: fmt.Appendf(nil, `{"type":"click","event_id":"00000000-0000-4000-8000-%012d"}`, i)}
	}
	// One record is over the queue's limit: its payload is in S3 and its
	// message points there, which the command follows.
	recs[7].Data = fmt.Appendf(nil, `{"type":"click","event_id":"00000000-0000-4000-8000-000000000007","pad":%q}`, strings.Repeat("p", 3000))
	s3 := spatetest.NewS3(t, "spate-lake")
	t.Setenv("AWS_ENDPOINT_URL_S3", s3.URL)
	dlqCfg := sqs.DLQConfig{MaxMessageBytes: 1024, Payloads: sqs.NewS3Payloads(s3.Client, "spate-lake", nil)}
	if err := sqs.NewDLQ(qc, queue, dlqCfg).PutReason(ctx, recs, "kinesis put: throttled"); err != nil {
		t.Fatal(err)
	}

	env, out, _ := testEnv()
	if err := runRedrive(ctx, env, []string{"--queue", queue, "--stream", stream, "--dry-run", "--wait", "0s", "--format", "json"}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	var sum struct {
		DryRun   bool  `json:"dry_run"`
		Records  int   `json:"records"`
		Messages int   `json:"messages"`
		Redriven int   `json:"redriven"`
		Released int64 `json:"released"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("dry-run summary is not JSON: %v\n%s", err, out)
	}
	if !sum.DryRun || sum.Records != len(recs) || sum.Messages < 2 || sum.Redriven != 0 {
		t.Fatalf("dry-run summary %+v: want %d events counted, nothing redriven", sum, len(recs))
	}
	if got, err := faulttest.ReadStream(ctx, kc, stream); err != nil || len(got) != 0 {
		t.Fatalf("dry run put %d records (%v)", len(got), err)
	}

	env, out, _ = testEnv()
	if err := runRedrive(ctx, env, []string{"--queue", queue, "--stream", stream, "--wait", "1s", "--rate", "10000"}); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	rows := map[string]string{}
	for line := range strings.Lines(out.String()) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "  "); ok {
			rows[k] = strings.TrimSpace(v)
		}
	}
	for k, v := range map[string]string{"events put in the stream": fmt.Sprint(len(recs)), "redriven and deleted": fmt.Sprint(sum.Messages), "poison (left for redrive policy)": "0"} {
		if rows[k] != v {
			t.Errorf("summary row %q = %q, want %q:\n%s", k, rows[k], v, out)
		}
	}
	got, err := faulttest.ReadStream(ctx, kc, stream)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("stream holds %d events (%v), want %d", len(got), err, len(recs))
	}
	// The events went back aggregated, as ingest writes them: the 50
	// events of 5 keys on 2 shards fill far fewer records.
	if raw, err := spatetest.ReadRecords(ctx, kc, stream); err != nil || len(raw) >= len(recs)/2 {
		t.Errorf("stream holds %d Kinesis records (%v) for %d events: not aggregated", len(raw), err, len(recs))
	}
	if keys := s3.Keys(t, "spate-lake", "dead-letter/"); len(keys) != 1 {
		t.Errorf("bucket holds %q, want the one big payload", keys)
	}
	found := false
	for _, r := range got {
		found = found || bytes.Equal(r.Data, recs[7].Data)
	}
	if !found {
		t.Error("the record kept in S3 is not in the stream")
	}
	left, err := faulttest.ReadQueue(ctx, qc, queue, time.Minute, 0)
	if err != nil || left.Messages != 0 {
		t.Fatalf("%d messages left (%v)", left.Messages, err)
	}

	// Poison makes the run fail, so a script notices.
	if _, err := qc.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String("garbage")}); err != nil {
		t.Fatal(err)
	}
	env, _, errs := testEnv()
	err = runRedrive(ctx, env, []string{"--queue", queue, "--stream", stream, "--wait", "0s", "--visibility", "1m"})
	if err == nil || !strings.Contains(err.Error(), "1 message(s) left") {
		t.Fatalf("err %v: want the poison message reported", err)
	}
	if !strings.Contains(errs.String(), ": poison (") {
		t.Fatalf("stderr lacks the poison line:\n%s", errs)
	}
}
