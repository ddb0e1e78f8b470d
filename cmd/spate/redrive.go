package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/sqs"
)

type redriveFlags struct {
	queue, stream, format string
	rate                  float64
	maxMessages           int
	dryRun, follow        bool
	aggregate             bool
	wait, visibility      time.Duration
	progress              time.Duration
}

func parseRedrive(args []string, env *environment) (redriveFlags, error) {
	var f redriveFlags
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, `Usage: spate redrive --queue URL --stream NAME [flags]

Puts the events of the SQS dead-letter queue back into the Kinesis stream.
A message is deleted only once every event in it is in the stream; events
the stream refuses again go back to the queue in a new, smaller message.
Messages that cannot be decoded are left for the queue's redrive policy.
Records a message keeps in S3 (dead letters over the queue's size limit)
are read from the bucket and key it names; letters that carry only a
record's coordinates are left, like undecodable ones.
Stops when the queue is empty (or after --max-messages). AWS region,
credentials and endpoints come from the SDK's standard configuration.

Flags:`)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.queue, "queue", "", "dead-letter queue URL (required)")
	fs.StringVar(&f.stream, "stream", "", "Kinesis stream name or ARN (required)")
	fs.Float64Var(&f.rate, "rate", 500, "records per second put into the stream at most")
	fs.IntVar(&f.maxMessages, "max-messages", 0, "stop after this many messages (0: until the queue is empty)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "count messages and events without putting or deleting anything")
	fs.BoolVar(&f.follow, "follow", false, "keep running when the queue is empty")
	fs.DurationVar(&f.wait, "wait", 5*time.Second, "long poll of each receive (at most 20s); an empty one ends the run")
	fs.DurationVar(&f.visibility, "visibility", 0, "how long a received message is hidden from others (0: the queue's own; 5m in a dry run)")
	fs.DurationVar(&f.progress, "progress", 5*time.Second, "interval of progress lines on stderr (0: none)")
	fs.StringVar(&f.format, "format", "table", "summary format: table or json")
	fs.BoolVar(&f.aggregate, "aggregate", true, "pack the events into KPL aggregated records per shard, as ingest does")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case f.queue == "" || f.stream == "":
		return f, errors.New("--queue and --stream are required")
	case f.rate <= 0:
		return f, errors.New("--rate must be positive")
	case f.maxMessages < 0:
		return f, errors.New("--max-messages must not be negative")
	case f.format != "table" && f.format != "json":
		return f, errors.New("--format must be table or json")
	case f.follow && f.dryRun:
		return f, errors.New("--follow and --dry-run exclude each other")
	}
	if f.dryRun && f.visibility == 0 {
		f.visibility = 5 * time.Minute
	}
	return f, nil
}

func runRedrive(ctx context.Context, env *environment, args []string) error {
	f, err := parseRedrive(args, env)
	if err != nil {
		return err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	if f.wait == 0 {
		f.wait = -1 // the Redriver's zero is its default long poll
	}
	kin := awskinesis.NewFromConfig(awsCfg)
	kcfg := kinesis.SinkConfig{}
	if f.aggregate {
		kcfg.Shards = kinesis.NewShardMap(kin, f.stream, 0, env.now)
	}
	sink := kinesis.NewSink(kin, f.stream, kcfg)
	r, err := sqs.NewRedriver(awssqs.NewFromConfig(awsCfg), f.queue, sink, sqs.RedriveConfig{
		WaitTime:          f.wait,
		VisibilityTimeout: f.visibility,
		Rate:              f.rate,
		StopWhenEmpty:     !f.follow,
		Limit:             f.maxMessages,
		DryRun:            f.dryRun,
		// Letters too big for the queue point at their payload in S3
		// (the bucket is in each pointer).
		Payloads: sqs.NewS3Payloads(s3.NewFromConfig(awsCfg, sqs.PathStyleOnCustomEndpoint), "", nil),
		OnMessage: func(m sqs.MessageResult) {
			if m.Outcome == sqs.Poison || m.Outcome == sqs.Retained {
				fmt.Fprintf(env.stderr, "message %s: %s (%d events, receive #%d): %v\n", m.MessageID, m.Outcome, m.Records, m.ReceiveCount, m.Err)
			}
		},
	}, env.log.With("subsystem", "redrive"))
	if err != nil {
		return err
	}
	began := time.Now()
	stopProgress := progressLines(env.stderr, f.progress, r.Stats)
	err = r.Run(ctx)
	stopProgress()
	sum := redriveSummary{Queue: f.queue, Stream: f.stream, DryRun: f.dryRun, Elapsed: time.Since(began).Round(time.Millisecond).String(), RedriveStats: r.Stats()}
	if werr := sum.write(env.stdout, f.format); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("redrive interrupted: %w", ctx.Err())
	}
	if left := sum.Poison + sum.Retained; left > 0 {
		return fmt.Errorf("redrive: %d message(s) left in the queue (poison or refused again); see above", left)
	}
	return nil
}

