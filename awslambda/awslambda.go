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

// records converts Lambda's Kinesis records to spate's, as the stream
// delivered them.
func records(in []events.KinesisEventRecord) []spate.Record {
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
