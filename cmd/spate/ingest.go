package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/go-chi/chi/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/failed"
	"github.com/spate-dev/spate/firehose"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/prom"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/sqs"
)

type ingestConfig struct {
	front       frontConfig
	stream      string
	dlqURL      string
	apiKeys     string
	origins     string
	putAttempts int
	breakerOpen time.Duration
	redrive     bool
	redriveRate int
	redriveWait time.Duration
	aggregate   bool
	aggBytes    int
	shardEvery  time.Duration
	schemas     string
	failed      string
}

func ingestEnv(c *ingestConfig) []envVar {
	return []envVar{
		{"SPATE_ADDR", ":8080", "HTTP listen address", stringVar(&c.front.Addr)},
		{"SPATE_METRICS_ADDR", ":9090", "listen address of GET /metrics (Prometheus), apart from the API: the ALB forwards only /v1/*", stringVar(&c.front.MetricsAddr)},
		{"SPATE_STREAM", "", "Kinesis stream name or ARN (required)", stringVar(&c.stream)},
		{"SPATE_DLQ_URL", "", "SQS dead-letter queue URL; without it events Kinesis refuses get 503", stringVar(&c.dlqURL)},
		{"SPATE_ACK_MODE", "durable", "durable: 202 after Kinesis or the DLQ took the events; buffered: 202 once buffered (a SIGKILL loses the buffer)", stringVar(&c.front.AckMode)},
		{"SPATE_MAX_BODY_BYTES", "1048576", "largest request body after decompression", int64Var(&c.front.HTTP.MaxBodyBytes)},
		{"SPATE_MAX_EVENTS", "500", "most events per request", intVar(&c.front.HTTP.MaxEvents)},
		{"SPATE_MAX_IN_FLIGHT", "512", "concurrent POSTs being decoded and stored before shedding with 503 (bodies are read before, outside this limit)", intVar(&c.front.HTTP.MaxInFlight)},
		{"SPATE_BODY_TIMEOUT", "5s", "longest a request body may take to arrive after its headers (408 after)", durationVar(&c.front.HTTP.BodyTimeout)},
		{"SPATE_BODY_MEMORY", "", "bytes all request bodies may hold at once, decompressed (503 beyond); default 1/64 of the memory limit, else 64 MiB", sizeVar(&c.front.HTTP.BodyMemory)},
		{"SPATE_MEMORY_LIMIT", "", "the task's memory, e.g. 2048MiB; default the cgroup's limit. Sets GOMEMLIMIT to 80% of it unless GOMEMLIMIT is set", sizeVar(&c.front.Memory.Limit)},
		{"SPATE_MAX_CONNS", "4096", "open connections at most; more wait in the accept queue", intVar(&c.front.HTTP.MaxConns)},
		{"SPATE_IDLE_TIMEOUT", "75s", "keep-alive connections idle this long are closed; keep above the ALB's idle timeout (60s)", durationVar(&c.front.HTTP.IdleTimeout)},
		{"SPATE_ACK_TIMEOUT", "10s", "longest a request waits for its events to be stored before 503", durationVar(&c.front.HTTP.AckTimeout)},
		{"SPATE_RETRY_AFTER", "1s", "Retry-After sent with 503", durationVar(&c.front.HTTP.RetryAfter)},
		{"SPATE_ALLOWED_ORIGINS", "*", "CORS origins, comma-separated", stringVar(&c.origins)},
		{"SPATE_API_KEYS", "", "app=key pairs, comma-separated; when set, X-Api-Key is required", stringVar(&c.apiKeys)},
		{"SPATE_BATCH_LINGER", "10ms", "longest a record waits for its batch to fill", durationVar(&c.front.Producer.Policy.Age)},
		{"SPATE_BATCH_IN_FLIGHT", "8", "PutRecords batches written concurrently", intVar(&c.front.Producer.InFlight)},
		{"SPATE_BUFFER_RECORDS", "50000", "records buffered or in flight before shedding with 503", intVar(&c.front.Producer.MaxRecords)},
		{"SPATE_BUFFER_BYTES", "67108864", "bytes buffered or in flight before shedding with 503", int64Var(&c.front.Producer.MaxBytes)},
		{"SPATE_PUT_TIMEOUT", "15s", "bound on one batch's write, retries and DLQ fallback included", durationVar(&c.front.Producer.PutTimeout)},
		{"SPATE_PUT_ATTEMPTS", "4", "PutRecords tries for failed records before the DLQ", intVar(&c.putAttempts)},
		{"SPATE_BREAKER_OPEN", "5s", "how long Kinesis is skipped (straight to the DLQ) after 5 failed calls in a row", durationVar(&c.breakerOpen)},
		{"SPATE_DRAIN_TIMEOUT", "25s", "on SIGTERM, time to finish requests and flush; keep below the task's stopTimeout", durationVar(&c.front.DrainTimeout)},
		{"SPATE_REDRIVE", "true", "redrive the DLQ into Kinesis in the background while Kinesis is healthy", boolVar(&c.redrive)},
		{"SPATE_REDRIVE_RATE", "2000", "records per second the background redrive puts at most", intVar(&c.redriveRate)},
		{"SPATE_REDRIVE_WAIT", "20s", "long poll of the background redrive's DLQ receives (at most 20s)", durationVar(&c.redriveWait)},
		{"SPATE_KINESIS_AGGREGATION", "true", "pack events into KPL aggregated records per shard; false: one record per event", boolVar(&c.aggregate)},
		{"SPATE_KINESIS_RECORD_BYTES", "25600", "most bytes of one aggregated record (25 KiB: one PUT payload unit; at most 1048576)", intVar(&c.aggBytes)},
		{"SPATE_SHARD_REFRESH", "1m", "how often the shard map is re-read with ListShards (also at once when a put lands on an unexpected shard)", durationVar(&c.shardEvery)},
		{"SPATE_SCHEMAS", "", "directory of event schemas replacing the embedded ones (docs/events.md)", stringVar(&c.schemas)},
		{"SPATE_FAILED_STREAM", "", "Firehose stream that keeps rejected events (failed/ in the lake); without it they are answered but not kept", stringVar(&c.failed)},
	}
}

