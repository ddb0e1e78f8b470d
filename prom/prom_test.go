package prom_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/diskstream"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/prom"
	"github.com/spate-dev/spate/sqs"
)

func scrape(t *testing.T, m *prom.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestExportsSnapshotsAndObservations(t *testing.T) {
	open := true
	m := prom.New(prom.Sources{
		Ingest: func() ingest.Snapshot {
			return ingest.Snapshot{Accepted: 7, Unstored: 2, Shed: 3, ShedMemory: 4, BodyBytes: 1024, Conns: 9, Requests: map[int]int64{202: 5, 408: 5, 503: 3}, Rejected: map[string]int64{"content_id:invalid": 4}}
		},
		Producer: func() batch.Stats {
			return batch.Stats{BufferedRecords: 11, Batches: 2, BatchRecords: 900, Failed: 1, Shed: 6}
		},
		CircuitOpen: func() bool { return open },
		Redrive:     func() sqs.RedriveStats { return sqs.RedriveStats{Redriven: 4, Poison: 1, Records: 1234} },
		Kinesis: func() kinesis.SinkStats {
			return kinesis.SinkStats{Calls: 3, Records: 40, Events: 720, Bytes: 900_000, Unexpected: 2}
		},
		Stream: func() diskstream.Stats {
			return diskstream.Stats{Commits: 9, Records: 700, Throttled: 50, Retained: 4096}
		},
	})
	m.ObserveKinesisPut(30*time.Millisecond, 500, 20)
	m.ObserveDLQ(20, 0)
	out := scrape(t, m)
	for _, want := range []string{
		`spate_http_requests_total{code="202"} 5`,
		`spate_http_requests_total{code="503"} 3`,
		`spate_events_accepted_total 7`,
		`spate_events_rejected_total{reason="content_id:invalid"} 4`,
		`spate_events_unstored_total 2`,
		`spate_requests_shed_total{cause="in_flight"} 3`,
		`spate_requests_shed_total{cause="body_memory"} 4`,
		`spate_request_body_timeouts_total 5`,
		`spate_request_body_bytes 1024`,
		`spate_http_connections 9`,
		`spate_requests_shed_total{cause="buffer_full"} 6`,
		`spate_buffer_records 11`,
		`spate_batch_records_total 900`,
		`spate_records_failed_total 1`,
		`spate_kinesis_circuit_open 1`,
		`spate_kinesis_records_total{result="ok"} 480`,
		`spate_kinesis_records_total{result="failed"} 20`,
		`spate_kinesis_put_records_seconds_bucket{le="0.05"} 1`,
		`spate_dlq_records_total{result="ok"} 20`,
		`spate_redrive_messages_total{outcome="redriven"} 4`,
		`spate_redrive_messages_total{outcome="poison"} 1`,
		`spate_redrive_records_total 1234`,
		`spate_kinesis_events_total 720`,
		`spate_kinesis_written_records_total 40`,
		`spate_kinesis_written_bytes_total 900000`,
		`spate_kinesis_put_calls_total 3`,
		`spate_kinesis_unexpected_shard_total 2`,
		`spate_stream_commits_total 9`,
		`spate_stream_records_total 700`,
		`spate_stream_throttled_total 50`,
		`spate_stream_retained_bytes 4096`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	open = false
	if !strings.Contains(scrape(t, m), `spate_kinesis_circuit_open 0`) {
		t.Error("circuit gauge does not follow the breaker")
	}
}

func TestSkipsMissingSources(t *testing.T) {
	out := scrape(t, prom.New(prom.Sources{}))
	if strings.Contains(out, "spate_events_accepted_total") || !strings.Contains(out, "spate_kinesis_put_records_seconds") {
		t.Errorf("unexpected metrics without sources:\n%s", out)
	}
}
