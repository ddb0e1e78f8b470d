package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/internal/kinesisstub"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/registry"
)

// Benchmarks of POST /v1/events, run with -cpu 1 for events/s per core
// (make bench). All three handlers sit behind the same in-process HTTP
// handler call, and the two that write do so to the same stub Kinesis
// endpoint over loopback HTTP with the real SDK client.

func benchBody(n int) string {
	var evs []string
	for i := range n {
		evs = append(evs, fmt.Sprintf(`{"type":"impression","event_id":"6ba7b810-9dad-11d1-80b4-%012d","content_id":"prog-%d","image_variant":"hero_%c","platform":"web","user_id":"user-%d","session_id":"sess-%d","list_id":"front","position":%d,"app_version":"4.2.1","attrs":{"ab":"b"}}`, i, i%50, 'a'+i%3, i, i%7, i))
	}
	if n == 1 {
		return evs[0]
	}
	return `{"events":[` + strings.Join(evs, ",") + `]}`
}

func stubClient(b *testing.B) (*awskinesis.Client, *kinesisstub.Stub) {
	stub := kinesisstub.New()
	b.Cleanup(stub.Close)
	client := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(stub.URL) })
	return client, stub
}

func runPosts(b *testing.B, h http.Handler, body string, events int) {
	b.ReportAllocs()
	b.SetParallelism(256) // many requests in flight, as on a busy task
	b.ResetTimer()
	cpu0 := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusAccepted {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
	// On a shared machine wall time counts other tenants' load too; CPU
	// time counts only this process (the stub endpoint included).
	b.ReportMetric(float64(b.N*events)/(cpuTime(b)-cpu0).Seconds(), "events/cpu-s")
}

// cpuTime is the CPU time the process has used, all threads included.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkPostEvents(b *testing.B) {
	for _, n := range []int{1, 20} {
		// spate is the default wiring, aggregating into KPL records (the
		// stub has one shard: the packing is the best case, see
		// docs/benchmarks.md); spate-plain writes one record per event,
		// as before aggregation.
		for _, v := range []struct {
			name      string
			aggregate bool
		}{{"spate", true}, {"spate-plain", false}} {
			b.Run(fmt.Sprintf("%s/events=%d", v.name, n), func(b *testing.B) {
				client, _ := stubClient(b)
				cfg := kinesis.SinkConfig{}
				policy := batch.Policy{Age: 5 * time.Millisecond}
				if v.aggregate {
					cfg.Shards = kinesis.NewShardMap(client, "events", 0, nil)
					policy.Count = 5000 // as spate ingest sets it with aggregation
				}
				sink := kinesis.NewSink(client, "events", cfg)
				prod := batch.NewProducer(sink, batch.Config{Policy: policy}, discard)
				srv := ingest.New(registry.New(registry.Limits{}), prod, ingest.Config{MaxInFlight: 4096}, discard)
				runPosts(b, srv.Routes(), benchBody(n), n)
				_ = prod.Close(context.Background())
				st := sink.Stats()
				b.ReportMetric(1000*float64(st.Calls)/float64(st.Events), "calls/kevent")
				b.ReportMetric(1000*float64(st.Bytes)/float64(st.Events), "bytes/kevent")
				b.ReportMetric(float64(st.Events)/float64(st.Records), "events/record")
			})
		}
		b.Run(fmt.Sprintf("ceiling/events=%d", n), func(b *testing.B) {
			runPosts(b, decodeOnly(), benchBody(n), n)
		})
		b.Run(fmt.Sprintf("call-per-event/events=%d", n), func(b *testing.B) {
			client, _ := stubClient(b)
			runPosts(b, callPerEvent(client), benchBody(n), n)
		})
	}
}

// decodeOnly is the ceiling: a minimal chi handler that only decodes the
// JSON body and answers 202.
func decodeOnly() http.Handler {
	r := chi.NewRouter()
	r.Post("/v1/events", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	return r
}

// callPerEvent is the naive design: one PutRecord call per event.
func callPerEvent(client *awskinesis.Client) http.Handler {
	r := chi.NewRouter()
	r.Post("/v1/events", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Events []json.RawMessage `json:"events"`
		}
		raw := json.RawMessage{}
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := json.Unmarshal(raw, &body); err != nil || body.Events == nil {
			body.Events = []json.RawMessage{raw}
		}
		for _, e := range body.Events {
			if _, err := client.PutRecord(r.Context(), &awskinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("k"), Data: e}); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})
	return r
}
