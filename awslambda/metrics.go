package awslambda

import (
	"log/slog"
	"time"

	"github.com/spate-dev/spate/internal/clock"
)

// MetricNamespace is the CloudWatch namespace of spate's own Lambda metrics.
const MetricNamespace = "spate"

// Counter returns a func that counts n on the CloudWatch metric name of
// namespace MetricNamespace with dimension Function=function, by logging
// one line in the Embedded Metric Format: Lambda ships stdout to
// CloudWatch Logs, which extracts the metric from it. No agent, no
// PutMetricData permission, nothing held between invocations.
func Counter(log *slog.Logger, function, name string, now func() time.Time) func(n int) {
	now = clock.Or(now)
	return func(n int) {
		log.Warn("metric "+name, "_aws", map[string]any{
			"Timestamp": now().UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  MetricNamespace,
				"Dimensions": [][]string{{"Function"}},
				"Metrics":    []map[string]string{{"Name": name, "Unit": "Count"}},
			}},
		}, "Function", function, name, n)
	}
}

// MetricDeadLettersWithoutPayload counts dead letters that carry only a
// record's coordinates and reason: too big for the queue, and no bucket
// configured. terraform alarms on it.
const MetricDeadLettersWithoutPayload = "DeadLettersWithoutPayload"
