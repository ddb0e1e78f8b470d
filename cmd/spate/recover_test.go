package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spate-dev/spate/failed"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/registry"
)

// TestRecoverReadsFailedEventsFromS3: the failed/ prefix Firehose writes is
// listed and read back through the S3 API (gofakes3), partitions before
// --since skipped.
func TestRecoverReadsFailedEventsFromS3(t *testing.T) {
	at := time.Now().UTC().Truncate(time.Millisecond)
	dir := t.TempDir()
	lk, err := lake.Open(registry.Failed(), lake.Config{Dir: dir, FlushInterval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Limits{})
	k := failed.New(lk, reg, failed.Config{}, nil)
	done := make(chan struct{})
	go func() { k.Run(context.Background()); close(done) }()
	raw := []byte(`{"type":"click","event_id":"0190a3c4-0000-7000-8000-000000000042","platform":"web","user_id":"u"}`)
	_, derr := reg.Decode(raw, at)
	k.Keep(raw, derr, at)
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := lk.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "failed", "dt=*", "hour=*", "*.parquet"))
	if len(files) != 1 {
		t.Fatalf("%d failed-event files", len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer srv.Close()
	client := s3.New(s3.Options{
		Region: "eu-north-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lake")}); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(dir, files[0])
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(filepath.ToSlash(rel)), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	rows, err := readFailedS3(ctx, client, "lake/failed/", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].EventID != "0190a3c4-0000-7000-8000-000000000042" || rows[0].Field != "content_id" ||
		!bytes.Equal(rows[0].Payload, raw) || !rows[0].ReceivedAt.Equal(at) {
		t.Fatalf("rows = %+v", rows)
	}
	if rows, err := readFailedS3(ctx, client, "lake/failed/", time.Now().Add(time.Hour)); err != nil || len(rows) != 0 {
		t.Errorf("since an hour ahead: %d rows, %v", len(rows), err)
	}
}
