// Package prom is spate's only importer of the Prometheus client: it
// exports the Stats snapshots the cores keep and the observations adapters
// report, for GET /metrics.
package prom

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/diskstream"
	"github.com/spate-dev/spate/failed"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/sqs"
)

// Sources are the snapshots exported at every scrape; nil ones are skipped.
type Sources struct {
	Ingest   func() ingest.Snapshot
	Producer func() batch.Stats
	// CircuitOpen reports 1 while the Kinesis circuit breaker is open.
	CircuitOpen func() bool
	// Redrive is the background DLQ redrive's counters.
	Redrive func() sqs.RedriveStats
	// Kinesis is the Kinesis sink's counters: events and the records
	// carrying them.
	Kinesis func() kinesis.SinkStats
	// Stream is local mode's durable stream (diskstream).
	Stream func() diskstream.Stats
	// Failed is the failed-events keeper's counters.
	Failed func() failed.Stats
}

// Metrics holds the registry and the instruments adapters observe into.
type Metrics struct {
	reg        *prometheus.Registry
	putSeconds prometheus.Histogram
	putRecords *prometheus.CounterVec
	dlq        *prometheus.CounterVec
}

// New returns metrics exporting src, plus Go runtime and process metrics.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spate_kinesis_put_records_seconds", Help: "Latency of Kinesis PutRecords calls.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		putRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spate_kinesis_records_total", Help: "Records sent to Kinesis by result (ok, failed).",
		}, []string{"result"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spate_dlq_records_total", Help: "Records sent to the SQS dead-letter queue by result (ok, failed).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.putSeconds, m.putRecords, m.dlq,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&snapshots{src: src})
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// ObserveKinesisPut records one PutRecords call (kinesis.SinkConfig.Observe).
func (m *Metrics) ObserveKinesisPut(d time.Duration, records, failed int) {
	m.putSeconds.Observe(d.Seconds())
	m.putRecords.WithLabelValues("ok").Add(float64(records - failed))
	m.putRecords.WithLabelValues("failed").Add(float64(failed))
}

// ObserveDLQ records records sent to the dead-letter queue.
func (m *Metrics) ObserveDLQ(records, failed int) {
	m.dlq.WithLabelValues("ok").Add(float64(records - failed))
	m.dlq.WithLabelValues("failed").Add(float64(failed))
}

var (
	descRequests = prometheus.NewDesc("spate_http_requests_total", "POST /v1/events requests by status code.", []string{"code"}, nil)
	descAccepted = prometheus.NewDesc("spate_events_accepted_total", "Events acknowledged with 202.", nil, nil)
	descRejected = prometheus.NewDesc("spate_events_rejected_total", "Events rejected, by reason (field:class).", []string{"reason"}, nil)
	descUnstored = prometheus.NewDesc("spate_events_unstored_total", "Valid events answered 503 because neither Kinesis nor the DLQ took them.", nil, nil)
	descShed     = prometheus.NewDesc("spate_requests_shed_total", "Requests refused with 503 for load (in-flight limit, request memory budget or full buffer).", []string{"cause"}, nil)
	descBodyTO   = prometheus.NewDesc("spate_request_body_timeouts_total", "Requests whose body did not arrive within SPATE_BODY_TIMEOUT (answered 408).", nil, nil)
	descBodyMem  = prometheus.NewDesc("spate_request_body_bytes", "Bytes request bodies hold now, charged to SPATE_BODY_MEMORY.", nil, nil)
	descConns    = prometheus.NewDesc("spate_http_connections", "Open connections on the API listener (at most SPATE_MAX_CONNS).", nil, nil)
	descBuffered = prometheus.NewDesc("spate_buffer_records", "Records buffered or in flight to Kinesis.", nil, nil)
	descBufBytes = prometheus.NewDesc("spate_buffer_bytes", "Bytes buffered or in flight to Kinesis.", nil, nil)
	descBatches  = prometheus.NewDesc("spate_batches_total", "Batches written.", nil, nil)
	descBatchRec = prometheus.NewDesc("spate_batch_records_total", "Records in written batches (divide by spate_batches_total for the mean batch size).", nil, nil)
	descFailed   = prometheus.NewDesc("spate_records_failed_total", "Records neither Kinesis nor the DLQ accepted.", nil, nil)
	descCircuit  = prometheus.NewDesc("spate_kinesis_circuit_open", "1 while the Kinesis circuit breaker is open.", nil, nil)
	descRedriveM = prometheus.NewDesc("spate_redrive_messages_total", "DLQ messages handled by the background redrive, by outcome.", []string{"outcome"}, nil)
	descRedriveR = prometheus.NewDesc("spate_redrive_records_total", "Records the background redrive put back into Kinesis.", nil, nil)
	descKEvents  = prometheus.NewDesc("spate_kinesis_events_total", "Events in the Kinesis records written (divide by spate_kinesis_written_records_total for events per record).", nil, nil)
	descKRecords = prometheus.NewDesc("spate_kinesis_written_records_total", "Kinesis records written, aggregated or not.", nil, nil)
	descKBytes   = prometheus.NewDesc("spate_kinesis_written_bytes_total", "Partition key and data bytes of the Kinesis records written.", nil, nil)
	descKCalls   = prometheus.NewDesc("spate_kinesis_put_calls_total", "PutRecords calls made.", nil, nil)
	descFailedEv = prometheus.NewDesc("spate_failed_events_total", "Rejected events kept in the failed-events area, or dropped (queue full, stream failed).", []string{"outcome"}, nil)
	descKUnexp   = prometheus.NewDesc("spate_kinesis_unexpected_shard_total", "Records that landed on another shard than the shard map predicted (each refreshes the map).", nil, nil)
	descStCommit = prometheus.NewDesc("spate_stream_commits_total", "Local mode: stream transactions committed (each one group of batches, two fdatasyncs).", nil, nil)
	descStRec    = prometheus.NewDesc("spate_stream_records_total", "Local mode: records written to the stream.", nil, nil)
	descStThrot  = prometheus.NewDesc("spate_stream_throttled_total", "Local mode: records refused because the stream was full (--max-disk).", nil, nil)
	descStBytes  = prometheus.NewDesc("spate_stream_retained_bytes", "Local mode: bytes of records not yet past every consumer.", nil, nil)
)

