package awslambda_test

import (
	"bytes"
	"strings"
	"testing"

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
