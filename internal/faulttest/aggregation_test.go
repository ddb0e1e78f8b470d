package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/loadgen"
)

// TestKinesisRecordsAtLoad runs the real `spate ingest` with its defaults
// (aggregation on) against kinesalite under loadgen's realistic request
// mix, reads events per record from /metrics, and has AWS's aws-kinesis-agg
// deaggregate the whole stream: every acknowledged event is back, with the
// partition key ingest gave it, in the records /metrics counted.
//
// SPATE_TEST_AGG_RATE (requests/s), SPATE_TEST_AGG_SHARDS and
// SPATE_TEST_AGG_SECONDS change the load for measurements by hand
// (docs/benchmarks.md); the defaults keep make test short.
func TestKinesisRecordsAtLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load against kinesalite: runs in make test, not -short")
	}
	rate := envFloat(t, "SPATE_TEST_AGG_RATE", 600)
	shards := int(envFloat(t, "SPATE_TEST_AGG_SHARDS", 2))
	seconds := envFloat(t, "SPATE_TEST_AGG_SECONDS", 4)
	ep := spatetest.Emulators(t)
	bin := buildSpate(t)
	ctx := spatetest.Context(t, 3*time.Minute)
	kc := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	stream := Name(t, "events")
	if err := CreateStream(ctx, kc, stream, shards); err != nil {
		t.Fatal(err)
	}
	p := startIngest(t, bin, append([]string{
		"SPATE_ADDR=127.0.0.1:0",
		"SPATE_METRICS_ADDR=127.0.0.1:0",
		"SPATE_STREAM=" + stream,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDSPATETEST",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_KINESIS=" + ep.Kinesis,
	}, strings.Fields(os.Getenv("SPATE_TEST_AGG_ENV"))...))

	sc, err := loadgen.NewScenario("steady", rate, 0, time.Duration(seconds*float64(time.Second)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ids bytes.Buffer
	res, err := loadgen.Run(ctx, loadgen.Config{URL: p.URL, Scenario: sc, IDs: &ids, Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	m := scrapeMetrics(t, p.MetricsURL)
	p.stop()
	if res.Events.Accepted == 0 {
		t.Fatalf("no event acknowledged: %+v", res.Status)
	}
	events, records, bytes, calls := m["spate_kinesis_events_total"], m["spate_kinesis_written_records_total"], m["spate_kinesis_written_bytes_total"], m["spate_kinesis_put_calls_total"]
	perRecord := events / records
	t.Logf("%d shards, %.0f requests/s offered for %.0fs: %d events acknowledged (%.2f per request) in %.0f Kinesis records: %.1f events per record; "+
		"per 1,000 events %.1f PutRecords calls and %.0f bytes; p99 %.1f ms",
		shards, rate, seconds, res.Events.Accepted, float64(res.Events.Accepted)/float64(res.Requests.Answered), records, perRecord,
		1000*calls/events, 1000*bytes/events, res.Latency.P99)
	if int64(events) < res.Events.Accepted {
		t.Errorf("/metrics counts %.0f events written, %d were acknowledged", events, res.Events.Accepted)
	}
	if os.Getenv("SPATE_TEST_AGG_RATE") == "" && perRecord < 10 {
		t.Errorf("%.1f events per Kinesis record, want at least 10", perRecord)
	}

	// AWS's deaggregator reads back exactly what /metrics counted.
	users := spatetest.NodeDeaggregate(t, ctx, ep.Kinesis, stream)
	seqs := map[string]bool{}
	byID := map[string]bool{}
	for _, u := range users {
		seqs[u.ShardID+"/"+u.SequenceNumber] = true
		var e spate.Event
		if err := json.Unmarshal(u.Data, &e); err != nil {
			t.Fatalf("user record %s/%v is not an event: %v", u.SequenceNumber, u.SubSequenceNumber, err)
		}
		if u.PartitionKey != e.PartitionKey() {
			t.Fatalf("event %s came back with partition key %q, ingest gives it %q", e.EventID, u.PartitionKey, e.PartitionKey())
		}
		byID[e.EventID] = true
	}
	if len(users) != int(events) || len(seqs) != int(records) {
		t.Errorf("aws-kinesis-agg read %d events in %d records; /metrics counted %.0f in %.0f", len(users), len(seqs), events, records)
	}
	sc2 := bufio.NewScanner(&ids)
	missing := 0
	for sc2.Scan() {
		if !byID[sc2.Text()] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged events are not in the stream", missing)
	}
}

func envFloat(t *testing.T, name string, def float64) float64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return f
}

// scrapeMetrics reads the unlabelled samples of GET /metrics.
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err == nil {
			out[name] = f
		}
	}
	if _, ok := out["spate_kinesis_events_total"]; !ok {
		t.Fatal(fmt.Errorf("/metrics has no spate_kinesis_events_total"))
	}
	return out
}
