package spatetest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an in-process S3 fake (gofakes3) on a loopback port, for the
// test's lifetime.
type S3 struct {
	// URL is the fake's endpoint, for AWS_ENDPOINT_URL_S3 or BaseEndpoint.
	URL    string
	Client *s3.Client
}

// NewS3 starts the fake with the given buckets.
func NewS3(tb testing.TB, buckets ...string) *S3 {
	tb.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			tb.Fatal(err)
		}
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	tb.Cleanup(srv.Close)
	client := s3.NewFromConfig(AWSConfig(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
	return &S3{URL: srv.URL, Client: client}
}

// Keys lists the keys under prefix in bucket.
func (f *S3) Keys(tb testing.TB, bucket, prefix string) []string {
	tb.Helper()
	out, err := f.Client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		tb.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