func runIngest(ctx context.Context, env *environment, args []string) error {
	var c ingestConfig
	vars := ingestEnv(&c)
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.stdout, "Usage: spate ingest\n\nRuns the ingest HTTP service. Configured from the environment:")
		printEnv(env.stdout, vars)
		fmt.Fprintln(env.stdout, "\nAWS region, credentials and endpoints come from the SDK's standard configuration\n(AWS_REGION, AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_SQS, ...).")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loadEnv(vars, env.getenv); err != nil {
		return err
	}
	c.front.Memory.getenv = env.getenv
	if c.stream == "" {
		return errors.New("SPATE_STREAM is required")
	}
	if c.aggBytes > kinesis.MaxRecordBytes || c.aggBytes < 1024 {
		return fmt.Errorf("SPATE_KINESIS_RECORD_BYTES: %d: want 1024 to %d", c.aggBytes, kinesis.MaxRecordBytes)
	}
	keys, err := parseKeys(c.apiKeys)
	if err != nil {
		return fmt.Errorf("SPATE_API_KEYS: %w", err)
	}
	c.front.HTTP.APIKeys = keys
	c.front.HTTP.Now = env.now
	c.front.HTTP.AllowedOrigins = splitList(c.origins)
	if c.front.Registry, err = registry.FromDir(c.schemas, registry.Limits{}); err != nil {
		return fmt.Errorf("SPATE_SCHEMAS: %w", err)
	}

	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	var failedStats func() failed.Stats
	if c.failed != "" {
		keeper := failed.New(firehose.NewDestination(awsfirehose.NewFromConfig(awsCfg)), c.front.Registry, failed.Config{Stream: c.failed}, env.log.With("subsystem", "failed"))
		go keeper.Run(ctx)
		defer func() { _ = keeper.Close(context.Background()) }()
		c.front.HTTP.Failed = keeper
		failedStats = keeper.Stats
	}
	kin := awskinesis.NewFromConfig(awsCfg)
	redrive := c.redrive && c.dlqURL != ""

	// The metrics exist before anything that observes into them; the
	// snapshots they export are read only at scrape time, once serving,
	// when f and redriveStats are set.
	var f *front
	var redriveStats func() sqs.RedriveStats
	var breaker *batch.Breaker
	src := prom.Sources{
		Ingest:      func() ingest.Snapshot { return f.server.Stats().Snapshot() },
		Producer:    func() batch.Stats { return f.producer.Stats() },
		CircuitOpen: func() bool { return !breaker.Closed() },
		Failed:      failedStats,
	}
	if redrive {
		src.Redrive = func() sqs.RedriveStats {
			if redriveStats == nil { // the redrive could not start
				return sqs.RedriveStats{}
			}
			return redriveStats()
		}
	}
	var kSink *kinesis.Sink
	src.Kinesis = func() kinesis.SinkStats { return kSink.Stats() }
	metrics := prom.New(src)

	kSink = kinesis.NewSink(kin, c.stream, kinesisSinkConfig(kin, c, metrics.ObserveKinesisPut, env.now))
	if c.aggregate {
		// Batches count events, and the sink packs them into records:
		// 500 events is no longer PutRecords' limit.
		c.front.Producer.Policy.Count = aggregatedBatchEvents
	}
	breaker = batch.NewBreaker(batch.Retry(kSink, batch.RetryConfig{MaxAttempts: c.putAttempts}), batch.BreakerConfig{
		Name: "kinesis", OpenFor: c.breakerOpen,
		OnStateChange: func(name string, from, to gobreaker.State) {
			env.log.Warn("circuit breaker", "name", name, "from", from.String(), "to", to.String())
		},
	})
	var sink spate.Sink = breaker
	var sqsClient *awssqs.Client
	if c.dlqURL != "" {
		sqsClient = awssqs.NewFromConfig(awsCfg)
		dlq := sqs.NewDLQ(sqsClient, c.dlqURL, sqs.DLQConfig{})
		sink = batch.Fallback(breaker, observedDLQ{dlq, metrics.ObserveDLQ})
		c.front.HTTP.Ready = func() bool { return true }
	} else {
		env.log.Warn("SPATE_DLQ_URL not set: events Kinesis refuses are answered 503")
		c.front.HTTP.Ready = breaker.Closed
	}

	f, err = newFront(c.front, sink, env.log)
	if err != nil {
		return err
	}
	if redrive {
		var stopRedrive func()
		stopRedrive, redriveStats = startRedrive(ctx, env, sqsClient, c.dlqURL, kSink, breaker.Closed, redriveOptions{Rate: c.redriveRate, Wait: c.redriveWait})
		defer stopRedrive()
	}
	r := chi.NewRouter()
	r.Mount("/", f.server.Routes())
	env.log.Info("ingest starting", "stream", c.stream, "dlq", c.dlqURL != "", "ack_mode", c.front.AckMode)
	return f.serve(ctx, r, metrics.Handler())
}

