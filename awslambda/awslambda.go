// Package awslambda translates between AWS Lambda's Kinesis events and
// spate's cores: the router, the aggregator (tumbling windows) and the
// reward function. Handlers are plain typed functions for
// lambda.StartHandlerFunc; SDK clients are built once, in the mains.
package awslambda

import (
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/kpl"
)

// NewLogger returns the JSON logger a Lambda main writes to w (stdout, which
// Lambda ships to CloudWatch Logs) at the level named by SPATE_LOG_LEVEL
// (debug, info, warn, error; info when unset or unknown).
func NewLogger(w io.Writer, getenv func(string) string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(getenv("SPATE_LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// records converts Lambda's Kinesis records to spate's events. Lambda hands
// KPL aggregated records over as they are: each becomes the events inside
// it, all carrying its sequence number, so a batch item failure names a
// real record and Lambda redelivers that aggregated record whole. Plain
// records pass as they are, and so does an aggregated record that does not
// decode, which the cores then treat as undecodable (kpl.Split).
func records(in []events.KinesisEventRecord) []spate.Record {
	recs, _ := kpl.Split(streamRecords(in))
	return recs
}

// streamRecords converts Lambda's Kinesis records to spate's, as the stream
// delivered them.
func streamRecords(in []events.KinesisEventRecord) []spate.Record {
	recs := make([]spate.Record, len(in))
	for i, r := range in {
		// eventID is "<shardId>:<sequenceNumber>".
		shard, _, _ := strings.Cut(r.EventID, ":")
		recs[i] = spate.Record{
			PartitionKey:   r.Kinesis.PartitionKey,
			Data:           r.Kinesis.Data,
			ShardID:        shard,
			SequenceNumber: r.Kinesis.SequenceNumber,
			// Kinesis stamps milliseconds; the float seconds on the wire
			// round-trip to a few nanoseconds off.
			ArrivedAt: r.Kinesis.ApproximateArrivalTimestamp.UTC().Round(time.Millisecond),
		}
	}
	return recs
}
