package awslambda_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/awslambda"
)

func TestNewLoggerLevel(t *testing.T) {
	for level, wantDebug := range map[string]bool{"debug": true, "": false, "warn": false, "nonsense": false} {
		var buf bytes.Buffer
		log := awslambda.NewLogger(&buf, func(string) string { return level })
		log.Debug("d")
		log.Warn("w")
		if got := strings.Contains(buf.String(), `"msg":"d"`); got != wantDebug {
			t.Errorf("SPATE_LOG_LEVEL=%q: debug logged %v", level, got)
		}
		if level != "nonsense" && !strings.Contains(buf.String(), `"level":"WARN"`) {
			t.Errorf("SPATE_LOG_LEVEL=%q: warn missing in %s", level, buf.String())
		}
	}
}

func TestCounterWritesEmbeddedMetricFormat(t *testing.T) {
	var buf bytes.Buffer
	log := awslambda.NewLogger(&buf, func(string) string { return "" })
	awslambda.Counter(log, "router", awslambda.MetricDeadLettersWithoutPayload, func() time.Time { return time.UnixMilli(1764000000123) })(3)
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function string
		Count    int `json:"DeadLettersWithoutPayload"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	m := line.AWS.CloudWatchMetrics
	if line.AWS.Timestamp != 1764000000123 || len(m) != 1 || m[0].Namespace != "spate" || fmt.Sprint(m[0].Dimensions) != "[[Function]]" ||
		len(m[0].Metrics) != 1 || m[0].Metrics[0].Name != "DeadLettersWithoutPayload" || line.Function != "router" || line.Count != 3 {
		t.Errorf("EMF line %s", buf.Bytes())
	}
}
