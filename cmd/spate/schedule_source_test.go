package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/spate-dev/spate/internal/spatetest"
)

// fakeS3 answers GetObject the way S3's REST API does, path-style.
func fakeS3(t *testing.T, objects map[string]string) func(context.Context) (s3Getter, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		body, ok := objects[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return func(context.Context) (s3Getter, error) {
		return s3.NewFromConfig(spatetest.AWSConfig(), func(o *s3.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.UsePathStyle = true
		}), nil
	}
}

func TestOpenSchedule(t *testing.T) {
	ctx := context.Background()
	csv, err := os.ReadFile(filepath.Join("..", "..", "plan", "testdata", "schedule-election-night.csv"))
	if err != nil {
		t.Fatal(err)
	}
	newS3 := fakeS3(t, map[string]string{"ops-config/prescale/schedule.csv": string(csv)})

	f, err := openSchedule(ctx, "s3://ops-config/prescale/schedule.csv", newS3)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != string(csv) {
		t.Errorf("read %d bytes from S3, want the %d-byte schedule", len(got), len(csv))
	}
	if _, err := openSchedule(ctx, "s3://ops-config/missing.csv", newS3); err == nil || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Errorf("missing object: %v", err)
	}
	if _, err := openSchedule(ctx, "s3://just-a-bucket", newS3); err == nil {
		t.Error("s3:// without a key accepted")
	}
	if _, err := openSchedule(ctx, filepath.Join(t.TempDir(), "nope.csv"), newS3); err == nil {
		t.Error("missing local file accepted")
	}
}

// TestPlanFromS3 plans from an s3:// schedule exactly as from the file.
func TestPlanFromS3(t *testing.T) {
	path := filepath.Join("..", "..", "plan", "testdata", "schedule-election-night.csv")
	csv, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	options := func(schedule string) *planOptions {
		fs := flag.NewFlagSet("plan", flag.ContinueOnError)
		o := addPlanFlags(fs, func(string) string { return "" })
		if err := fs.Parse([]string{"--schedule", schedule}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	fromFile := options(path)
	fromS3 := options("s3://cfg/schedule.csv")
	fromS3.newS3 = fakeS3(t, map[string]string{"cfg/schedule.csv": string(csv)})
	a, err := fromFile.build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := fromS3.build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Windows) == 0 || len(a.Windows) != len(b.Windows) || len(a.Actions) != len(b.Actions) {
		t.Errorf("plan from S3 differs: %d/%d windows, %d/%d actions", len(b.Windows), len(a.Windows), len(b.Actions), len(a.Actions))
	}
}
