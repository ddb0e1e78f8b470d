package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/spate-dev/spate/lakeedit"
	lakes3 "github.com/spate-dev/spate/s3"
)

// lakeClients builds the S3 client of s3:// lakes; tests point it at a fake.
type lakeClients func(ctx context.Context) (lakes3.API, error)

func defaultLakeS3(ctx context.Context) (lakes3.API, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return awss3.NewFromConfig(cfg), nil
}

func runLake(ctx context.Context, env *environment, args []string) error {
	return lakeCommand(ctx, env, args, defaultLakeS3)
}

func lakeCommand(ctx context.Context, env *environment, args []string, clients lakeClients) error {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, `Usage: spate lake <forget|compact> --lake DIR|s3://bucket[/prefix] [flags]

  forget   erase people: rewrite every file holding their identifiers without those rows
  compact  merge a partition's small files and drop duplicate event_ids

Run 'spate lake <command> --help' for its flags (docs/privacy.md, docs/lake.md).`)
	}
	if len(args) == 0 {
		usage(env.stderr)
		return errors.New("lake: no command given")
	}
	switch args[0] {
	case "forget":
		return lakeForget(ctx, env, args[1:], clients)
	case "compact":
		return lakeCompact(ctx, env, args[1:], clients)
	case "-h", "--help", "help":
		usage(env.stdout)
		return nil
	}
	usage(env.stderr)
	return fmt.Errorf("lake: unknown command %q", args[0])
}

// openLake opens a lake directory or s3://bucket[/prefix].
func openLake(ctx context.Context, uri string, clients lakeClients) (lakeedit.Store, error) {
	if uri == "" {
		return nil, errors.New("--lake is required")
	}
	if !strings.HasPrefix(uri, "s3://") {
		return lakeedit.NewDir(uri)
	}
	api, err := clients(ctx)
	if err != nil {
		return nil, err
	}
	return lakes3.Open(ctx, api, uri, lakes3.Config{})
}

// readInput reads a local file or an s3://bucket/key object.
func readInput(ctx context.Context, name string, clients lakeClients, limit int64) ([]byte, error) {
	var r io.ReadCloser
	if rest, ok := strings.CutPrefix(name, "s3://"); ok {
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" || key == "" {
			return nil, fmt.Errorf("%q: want s3://bucket/key", name)
		}
		api, err := clients(ctx)
		if err != nil {
			return nil, err
		}
		out, err := api.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
		r = out.Body
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		r = f
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, nil
}

// writeReport writes the JSON report to the lake under key (dest "") or
// to dest, a local path; "-" writes none.
func writeReport(ctx context.Context, st lakeedit.Store, dest, key string, rep any) (string, error) {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	switch dest {
	case "-":
		return "", nil
	case "":
		up, err := st.Create(ctx, key)
		if err != nil {
			return "", err
		}
		defer up.Abort()
		if _, err := up.Write(b); err != nil {
			return "", err
		}
		if _, err := up.Commit(ctx); err != nil {
			return "", err
		}
		return "lake:" + key, nil
	}
	return dest, os.WriteFile(dest, b, 0o644)
}

// maxRequestsBytes bounds a requests file: a year of weekly batches of
// thousands of identifiers is a few megabytes.
const maxRequestsBytes = 64 << 20

func lakeForget(ctx context.Context, env *environment, args []string, clients lakeClients) error {
	fs := flag.NewFlagSet("lake forget", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	lakeURI := fs.String("lake", env.getenv("SPATE_LAKE"), "the lake: a directory or s3://bucket[/prefix] (default $SPATE_LAKE)")
	requests := fs.String("requests", "", "erasure requests, one per line as column:value (a file or s3://bucket/key; required)")
	dry := fs.Bool("dry-run", false, "find and count, change nothing")
	report := fs.String("report", "", "where to write the JSON report: a file, or - for none (default: _reports/forget-<time>.json in the lake; none in a dry run)")
	parallel := fs.Int("parallel", 4, "files read at once")
	format := fs.String("format", "table", "summary on stdout: table or json")
	ids := lakeedit.DefaultIdentifiers()
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, `Usage: spate lake forget --lake DIR|s3://bucket[/prefix] --requests FILE [--dry-run]

Erases people from the lake (GDPR art. 17). Every Parquet file of every table
is read (identifier columns only) and each one holding a requested identifier
is rewritten without those rows, in place and atomically; the failed-events
areas (errors/, dead-letter/; locally _errors/, _dead_letter/) lose the
records that mention one.
On a versioned bucket the replaced versions, and older versions with a match,
are deleted for good. Idempotent: a second run finds nothing. Reports and logs
name requests by hash (the first 16 hex digits of SHA-256 of column:value),
never by identifier.

Identifier columns: %s.

Flags:
`, strings.Join(ids, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("lake forget: unexpected argument %q", fs.Arg(0))
	case *requests == "":
		return errors.New("lake forget: --requests is required")
	case *format != "table" && *format != "json":
		return errors.New("lake forget: --format must be table or json")
	}
	st, err := openLake(ctx, *lakeURI, clients)
	if err != nil {
		return fmt.Errorf("lake forget: %w", err)
	}
	b, err := readInput(ctx, *requests, clients, maxRequestsBytes)
	if err != nil {
		return fmt.Errorf("lake forget: requests: %w", err)
	}
	reqs, err := lakeedit.ParseRequests(strings.NewReader(string(b)), ids)
	if err != nil {
		return fmt.Errorf("lake forget: %w", err)
	}
	rep, runErr := lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{Identifiers: ids, DryRun: *dry, Parallel: *parallel, Now: env.now}, env.log)
	if rep == nil {
		return fmt.Errorf("lake forget: %w", runErr)
	}
	dest := *report
	if *dry && dest == "" {
		dest = "-"
	}
	where, err := writeReport(ctx, st, dest, "_reports/forget-"+rep.StartedAt.Format("20060102T150405Z")+".json", rep)
	if err != nil {
		return fmt.Errorf("lake forget: write report: %w", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printForget(env.stdout, rep, where)
	}
	if runErr != nil {
		return fmt.Errorf("lake forget: %w", runErr)
	}
	return nil
}

func printForget(w io.Writer, rep *lakeedit.ForgetReport, where string) {
	dry := ""
	if rep.DryRun {
		dry = " (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "forget%s: %d requests, %s\n", dry, rep.Requests, rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond))
	fmt.Fprintf(w, "  parquet files  scanned %d, skipped %d, rewritten %d, deleted %d\n", rep.FilesScanned, rep.FilesSkipped, rep.FilesRewritten, rep.FilesDeleted)
	fmt.Fprintf(w, "  rows           scanned %d, removed %d\n", rep.RowsScanned, rep.RowsRemoved)
	fmt.Fprintf(w, "  failed events  files %d, rewritten %d, records removed %d\n", rep.FailedFilesScanned, rep.FailedFilesRewritten, rep.FailedRecordsRemoved)
	fmt.Fprintf(w, "  old versions   scanned %d, deleted %d\n", rep.NoncurrentScanned, rep.NoncurrentDeleted)
	found := 0
	for _, r := range rep.PerRequest {
		if r.Rows+r.FailedRecords+r.NoncurrentVersions > 0 {
			found++
		}
	}
	fmt.Fprintf(w, "  requests       %d with something found, %d with nothing\n", found, len(rep.PerRequest)-found)
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "  error          %s\n", e)
	}
	if where != "" {
		fmt.Fprintf(w, "report (per request, by hash): %s\n", where)
	}
}

