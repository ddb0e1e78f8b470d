package faulttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsfirehose "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/google/uuid"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/firehose"
	"github.com/spate-dev/spate/internal/fakefirehose"
	"github.com/spate-dev/spate/internal/faultproxy"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewardhttp"
	"github.com/spate-dev/spate/router"
)

// streamOfEvents puts n canonical events of mixed types into a fresh
// kinesalite stream and reads them back as a consumer gets them: with
// shard ids and sequence numbers.
func (w *world) streamOfEvents(t *testing.T, ctx context.Context, n int) []spate.Record {
	t.Helper()
	stream := Name(t, "events")
	if err := CreateStream(ctx, w.kc, stream, 2); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Limits{})
	now := time.Now()
	recs := make([]spate.Record, 0, n)
	for i := range n {
		var raw string
		id := uuid.NewString()
		switch i % 4 {
		case 0:
			raw = fmt.Sprintf(`{"type":"impression","event_id":%q,"anonymous_id":"d%d","session_id":"s%d","platform":"tv","content_id":"c%d","image_variant":"v%d","position":%d}`, id, i%97, i%31, i%13, i%3, i%10)
		case 1:
			raw = fmt.Sprintf(`{"type":"click","event_id":%q,"anonymous_id":"d%d","session_id":"s%d","platform":"web","content_id":"c%d","image_variant":"v%d"}`, id, i%97, i%31, i%13, i%3)
		case 2:
			raw = fmt.Sprintf(`{"type":"play_start","event_id":%q,"anonymous_id":"d%d","session_id":"s%d","platform":"ios","content_id":"c%d","image_variant":"v%d","live":true}`, id, i%97, i%31, i%13, i%3)
		default:
			raw = fmt.Sprintf(`{"type":"page_view","event_id":%q,"anonymous_id":"d%d","session_id":"s%d","platform":"android","page":"/p/%d"}`, id, i%97, i%31, i)
		}
		e, err := reg.Decode([]byte(raw), now)
		if err != nil {
			t.Fatalf("generated event invalid: %v", err)
		}
		recs = append(recs, spate.Record{PartitionKey: e.PartitionKey(), Data: e.AppendJSON(nil)})
	}
	if err := kinesis.NewSink(w.kc, stream, kinesis.SinkConfig{}).Put(ctx, recs); err != nil {
		t.Fatalf("put events: %v", err)
	}
	got, err := ReadStream(ctx, w.kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("stream holds %d of %d events", len(got), n)
	}
	return got
}