// snapshots is a collector over the Sources; descriptions are constant.
type snapshots struct{ src Sources }

func (s *snapshots) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descAccepted, descRejected, descUnstored, descShed, descBodyTO, descBodyMem, descConns, descBuffered, descBufBytes, descBatches, descBatchRec, descFailed, descCircuit, descRedriveM, descRedriveR, descKEvents, descKRecords, descKBytes, descKCalls, descKUnexp, descStCommit, descStRec, descStThrot, descStBytes, descFailedEv} {
		ch <- d
	}
}

func (s *snapshots) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	if s.src.Ingest != nil {
		snap := s.src.Ingest()
		for code, n := range snap.Requests {
			counter(descRequests, n, strconv.Itoa(code))
		}
		for reason, n := range snap.Rejected {
			counter(descRejected, n, reason)
		}
		counter(descAccepted, snap.Accepted)
		counter(descUnstored, snap.Unstored)
		counter(descShed, snap.Shed, "in_flight")
		counter(descShed, snap.ShedMemory, "body_memory")
		counter(descBodyTO, snap.Requests[http.StatusRequestTimeout])
		gauge(descBodyMem, snap.BodyBytes)
		gauge(descConns, snap.Conns)
	}
	if s.src.Producer != nil {
		st := s.src.Producer()
		gauge(descBuffered, st.BufferedRecords)
		gauge(descBufBytes, st.BufferedBytes)
		counter(descBatches, st.Batches)
		counter(descBatchRec, st.BatchRecords)
		counter(descFailed, st.Failed)
		counter(descShed, st.Shed, "buffer_full")
	}
	if s.src.Redrive != nil {
		st := s.src.Redrive()
		counter(descRedriveM, st.Redriven, "redriven")
		counter(descRedriveM, st.Requeued, "requeued")
		counter(descRedriveM, st.Poison, "poison")
		counter(descRedriveR, st.Records)
	}
	if s.src.Kinesis != nil {
		st := s.src.Kinesis()
		counter(descKEvents, st.Events)
		counter(descKRecords, st.Records)
		counter(descKBytes, st.Bytes)
		counter(descKCalls, st.Calls)
		counter(descKUnexp, st.Unexpected)
	}
	if s.src.Stream != nil {
		st := s.src.Stream()
		counter(descStCommit, st.Commits)
		counter(descStRec, st.Records)
		counter(descStThrot, st.Throttled)
		gauge(descStBytes, st.Retained)
	}
	if s.src.Failed != nil {
		st := s.src.Failed()
		counter(descFailedEv, st.Kept, "kept")
		counter(descFailedEv, st.Dropped, "dropped")
	}
	if s.src.CircuitOpen != nil {
		v := int64(0)
		if s.src.CircuitOpen() {
			v = 1
		}
		gauge(descCircuit, v)
	}
}
