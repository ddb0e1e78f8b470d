package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// maxScheduleBytes bounds a schedule read from anywhere: a year of
// broadcasts is a few hundred kilobytes.
const maxScheduleBytes = 16 << 20

// s3Getter is the part of the S3 client a schedule is read with.
type s3Getter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// openSchedule opens a schedule: a local path, or s3://bucket/key so the
// scheduled prescale task reads the schedule operators upload. newS3 is
// called only for s3:// names.
func openSchedule(ctx context.Context, name string, newS3 func(context.Context) (s3Getter, error)) (io.ReadCloser, error) {
	rest, ok := strings.CutPrefix(name, "s3://")
	if !ok {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("open schedule: %w", err)
		}
		return f, nil
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" || key == "" {
		return nil, fmt.Errorf("schedule %q: want s3://bucket/key", name)
	}
	client, err := newS3(ctx)
	if err != nil {
		return nil, err
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get schedule %s: %w", name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(out.Body, maxScheduleBytes), out.Body}, nil
}

// defaultS3 builds an S3 client from the SDK's standard configuration.
func defaultS3(ctx context.Context) (s3Getter, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return s3.NewFromConfig(cfg), nil
}
