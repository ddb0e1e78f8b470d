package firehose_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/smithy-go"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/firehose"
	"github.com/spate-dev/spate/internal/fakefirehose"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// client is the real SDK client pointed at srv, with the SDK's own
// standard retries (throttling included) set to attempts.
func client(srv *fakefirehose.Server, attempts int) *awsfirehose.Client {
	return awsfirehose.NewFromConfig(spatetest.AWSConfig(), func(o *awsfirehose.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = retry.NewStandard()
		o.RetryMaxAttempts = attempts
	})
}

func records(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte('a' + i%26)}, size)
	}
	return out
}

func TestPutBatch(t *testing.T) {
	srv := fakefirehose.New("s")
	defer srv.Close()
	d := firehose.NewDestination(client(srv, 1))
	recs := [][]byte{[]byte("{\"a\":1}\n{\"a\":2}\n"), {0, 1, 2, 255}, []byte("{\"b\":\"\u00e9\"}\n")}
	if err := d.PutBatch(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	if got := srv.Records("s"); !slices.EqualFunc(got, recs, bytes.Equal) {
		t.Errorf("stream holds %q, want %q", got, recs)
	}
}

func TestPutBatchReadsEachRecordsResult(t *testing.T) {
	srv := fakefirehose.New("s")
	defer srv.Close()
	srv.FailRecords(func(_ string, data []byte) string {
		switch data[0] {
		case 'b':
			return "ServiceUnavailableException"
		case 'd':
			return "InternalFailure"
		}
		return ""
	})
	d := firehose.NewDestination(client(srv, 1))
	err := d.PutBatch(context.Background(), "s", records(5, 10))
	var be *spate.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 5 {
		t.Fatalf("err = %v, want a BatchError of 5", err)
	}
	for i, e := range be.Errs {
		if failed := i == 1 || i == 3; failed != (e != nil) {
			t.Errorf("record %d: err = %v", i, e)
		}
	}
	if !errors.Is(be.Errs[1], spate.ErrThrottled) || errors.Is(be.Errs[3], spate.ErrThrottled) {
		t.Errorf("ServiceUnavailableException should read as throttled, InternalFailure not: %v / %v", be.Errs[1], be.Errs[3])
	}
	if got := len(srv.Records("s")); got != 3 {
		t.Errorf("accepted %d, want 3", got)
	}
}

// TestLimits: the fake refuses what Firehose refuses, with its error types,
// and the adapter reads those as permanent.
func TestLimits(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		records [][]byte
		errType string
	}{
		{"500 records", "s", records(500, 1), ""},
		{"501 records", "s", records(501, 1), "InvalidArgumentException"},
		{"record of 1,000 KiB", "s", records(1, fakefirehose.MaxRecordBytes), ""},
		{"record over 1,000 KiB", "s", records(1, fakefirehose.MaxRecordBytes+1), "InvalidArgumentException"},
		{"4 MiB call", "s", append(records(4, fakefirehose.MaxRecordBytes), records(1, fakefirehose.MaxCallBytes-4*fakefirehose.MaxRecordBytes)...), ""},
		{"call over 4 MiB", "s", append(records(4, fakefirehose.MaxRecordBytes), records(1, fakefirehose.MaxCallBytes-4*fakefirehose.MaxRecordBytes+1)...), "InvalidArgumentException"},
		{"missing stream", "nope", records(1, 1), "ResourceNotFoundException"},
		{"bad stream name", "no/pe", records(1, 1), "InvalidArgumentException"},
	}
	srv := fakefirehose.New("s")
	defer srv.Close()
	srv.Discard()
	d := firehose.NewDestination(client(srv, 1))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := d.PutBatch(context.Background(), tc.stream, tc.records)
			if tc.errType == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.errType {
				t.Fatalf("err = %v, want %s", err, tc.errType)
			}
			if !errors.Is(err, router.ErrPermanent) {
				t.Errorf("%s should be permanent", tc.errType)
			}
		})
	}
}

