//go:build linux

package rietest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/internal/faulttest"
	"github.com/spate-dev/spate/internal/spatetest"
)

// windowResponse invokes the aggregator and decodes its tumbling-window
// response, which must carry a state (Lambda fails an invocation without).
func (f *function) windowResponse(t *testing.T, payload []byte) events.KinesisTimeWindowEventResponse {
	t.Helper()
	status, body, _ := f.invoke(t, payload)
	if status != http.StatusOK || bytes.Contains(body, []byte(`"errorType"`)) {
		t.Fatalf("invoke: HTTP %d %s", status, body)
	}
	var resp events.KinesisTimeWindowEventResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.State == nil || resp.BatchItemFailures == nil {
		t.Fatalf("response %s: %v (want a state and batchItemFailures)", body, err)
	}
	return resp
}

func TestAggregatorUnderRIE(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	kc := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	stream := faulttest.Name(t, "aggregates")
	if err := faulttest.CreateStream(ctx, kc, stream, 1); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AWS_ENDPOINT_URL_KINESIS": ep.Kinesis, "SPATE_AGGREGATES_STREAM": stream, "SPATE_LOG_LEVEL": "warn"}

	t.Run("aws-lambda-go sample: foreign state and an unreadable record, skipped", func(t *testing.T) {
		fn := start(t, "aggregator", 10, env)
		resp := fn.windowResponse(t, awsTestdata(t, "kinesis-time-window-event.json"))
		if len(resp.BatchItemFailures) != 0 || len(resp.State) == 0 {
			t.Errorf("response %+v: want the window carried on, nothing to retry", resp)
		}
	})

	t.Run("spate window: state carried, aggregates written at the end", func(t *testing.T) {
		fn := start(t, "aggregator", 10, env)
		raw, err := os.ReadFile(filepath.Join(spatetest.RepoRoot(t), "awslambda", "testdata", "aggregator-time-window-event.json"))
		if err != nil {
			t.Fatal(err)
		}
		resp := fn.windowResponse(t, raw)
		if len(resp.BatchItemFailures) != 0 || len(resp.State) == 0 {
			t.Fatalf("response %+v", resp)
		}
		var ev events.KinesisTimeWindowEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		ev.Records, ev.State, ev.IsFinalInvokeForWindow = nil, resp.State, true
		final, _ := json.Marshal(ev)
		if resp := fn.windowResponse(t, final); len(resp.State) != 0 {
			t.Errorf("final response keeps state %v", resp.State)
		}
		recs, err := faulttest.ReadStream(ctx, kc, stream)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Fatalf("%d aggregate records, want 1", len(recs))
		}
		a, err := aggregate.Decode(recs[0].Data)
		if err != nil || len(a.Rows) == 0 || !strings.HasSuffix(a.Source, "shardId-000000000003") {
			t.Errorf("aggregate %+v: %v", a, err)
		}
	})

	t.Run("missing configuration fails init", func(t *testing.T) {
		fn := start(t, "aggregator", 10, map[string]string{"AWS_ENDPOINT_URL_KINESIS": ep.Kinesis})
		status, body, _ := fn.invoke(t, awsTestdata(t, "kinesis-time-window-event.json"))
		if status != http.StatusBadGateway {
			t.Errorf("HTTP %d %s, want the RIE's 502 for a failed init", status, body)
		}
		if !fn.out.waitFor("SPATE_AGGREGATES_STREAM is required", 10*time.Second) {
			t.Errorf("init failure not explained in the log:\n%s", fn.out.String())
		}
	})
}
