package awslambda

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spate-dev/spate/sqs"
)

// DeadLetterConfig is how a stream consumer's dead letters are kept, read
// from the environment by its main.
type DeadLetterConfig struct {
	// Function names the Lambda on its metrics ("router", "reward").
	Function string
	// QueueURL is the dead-letter queue.
	QueueURL string
	// Bucket holds payloads over the queue's MaximumMessageSize under
	// sqs.DeadLetterPrefix (SPATE_DEAD_LETTER_BUCKET); empty: such dead
	// letters carry the record's coordinates only, counted on
	// MetricDeadLettersWithoutPayload.
	Bucket string
	// Stream is the stream the function reads (SPATE_SOURCE_STREAM), named
	// in every letter.
	Stream string
}

// DeadLetterConfigFromEnv is the dead-letter settings every function reads
// the same way: SPATE_DEAD_LETTER_BUCKET and SPATE_SOURCE_STREAM.
func DeadLetterConfigFromEnv(function, queueURL string, getenv func(string) string) DeadLetterConfig {
	return DeadLetterConfig{Function: function, QueueURL: queueURL,
		Bucket: getenv("SPATE_DEAD_LETTER_BUCKET"), Stream: getenv("SPATE_SOURCE_STREAM")}
}

// OpenDeadLetters returns the consumer's dead-letter queue, sized to the
// queue's own limit (read now, and logged), spilling to cfg.Bucket through
// objects. A dead letter then never fails for its size: a poison record is
// skipped on its first attempt, whatever it weighs.
func OpenDeadLetters(ctx context.Context, queue sqs.OpenAPI, objects sqs.ObjectAPI, cfg DeadLetterConfig, log *slog.Logger) (*sqs.DLQ, error) {
	dc := sqs.DLQConfig{Stream: cfg.Stream}
	if cfg.Bucket != "" {
		dc.Payloads = sqs.NewS3Payloads(objects, cfg.Bucket, nil)
	} else {
		dc.OmitOversized = true
		dc.OnOmitted = Counter(log, cfg.Function, MetricDeadLettersWithoutPayload, nil)
	}
	dlq, err := sqs.OpenDLQ(ctx, queue, cfg.QueueURL, dc)
	if err != nil {
		return nil, fmt.Errorf("dead-letter queue: %w", err)
	}
	if cfg.Bucket == "" {
		log.Warn("dead letters over the queue's limit will carry coordinates only: no SPATE_DEAD_LETTER_BUCKET",
			"max_message_bytes", dlq.MaxMessageBytes())
	} else {
		log.Info("dead-letter queue", "max_message_bytes", dlq.MaxMessageBytes(), "bucket", cfg.Bucket, "prefix", sqs.DeadLetterPrefix)
	}
	return dlq, nil
}