func lakeCompact(ctx context.Context, env *environment, args []string, clients lakeClients) error {
	fs := flag.NewFlagSet("lake compact", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	lakeURI := fs.String("lake", env.getenv("SPATE_LAKE"), "the lake: a directory or s3://bucket[/prefix] (default $SPATE_LAKE)")
	var partitions []string
	fs.Func("partition", "compact only this partition, type/dt=YYYY-MM-DD/hour=HH (repeatable; default: every settled one)", func(s string) error {
		partitions = append(partitions, s)
		return nil
	})
	targetSize := byteSize(128 << 20)
	fs.Var(&targetSize, "target-size", "size merged files aim for, e.g. 128MiB, 64MB or bytes (default 128MiB)")
	settle := fs.Duration("settle", 2*time.Hour, "without --partition: skip partitions whose hour ended less than this long ago (negative: skip none, the current hour included)")
	lookback := fs.Int("lookback", 1, "hours before a partition searched for copies of its events (0: none)")
	dry := fs.Bool("dry-run", false, "report what would change, change nothing")
	report := fs.String("report", "-", "where to write the JSON report: a file, - for none, or lake to write _reports/compact-<time>.json in the lake")
	format := fs.String("format", "table", "summary on stdout: table or json")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, `Usage: spate lake compact --lake DIR|s3://bucket[/prefix] [--partition type/dt=…/hour=…] [--target-size 128MiB] [--dry-run]

Merges each partition's small files (under half the target size) into files of
about the target size and drops duplicate event_ids, keeping the earliest
received_at (and, for a copy in the hour before, that one). Merged files are
written first, then the files they replace deleted: a crash in between leaves
duplicates the next run drops, never a loss. The partitions stay as they are.

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("lake compact: unexpected argument %q", fs.Arg(0))
	case *format != "table" && *format != "json":
		return errors.New("lake compact: --format must be table or json")
	case targetSize <= 0:
		return errors.New("lake compact: --target-size must be positive")
	case *lookback < 0:
		return errors.New("lake compact: --lookback must not be negative")
	}
	st, err := openLake(ctx, *lakeURI, clients)
	if err != nil {
		return fmt.Errorf("lake compact: %w", err)
	}
	lb := *lookback
	if lb == 0 {
		lb = -1
	}
	rep, runErr := lakeedit.Compact(ctx, st, lakeedit.CompactConfig{Partitions: partitions, TargetSize: int64(targetSize), Settle: *settle,
		Lookback: lb, DryRun: *dry, Now: env.now}, env.log)
	if rep == nil {
		return fmt.Errorf("lake compact: %w", runErr)
	}
	dest := *report
	if dest == "lake" {
		dest = ""
	}
	where, err := writeReport(ctx, st, dest, "_reports/compact-"+rep.StartedAt.Format("20060102T150405Z")+".json", rep)
	if err != nil {
		return fmt.Errorf("lake compact: write report: %w", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		dryNote := ""
		if rep.DryRun {
			dryNote = " (dry run: nothing changed)"
		}
		fmt.Fprintf(env.stdout, "compact%s: %d partitions (%d compacted, %d not settled), %s\n", dryNote, rep.Partitions, rep.PartitionsCompacted,
			rep.PartitionsUnsettled, rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond))
		fmt.Fprintf(env.stdout, "  files  scanned %d, replaced %d (%d bytes) by %d (%d bytes)\n", rep.FilesScanned, rep.FilesReplaced, rep.BytesReplaced, rep.FilesWritten, rep.BytesWritten)
		fmt.Fprintf(env.stdout, "  rows   scanned %d, duplicates dropped %d\n", rep.RowsScanned, rep.DuplicatesDropped)
		for _, e := range rep.Errors {
			fmt.Fprintf(env.stdout, "  error  %s\n", e)
		}
		if where != "" {
			fmt.Fprintf(env.stdout, "report: %s\n", where)
		}
	}
	if runErr != nil {
		return fmt.Errorf("lake compact: %w", runErr)
	}
	return nil
}
