package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/spate-dev/spate/failed"
	"github.com/spate-dev/spate/registry"
)

// runRecover is `spate recover`: read kept failed events, re-validate them
// against the current schemas and POST the ones that now pass to ingest.
func runRecover(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	from := fs.String("from", "", "failed events: a directory (<data>/failed) or s3://bucket/failed/")
	to := fs.String("to", "", "ingest URL (http://host:port, or the full /v1/events URL)")
	dir := fs.String("schemas", env.getenv("SPATE_SCHEMAS"), "directory of event schemas (default: $SPATE_SCHEMAS, else the embedded ones)")
	since := fs.String("since", "", "only events received at or after this RFC 3339 time")
	ledger := fs.String("ledger", "", "file of recovered event_ids, so a second run sends none twice (default <from>/recovered.log; required for s3://)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return errors.New("recover: --from and --to are required")
	}
	reg, err := registry.FromDir(*dir, registry.Limits{})
	if err != nil {
		return fmt.Errorf("recover: --schemas: %w", err)
	}
	var sinceT time.Time
	if *since != "" {
		if sinceT, err = time.Parse(time.RFC3339, *since); err != nil {
			return fmt.Errorf("recover: --since: %w", err)
		}
	}
	endpoint, err := eventsURL(*to)
	if err != nil {
		return err
	}
	rows, err := readFailed(ctx, *from, sinceT)
	if err != nil {
		return err
	}
	if *ledger == "" {
		if strings.HasPrefix(*from, "s3://") {
			return errors.New("recover: --ledger is required with s3://")
		}
		*ledger = filepath.Join(*from, "recovered.log")
	}
	led, err := failed.OpenLedger(*ledger)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	defer led.Close()
	post := failed.Poster(&http.Client{Timeout: 30 * time.Second}, endpoint)
	res, err := failed.Recover(ctx, rows, failed.RecoverConfig{
		Registry: reg, Done: led.Done(), Since: sinceT, Now: env.now, Post: post, Record: led.Record,
	})
	fmt.Fprintf(env.stdout, "recovered %d, already recovered %d, still failing %d\n", res.Recovered, res.Already, res.Failing)
	reasons := make([]string, 0, len(res.Reasons))
	for r := range res.Reasons {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(env.stdout, "  %6d  %s\n", res.Reasons[r], r)
	}
	return err
}

func eventsURL(to string) (string, error) {
	u, err := url.Parse(to)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("recover: --to %q: want an http(s) URL", to)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/events"
	}
	return u.String(), nil
}

// readFailed reads every failed-events file under from: a directory, or
// an s3://bucket/prefix/ listing.
func readFailed(ctx context.Context, from string, since time.Time) ([]failed.Row, error) {
	if rest, ok := strings.CutPrefix(from, "s3://"); ok {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("recover: aws config: %w", err)
		}
		return readFailedS3(ctx, s3.NewFromConfig(cfg), rest, since)
	}
	fsys := os.DirFS(from)
	files, err := failed.Files(fsys, since)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	var rows []failed.Row
	for _, p := range files {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		r, err := failed.ReadFile(b)
		if err != nil {
			return nil, fmt.Errorf("recover: %s: %w", p, err)
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// s3Reader is what recovery needs of S3.
type s3Reader interface {
	s3.ListObjectsV2APIClient
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

func readFailedS3(ctx context.Context, client s3Reader, loc string, since time.Time) ([]failed.Row, error) {
	bucket, prefix, _ := strings.Cut(loc, "/")
	var rows []failed.Row
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("recover: list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !strings.HasSuffix(key, ".parquet") || (!since.IsZero() && o.LastModified != nil && o.LastModified.Before(since)) {
				continue
			}
			obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return nil, fmt.Errorf("recover: get s3://%s/%s: %w", bucket, key, err)
			}
			b, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("recover: get s3://%s/%s: %w", bucket, key, err)
			}
			r, err := failed.ReadFile(b)
			if err != nil {
				return nil, fmt.Errorf("recover: s3://%s/%s: %w", bucket, key, err)
			}
			rows = append(rows, r...)
		}
	}
	return rows, nil
}