func TestThrottling(t *testing.T) {
	srv := fakefirehose.New("s")
	defer srv.Close()
	t.Run("refused whole", func(t *testing.T) {
		srv.Throttle(1)
		err := firehose.NewDestination(client(srv, 1)).PutBatch(context.Background(), "s", records(2, 3))
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ServiceUnavailableException" {
			t.Fatalf("err = %v, want ServiceUnavailableException", err)
		}
		if !errors.Is(err, spate.ErrThrottled) || errors.Is(err, router.ErrPermanent) {
			t.Errorf("throttling should be retryable: %v", err)
		}
	})
	t.Run("retried by the SDK", func(t *testing.T) {
		srv.Throttle(2)
		before := srv.Calls("s")
		if err := firehose.NewDestination(client(srv, 3)).PutBatch(context.Background(), "s", records(2, 3)); err != nil {
			t.Fatal(err)
		}
		if n := srv.Calls("s") - before; n != 3 {
			t.Errorf("calls = %d, want 3", n)
		}
	})
}

func canonicalEvents(n int) []spate.Record {
	types := registry.New(registry.Limits{}).Types()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	recs := make([]spate.Record, n)
	for i := range recs {
		ms := int64(i * 1000)
		e := &spate.Event{Type: types[i%len(types)], EventID: fmt.Sprintf("0190a3c4-0000-7000-8000-%012d", i),
			OccurredAt: at, ReceivedAt: at, SessionID: fmt.Sprintf("session-%d", i%50), AnonymousID: "anon-1234567890",
			Platform: "web", AppVersion: "5.12.0", Props: []spate.Prop{spate.Str("content_id", "1-2345678"), spate.Str("image_variant", "hero_a"), spate.Int("position_ms", ms)}}
		recs[i] = spate.Record{PartitionKey: e.PartitionKey(), Data: e.AppendJSON(nil), SequenceNumber: fmt.Sprintf("%021d", i), ArrivedAt: at}
	}
	return recs
}

// TestRouterThroughFirehose drives the router through the real SDK client
// against the fake with per-record failures and throttling: every event
// lands exactly once, on its type's stream.
func TestRouterThroughFirehose(t *testing.T) {
	reg := registry.New(registry.Limits{})
	streams := router.StreamNames(reg.Types(), "spate-")
	srv := fakefirehose.New(slices.Collect(maps.Values(streams))...)
	defer srv.Close()
	var mu sync.Mutex
	seen := map[string]bool{}
	// Every packed record fails the first time it is sent; a third of the
	// calls are throttled too.
	srv.FailRecords(func(_ string, data []byte) string {
		mu.Lock()
		defer mu.Unlock()
		if seen[string(data)] {
			return ""
		}
		seen[string(data)] = true
		return "ServiceUnavailableException"
	})
	srv.Throttle(4)
	r, err := router.New(reg, firehose.NewDestination(client(srv, 1)), discardDLQ{}, router.Config{
		Streams: streams, MaxRecordBytes: 8 << 10, MinBackoff: time.Millisecond, MaxAttempts: 10,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := canonicalEvents(3000)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Route(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for typ, stream := range streams {
		for _, rec := range srv.Records(stream) {
			for _, line := range strings.Split(strings.TrimSuffix(string(rec), "\n"), "\n") {
				if !strings.HasPrefix(line, `{"type":"`+typ+`"`) {
					t.Fatalf("%s holds %.40s", stream, line)
				}
				got[line]++
			}
		}
	}
	for _, rec := range recs {
		if got[string(rec.Data)] != 1 {
			t.Fatalf("event %s landed %d times", rec.SequenceNumber, got[string(rec.Data)])
		}
	}
	st := r.Stats()
	if st.Routed != 3000 || st.Retries == 0 {
		t.Errorf("stats = %+v", st)
	}
}

type discardDLQ struct{}

func (discardDLQ) PutReason(context.Context, []spate.Record, string) error { return nil }