// progressLines prints the counters every interval until stopped.
func progressLines(w io.Writer, every time.Duration, stats func() sqs.RedriveStats) func() {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := stats()
				fmt.Fprintf(w, "redrive: %d messages received, %d redriven, %d requeued, %d poison, %d retained, %d events put\n",
					s.Messages, s.Redriven, s.Requeued, s.Poison, s.Retained, s.Records)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

type redriveSummary struct {
	Queue   string `json:"queue"`
	Stream  string `json:"stream"`
	DryRun  bool   `json:"dry_run"`
	Elapsed string `json:"elapsed"`
	sqs.RedriveStats
}

func (s redriveSummary) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
		return nil
	}
	title := "redrive summary"
	put := "events put in the stream"
	if s.DryRun {
		title += " (dry run: nothing put or deleted)"
		put = "events that would be put"
	}
	rows := []struct {
		k string
		v any
	}{
		{"queue", s.Queue},
		{"stream", s.Stream},
		{"messages received", s.Messages},
		{"redriven and deleted", s.Redriven},
		{"requeued (smaller message)", s.Requeued},
		{"events requeued", s.RequeuedRecords},
		{"retained (refused, retried later)", s.Retained},
		{"poison (left for redrive policy)", s.Poison},
		{put, s.Records},
		{"SQS errors", s.Errors},
		{"elapsed", s.Elapsed},
	}
	if _, err := fmt.Fprintln(w, title); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-34s %v\n", r.k, r.v)
	}
	return nil
}

// redriveOptions are the background redrive's SPATE_REDRIVE_* settings.
type redriveOptions struct {
	Rate int           // records per second at most
	Wait time.Duration // long poll of each receive
}

// startRedrive runs the background DLQ redrive of `spate ingest` until ctx
// ends; the returned func stops it and waits, after the message in hand.
// It puts through sink (Kinesis itself, not its DLQ fallback) at most
// opts.Rate records a second, and only while healthy says Kinesis takes
// records.
func startRedrive(ctx context.Context, env *environment, client *awssqs.Client, queueURL string, sink spate.Sink, healthy func() bool, opts redriveOptions) (stop func(), stats func() sqs.RedriveStats) {
	log := env.log.With("subsystem", "redrive")
	rate := opts.Rate
	r, err := sqs.NewRedriver(client, queueURL, sink, sqs.RedriveConfig{
		Rate:     float64(rate),
		WaitTime: opts.Wait,
		Healthy:  healthy,
		// Retrying a message every 5 s at most per task is no storm, and
		// the DLQ drains soon after Kinesis is back.
		MaxBackoff: 5 * time.Second,
		OnMessage: func(m sqs.MessageResult) {
			log.Debug("dlq message", "message_id", m.MessageID, "outcome", string(m.Outcome), "records", m.Records, "put", m.Put, "requeued", m.Requeued)
		},
	}, log)
	if err != nil {
		log.Error("background redrive not started", "err", err)
		return func() {}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		log.Info("background redrive started", "rate", rate)
		if err := r.Run(ctx); err != nil {
			log.Error("background redrive stopped", "err", err)
		}
		s := r.Stats()
		log.Info("background redrive stopped", "messages", s.Messages, "redriven", s.Redriven, "requeued", s.Requeued,
			"poison", s.Poison, "retained", s.Retained, "records", s.Records)
	})
	return func() { cancel(); wg.Wait() }, r.Stats
}