// aggregatedBatchEvents is the producer's batch size in events with
// aggregation on; bytes (5 MiB) and the linger usually cut first.
const aggregatedBatchEvents = 5000

// kinesisSinkConfig is the Kinesis sink of c: aggregating, with a shard map
// of the stream, unless SPATE_KINESIS_AGGREGATION is false. now ages the
// shard map.
func kinesisSinkConfig(kin kinesis.ShardLister, c ingestConfig, observe func(time.Duration, int, int), now func() time.Time) kinesis.SinkConfig {
	cfg := kinesis.SinkConfig{Observe: observe}
	if c.aggregate {
		cfg.Shards = kinesis.NewShardMap(kin, c.stream, c.shardEvery, now)
		cfg.AggregateBytes = c.aggBytes
	}
	return cfg
}

// observedDLQ counts what reaches the dead-letter queue.
type observedDLQ struct {
	dlq     *sqs.DLQ
	observe func(records, failed int)
}

func (o observedDLQ) Put(ctx context.Context, recs []spate.Record) error {
	return o.PutReason(ctx, recs, "unspecified")
}

func (o observedDLQ) PutReason(ctx context.Context, recs []spate.Record, reason string) error {
	err := o.dlq.PutReason(ctx, recs, reason)
	failed := 0
	for _, e := range spate.ItemErrors(err, len(recs)) {
		if e != nil {
			failed++
		}
	}
	o.observe(len(recs), failed)
	return err
}