// byShard groups records per shard, in stream order.
func byShard(recs []spate.Record) [][]spate.Record {
	m := map[string][]spate.Record{}
	var ids []string
	for _, r := range recs {
		if _, ok := m[r.ShardID]; !ok {
			ids = append(ids, r.ShardID)
		}
		m[r.ShardID] = append(m[r.ShardID], r)
	}
	sort.Strings(ids)
	out := make([][]spate.Record, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out
}

// deadLetters keeps what the router gives up on.
type deadLetters struct {
	mu   sync.Mutex
	recs []spate.Record
}

func (d *deadLetters) PutReason(_ context.Context, recs []spate.Record, _ string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recs = append(d.recs, recs...)
	return nil
}

// routerFirehose runs the router the way Lambda does over a shard
// (batches of 100, ReportBatchItemFailures: checkpoint before the first
// failed record, redeliver from it) while Firehose throttles calls and
// refuses records, and accounts for every event of the stream in what the
// delivery streams accepted.
func (w *world) routerFirehose(t *testing.T) {
	ctx := spatetest.Context(t, 2*time.Minute)
	recs := w.streamOfEvents(t, ctx, 3000)
	reg := registry.New(registry.Limits{})
	streams := router.StreamNames(reg.Types(), "spate-")
	var names []string
	for _, s := range streams {
		names = append(names, s)
	}
	fake := fakefirehose.New(names...)
	defer fake.Close()
	px, err := faultproxy.New(fake.URL, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	px.Set(
		faultproxy.Rule{Ops: []string{"PutRecordBatch"}, Status: http.StatusInternalServerError, ErrorType: "ServiceUnavailableException", Every: 4},
		faultproxy.Rule{Ops: []string{"PutRecordBatch"}, RecordFailure: 0.3},
	)
	fc := awsfirehose.NewFromConfig(spatetest.AWSConfig(), func(o *awsfirehose.Options) { o.BaseEndpoint = aws.String(px.URL()) })
	dl := &deadLetters{}
	// Few attempts, so failures outlast one invocation and the
	// redelivery path is exercised too.
	rt, err := router.New(reg, firehose.NewDestination(fc), dl, router.Config{
		Streams: streams, MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	invocations, redeliveries := 0, 0
	for _, shard := range byShard(recs) {
		for pos := 0; pos < len(shard); {
			batch := shard[pos:min(pos+100, len(shard))]
			invocations++
			if invocations > 2000 {
				t.Fatal("router never got through the stream")
			}
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := rt.Route(ictx, batch)
			cancel()
			var be *spate.BatchError
			switch {
			case err == nil:
				pos += len(batch)
			case errors.As(err, &be):
				first := 0
				for first < len(be.Errs) && be.Errs[first] == nil {
					first++
				}
				pos += first
				redeliveries++
			default:
				redeliveries++ // the whole batch again
			}
		}
	}
	px.Clear()

	delivered := map[string]int{}
	total := 0
	for _, s := range names {
		for _, rec := range fake.Records(s) {
			for line := range bytes.SplitSeq(bytes.TrimSuffix(rec, []byte{'\n'}), []byte{'\n'}) {
				id, err := EventID(spate.Record{Data: line})
				if err != nil {
					t.Fatalf("delivery stream %s holds %q: %v", s, line, err)
				}
				delivered[id]++
				total++
			}
		}
	}
	tl := tally{Sent: len(recs), Acked: len(recs), InStream: total, InDLQ: len(dl.recs)}
	for _, r := range recs {
		id, err := EventID(r)
		if err != nil {
			t.Fatal(err)
		}
		switch n := delivered[id]; {
		case n == 0:
			tl.Lost++
		default:
			tl.Found++
			tl.Duplicates += n - 1
		}
	}
	if tl.Lost > 0 || tl.InDLQ > 0 {
		t.Errorf("%d events never delivered, %d dead-lettered", tl.Lost, tl.InDLQ)
	}
	st := px.Stats()
	if st.Injected["PutRecordBatch"] == 0 || st.RecordsRefused["PutRecordBatch"] == 0 || redeliveries == 0 {
		t.Fatalf("faults not exercised: %d throttled calls, %d refused records, %d redeliveries", st.Injected["PutRecordBatch"], st.RecordsRefused["PutRecordBatch"], redeliveries)
	}
	w.report.add(row{
		Scenario: "Router: Firehose throttling and partial failures", T: tl,
		Faults: fmt.Sprintf("every 4th PutRecordBatch refused whole with ServiceUnavailableException (%d calls), 30%% of the others' records refused in the 200 (%d records); router at 2 attempts per invocation", st.Injected["PutRecordBatch"], st.RecordsRefused["PutRecordBatch"]),
		Checks: fmt.Sprintf("every event on the stream reaches its type's delivery stream; nothing dead-lettered. The router is driven as Lambda drives it (batches of 100 per shard, checkpoint before the first failed record): %d invocations, %d redeliveries; sent/202 = events on the stream, found = delivered, dup = delivered more than once (redelivered batches). The router's memory of delivered event_ids skipped %d redelivered records (without it, dup was 4,603 in the run of 2026-12-01).", invocations, redeliveries, rt.Stats().Duplicates),
	})
}

// rewardAPI is a reward API that records idempotency keys it accepted.
type rewardAPI struct {
	mu   sync.Mutex
	keys map[string]int
}

func (a *rewardAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		http.Error(w, "no key", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.keys[key]++
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// rewardDown folds a stream's events into aggregates and delivers them to
// a reward API that is unreachable, then answers 503, then recovers: every
// aggregate must be accepted once it is back, under its idempotency key.
func (w *world) rewardDown(t *testing.T) {
	ctx := spatetest.Context(t, 2*time.Minute)
	recs := w.streamOfEvents(t, ctx, 2000)
	f, err := aggregate.New(aggregate.Config{Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var aggs []aggregate.Aggregate
	// One state per 100 records, as if each were a window of its own:
	// enough aggregates to spread over the outage.
	for _, shard := range byShard(recs) {
		for i := 0; i < len(shard); i += 100 {
			st := aggregate.NewState(fmt.Sprintf("faulttest/%s/%d", shard[0].ShardID, i), aggregate.WindowOf(time.Now(), time.Minute))
			aggs = append(aggs, f.Fold(st, shard[i:min(i+100, len(shard))])...)
			aggs = append(aggs, f.Close(st, false)...)
		}
	}
	if len(aggs) == 0 {
		t.Fatal("no aggregates")
	}
	api := &rewardAPI{keys: map[string]int{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	px, err := faultproxy.New(srv.URL, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	client, err := rewardhttp.New(px.URL()+"/reward", rewardhttp.Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := reward.New([]reward.Endpoint{{Model: "thumbnails", Rewarder: client}}, reward.Config{
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxElapsed: 300 * time.Millisecond,
		BreakerOpen: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	// Down for the first second, then 503 for another, then healthy.
	px.Down()
	began := time.Now()
	phase := 0
	failedDeliveries := 0
	var recovered time.Duration
	for _, a := range aggs {
		for {
			switch {
			case phase == 0 && time.Since(began) > time.Second:
				if err := px.Up(); err != nil {
					t.Fatal(err)
				}
				px.Set(faultproxy.Rule{Status: http.StatusServiceUnavailable})
				phase = 1
			case phase == 1 && time.Since(began) > 2*time.Second:
				px.Clear()
				phase = 2
			}
			// The caller (the Lambda, redelivering the window) tries again
			// until the API takes it.
			err := sender.Deliver(ctx, a)
			if err == nil {
				break
			}
			failedDeliveries++
			if time.Since(began) > time.Minute {
				t.Fatalf("aggregate %s not delivered after a minute: %v", a.ID, err)
			}
		}
		if recovered == 0 {
			recovered = time.Since(began) - 2*time.Second
		}
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	tl := tally{Sent: len(aggs), Acked: len(aggs)}
	for _, a := range aggs {
		n := api.keys[reward.IdempotencyKey(a.ID, "thumbnails")]
		if n == 0 {
			tl.Lost++
			continue
		}
		tl.Found++
		tl.Duplicates += n - 1
		tl.InStream += n
	}
	if tl.Lost > 0 {
		t.Errorf("%d of %d aggregates never accepted", tl.Lost, len(aggs))
	}
	if failedDeliveries == 0 {
		t.Fatal("the outage was not felt")
	}
	if ds := sender.Stats(); ds.Expired > 0 {
		t.Errorf("%d aggregates dead-lettered", ds.Expired)
	}
	w.report.add(row{
		Scenario: "Reward API down", T: tl, Recovery: max(recovered, 0),
		Faults: "reward API refusing connections for 1 s, then answering 503 for 1 s",
		Checks: fmt.Sprintf("every aggregate (sent = aggregates folded from %d events) is accepted once the API is back, under its idempotency key, none dead-lettered; %d deliveries failed and were retried by the caller. Recovery: API healthy → first aggregate accepted.", len(recs), failedDeliveries),
	})
}
