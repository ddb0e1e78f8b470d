//go:build linux

package rietest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/reward"
)

// rewardAPI stands in for a model's reward API: it answers with status
// (or hangs until the caller gives up) and counts calls per idempotency
// key.
type rewardAPI struct {
	mu     sync.Mutex
	status int // 0: hang
	calls  map[string]int
	done   chan struct{}
}

func newRewardAPI(t *testing.T) (*rewardAPI, string) {
	t.Helper()
	a := &rewardAPI{status: http.StatusOK, calls: map[string]int{}, done: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		a.mu.Lock()
		a.calls[r.Header.Get("Idempotency-Key")]++
		status := a.status
		a.mu.Unlock()
		switch status {
		case 0:
			select {
			case <-r.Context().Done():
			case <-a.done:
			}
			return
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(func() { close(a.done); srv.Close() })
	return a, srv.URL
}

func (a *rewardAPI) set(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status = status
}

func (a *rewardAPI) callsFor(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[reward.IdempotencyKey(id, "bandit")]
}

// aggregateJSON is one aggregate record of a window that ended just now
// by the functions' clock (so it is within SPATE_REWARD_MAX_AGE), with
// rows rows.
func aggregateJSON(id string, rows int) []byte {
	end := clock.Wall()().UTC().Truncate(time.Minute)
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%q,"source":"spate-events/shardId-000000000000","window_start":%q,"window_end":%q,"rows":[`,
		id, end.Add(-time.Minute).Format(time.RFC3339), end.Format(time.RFC3339))
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"content_id":"content-%06d","image_variant":"hero_a","platform":"web","impressions":%d,"clicks":1,"play_starts":0}`, i, i+1)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func TestRewardUnderRIE(t *testing.T) {
	ep := spatetest.Emulators(t)
	qc := awssqs.NewFromConfig(spatetest.AWSConfig(), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(ep.SQS) })
	setup := func(t *testing.T, name string) (*rewardAPI, string, *spatetest.S3, map[string]string) {
		api, url := newRewardAPI(t)
		s3 := spatetest.NewS3(t, "spate-lake")
		// A queue at the 256 KiB that SQS queues long had (and that the
		// function used to assume): a large aggregate's letter is over it.
		queue := newQueue(t, spatetest.Context(t, 20*time.Second), qc, name, map[string]string{"MaximumMessageSize": "262144"})
		return api, queue, s3, map[string]string{
			"AWS_ENDPOINT_URL_SQS":     ep.SQS,
			"AWS_ENDPOINT_URL_S3":      s3.URL,
			"SPATE_REWARD_ENDPOINTS":   "bandit=" + url,
			"SPATE_REWARD_ALLOW_HTTP":  "true", // the stand-in is plain http on loopback
			"SPATE_REWARD_DLQ_URL":     queue,
			"SPATE_DEAD_LETTER_BUCKET": "spate-lake",
			"SPATE_SOURCE_STREAM":      "spate-aggregates",
			"SPATE_REWARD_TIMEOUT":     "1s",
			"SPATE_LOG_LEVEL":          "warn",
		}
	}

	t.Run("happy path", func(t *testing.T) {
		api, queue, s3, env := setup(t, "reward-happy")
		fn := start(t, "reward", 10, env)
		ev := shardRecords("spate-aggregates", "shardId-000000000000", 0, aggregateJSON("agg-1", 3), aggregateJSON("agg-2", 1))
		resp, _ := fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %v", resp.BatchItemFailures)
		}
		if api.callsFor("agg-1") != 1 || api.callsFor("agg-2") != 1 {
			t.Errorf("calls %v", api.calls)
		}
		if got := deadLetters(t, spatetest.Context(t, 20*time.Second), qc, queue, s3); len(got) != 0 {
			t.Errorf("%d dead letters, want none", len(got))
		}
	})

	// An undecodable record (aws-lambda-go's sample) and an aggregate the
	// API refuses with a 4xx, large enough that its letter exceeds the
	// queue, are dead-lettered on the first attempt: the refused request is
	// POSTed once, never again.
	t.Run("every bad-record class", func(t *testing.T) {
		api, queue, s3, env := setup(t, "reward-bad")
		fn := start(t, "reward", 10, env)
		var sample events.KinesisEvent
		if err := json.Unmarshal(awsTestdata(t, "kinesis-event.json"), &sample); err != nil {
			t.Fatal(err)
		}
		resp, _ := fn.kinesisResponse(t, sample)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("sample: failures %v", resp.BatchItemFailures)
		}
		api.set(http.StatusUnprocessableEntity)
		big := aggregateJSON("agg-big", 4000)
		if len(big) < 300<<10 {
			t.Fatalf("aggregate of %d bytes: not over the queue's limit", len(big))
		}
		ev := shardRecords("spate-aggregates", "shardId-000000000001", 10, big, aggregateJSON("agg-small", 1))
		resp, _ = fn.kinesisResponse(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %v: a refused aggregate holds the shard", resp.BatchItemFailures)
		}
		if api.callsFor("agg-big") != 1 {
			t.Errorf("refused aggregate POSTed %d times, want once", api.callsFor("agg-big"))
		}
		got := deadLetters(t, spatetest.Context(t, 20*time.Second), qc, queue, s3)
		reasons := map[string]int{}
		for _, l := range got {
			var lt reward.Letter
			if err := json.Unmarshal(l.Record.Data, &lt); err != nil {
				t.Fatalf("letter: %v", err)
			}
			class, _, _ := strings.Cut(lt.Reason, ":")
			reasons[class]++
			switch {
			case class == "undecodable" && string(lt.Raw) != "Hello World":
				t.Errorf("undecodable letter holds %q", lt.Raw)
			case lt.AggregateID == "agg-big" && (l.Wire.S3 == nil || lt.Status != http.StatusUnprocessableEntity || lt.Request == nil || len(lt.Request.Rewards) != 4000 ||
				l.Wire.Shard != "shardId-000000000001" || l.Wire.Sequence != ev.Records[0].Kinesis.SequenceNumber):
				t.Errorf("big letter: pointer %v, status %d, shard %s, sequence %s", l.Wire.S3, lt.Status, l.Wire.Shard, l.Wire.Sequence)
			case lt.AggregateID == "agg-small" && l.Wire.S3 != nil:
				t.Errorf("small letter went to S3")
			}
		}
		if reasons["undecodable"] != 2 || reasons["rejected"] != 2 || len(got) != 4 {
			t.Errorf("dead letters by reason %v, want 2 undecodable and 2 rejected", reasons)
		}
		if keys := s3.Keys(t, "spate-lake", ""); len(keys) != 1 || !strings.HasPrefix(keys[0], "dead-letter/rejected/dt=") {
			t.Errorf("bucket holds %q", keys)
		}
	})

	// What may succeed later is reported from its record, before the
	// deadline (the handler keeps 2 s of margin), and not dead-lettered.
	for _, tc := range []struct {
		name   string
		status int
	}{{"API 500", http.StatusInternalServerError}, {"API throttling", http.StatusTooManyRequests}, {"API hangs", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			api, queue, s3, env := setup(t, "reward-"+strings.ReplaceAll(tc.name, " ", "-"))
			env["SPATE_REWARD_TIMEOUT"] = "30s" // a hang is cut by the deadline, not the call timeout
			const timeout = 4
			fn := start(t, "reward", timeout, env)
			if resp, _ := fn.kinesisResponse(t, shardRecords("spate-aggregates", "shardId-000000000002", 20, aggregateJSON("warm-up", 1))); len(resp.BatchItemFailures) != 0 {
				t.Fatalf("warm-up failures %v", resp.BatchItemFailures)
			}
			api.set(tc.status)
			ev := shardRecords("spate-aggregates", "shardId-000000000002", 30, aggregateJSON("agg-a", 1), aggregateJSON("agg-b", 1))
			resp, took := fn.kinesisResponse(t, ev)
			if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[0].Kinesis.SequenceNumber {
				t.Errorf("failures %v, want the first record %s", resp.BatchItemFailures, ev.Records[0].Kinesis.SequenceNumber)
			}
			if took >= timeout*time.Second {
				t.Errorf("answered after %s, past the %ds timeout", took, timeout)
			}
			if api.callsFor("agg-a") < 1 || api.callsFor("agg-b") != 0 {
				t.Errorf("calls %v: want agg-a tried, agg-b left for the retry", api.calls)
			}
			if got := deadLetters(t, spatetest.Context(t, 20*time.Second), qc, queue, s3); len(got) != 0 {
				t.Errorf("%d dead letters for a failure that may pass", len(got))
			}
		})
	}

	t.Run("missing configuration fails init", func(t *testing.T) {
		_, _, _, env := setup(t, "reward-noconfig")
		delete(env, "SPATE_REWARD_ENDPOINTS")
		fn := start(t, "reward", 10, env)
		status, body, _ := fn.invoke(t, awsTestdata(t, "kinesis-event.json"))
		if status != http.StatusBadGateway {
			t.Errorf("HTTP %d %s, want the RIE's 502 for a failed init", status, body)
		}
		if !fn.out.waitFor("SPATE_REWARD_ENDPOINTS", 10*time.Second) {
			t.Errorf("init failure not explained in the log:\n%s", fn.out.String())
		}
	})
}
