package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/internal/lakegen"
	"github.com/spate-dev/spate/internal/laketest"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/lakeedit"
	lakes3 "github.com/spate-dev/spate/s3"
)

// lakeEnv captures stdout and the JSON log.
func lakeEnv() (*environment, *bytes.Buffer, *bytes.Buffer) {
	var out, logs bytes.Buffer
	return &environment{stdout: &out, stderr: &logs, getenv: func(string) string { return "" },
		log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, &out, &logs
}

func noS3(context.Context) (lakes3.API, error) { panic("no S3 in this test") }

func writeRequests(t *testing.T, reqs []lakeedit.Request) string {
	var b strings.Builder
	b.WriteString("# erasure requests, week 9\n\n")
	for _, r := range reqs {
		b.WriteString(r.Column + ":" + r.Value + "\n")
	}
	p := filepath.Join(t.TempDir(), "requests.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// noIdentifiers fails if any requested identifier shows in text.
func noIdentifiers(t *testing.T, what, text string, reqs []lakeedit.Request) {
	t.Helper()
	for _, r := range reqs {
		if strings.Contains(text, r.Value) {
			t.Fatalf("%s names identifier %s of request %s", what, r.Column, r.ID())
		}
	}
}

func TestLakeForgetAndCompactDir(t *testing.T) {
	ctx := context.Background()
	cfg := lakegen.Config{Dir: filepath.Join(t.TempDir(), "lake"), Rows: 6000, Hours: 2, FilesPerHour: 3, DuplicateEvery: 9,
		Start: clock.Wall()().UTC().Add(-48 * time.Hour).Truncate(time.Hour)}
	if _, err := lakegen.Generate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	reqs, match := laketest.Requests(cfg, 25)
	reqFile := writeRequests(t, reqs)
	db := laketest.DB(t)
	want, _ := laketest.Rows(t, db, cfg.Dir, match)

	env, out, logs := lakeEnv()
	if err := run(ctx, env, []string{"lake", "forget", "--lake", cfg.Dir, "--requests", reqFile, "--dry-run"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := laketest.Rows(t, db, cfg.Dir, match); n != want || !strings.Contains(out.String(), "dry run") {
		t.Fatalf("dry run changed the lake (%d rows left of %d) or did not say so:\n%s", n, want, out)
	}

	env, out, logs = lakeEnv()
	reportPath := filepath.Join(t.TempDir(), "report.json")
	if err := run(ctx, env, []string{"lake", "forget", "--lake", cfg.Dir, "--requests", reqFile, "--report", reportPath}); err != nil {
		t.Fatal(err)
	}
	if n, _ := laketest.Rows(t, db, cfg.Dir, match); n != 0 {
		t.Errorf("%d rows of the forgotten left", n)
	}
	report, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep lakeedit.ForgetReport
	if err := json.Unmarshal(report, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.RowsRemoved != want || len(rep.PerRequest) != len(reqs) || rep.PerRequest[0].ID != reqs[0].ID() {
		t.Errorf("report: %d rows removed (want %d), %d requests", rep.RowsRemoved, want, len(rep.PerRequest))
	}
	noIdentifiers(t, "stdout", out.String(), reqs)
	noIdentifiers(t, "the log", logs.String(), reqs)
	noIdentifiers(t, "the report", string(report), reqs)
	if !strings.Contains(logs.String(), `"msg":"forget: file rewritten"`) {
		t.Errorf("debug log names no rewritten file:\n%s", logs)
	}

	// The default report goes into the lake; compact leaves it alone.
	env, out, _ = lakeEnv()
	if err := run(ctx, env, []string{"lake", "forget", "--lake", cfg.Dir, "--requests", reqFile}); err != nil {
		t.Fatal(err)
	}
	if reports, _ := filepath.Glob(filepath.Join(cfg.Dir, "_reports", "forget-*.json")); len(reports) != 1 || !strings.Contains(out.String(), "removed 0") {
		t.Errorf("second run: reports %v, output:\n%s", reports, out)
	}

	env, out, _ = lakeEnv()
	if err := run(ctx, env, []string{"lake", "compact", "--lake", cfg.Dir, "--target-size", "64MiB", "--format", "json"}); err != nil {
		t.Fatal(err)
	}
	var crep lakeedit.CompactReport
	if err := json.Unmarshal(out.Bytes(), &crep); err != nil {
		t.Fatal(err)
	}
	var rows, distinct int64
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM read_parquet('`+laketest.Glob(cfg.Dir)+`', union_by_name = true)`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != distinct || crep.DuplicatesDropped == 0 {
		t.Errorf("after compact: %d rows, %d event_ids; %d duplicates dropped", rows, distinct, crep.DuplicatesDropped)
	}
}

func TestLakeS3(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	awsCfg := spatetest.AWSConfig()
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
	clients := func(context.Context) (lakes3.API, error) { return client, nil }
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("lake")}); err != nil {
		t.Fatal(err)
	}
	cfg := lakegen.Config{Dir: filepath.Join(t.TempDir(), "lake"), Rows: 3000, Hours: 1, FilesPerHour: 3, DuplicateEvery: 5,
		Start: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	if _, err := lakegen.Generate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	st, err := lakes3.Open(ctx, client, "s3://lake/events", lakes3.Config{})
	if err != nil {
		t.Fatal(err)
	}
	laketest.Put(t, st, cfg.Dir)
	reqs, match := laketest.Requests(cfg, 10)
	var b strings.Builder
	for _, r := range reqs {
		b.WriteString(r.Column + ":" + r.Value + "\n")
	}
	if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String("_privacy/forget-requests.txt"), Body: strings.NewReader(b.String())}); err != nil {
		t.Fatal(err)
	}

	env, out, logs := lakeEnv()
	err = lakeCommand(ctx, env, []string{"forget", "--lake", "s3://lake/events", "--requests", "s3://lake/_privacy/forget-requests.txt"}, clients)
	if err != nil {
		t.Fatal(err)
	}
	noIdentifiers(t, "stdout", out.String(), reqs)
	noIdentifiers(t, "the log", logs.String(), reqs)
	env, _, _ = lakeEnv()
	if err := lakeCommand(ctx, env, []string{"compact", "--lake", "s3://lake/events", "--partition", "click/dt=2026-03-01/hour=10"}, clients); err != nil {
		t.Fatal(err)
	}
	dir, sums := laketest.Dump(t, st)
	db := laketest.DB(t)
	if n, _ := laketest.Rows(t, db, dir, match); n != 0 {
		t.Errorf("%d rows of the forgotten left in S3", n)
	}
	var rows, distinct int64
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM read_parquet('`+filepath.Join(dir, "click", "*", "*", "*.parquet")+`')`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != distinct || rows == 0 {
		t.Errorf("click after compact: %d rows, %d event_ids", rows, distinct)
	}
	found := false
	for k := range sums {
		found = found || strings.HasPrefix(k, "_reports/forget-")
	}
	if !found {
		t.Error("no report in the lake")
	}
}

func TestLakeFlags(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lake"}, "no command"},
		{[]string{"lake", "erase"}, "unknown command"},
		{[]string{"lake", "forget", "--lake", dir}, "--requests is required"},
		{[]string{"lake", "forget", "--requests", "x"}, "--lake is required"},
		{[]string{"lake", "compact", "--lake", dir, "--partition", "click/2026"}, "want type/dt="},
		{[]string{"lake", "compact", "--lake", dir, "--target-size", "big"}, `size "big": want a positive number of bytes`},
		{[]string{"lake", "compact", "--lake", filepath.Join(dir, "nope")}, "no such file"},
	} {
		env, _, _ := lakeEnv()
		err := lakeCommand(ctx, env, tc.args[1:], noS3)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("user_id:ok\nemail:someone@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, _, _ := lakeEnv()
	err := lakeCommand(ctx, env, []string{"forget", "--lake", dir, "--requests", bad}, noS3)
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "someone@example.com") {
		t.Errorf("bad request line: %v", err)
	}
	for in, want := range map[string]int64{"128MiB": 128 << 20, "64MB": 64e6, "1GiB": 1 << 30, "4096": 4096} {
		if n, err := parseBytes(in); err != nil || n != want {
			t.Errorf("parseBytes(%q) = %d, %v", in, n, err)
		}
	}
}
