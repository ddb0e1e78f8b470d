package kinesis_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/kpl"
)

// fakeStream answers ListShards with even hash ranges and PutRecords by
// routing each record as Kinesis does (explicit hash key, else the MD5 of
// its partition key); reply may refuse some.
type fakeStream struct {
	mu     sync.Mutex
	shards []types.Shard
	calls  [][]types.PutRecordsRequestEntry
	lists  int
	listed chan struct{}
	refuse func(call, i int) bool
}

func newFakeStream(n int) *fakeStream {
	f := &fakeStream{listed: make(chan struct{}, 16)}
	f.setShards(n, 0)
	return f
}

func (f *fakeStream) setShards(n, firstID int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards = nil
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(n)))
	for i := range n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end = new(big.Int).Sub(space, big.NewInt(1))
		}
		f.shards = append(f.shards, types.Shard{
			ShardId:             aws.String(fmt.Sprintf("shardId-%012d", firstID+i)),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start.String()), EndingHashKey: aws.String(end.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		})
	}
}

func (f *fakeStream) ListShards(ctx context.Context, in *awskinesis.ListShardsInput, _ ...func(*awskinesis.Options)) (*awskinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	f.listed <- struct{}{}
	return &awskinesis.ListShardsOutput{Shards: slices.Clone(f.shards)}, nil
}

// route is the shard Kinesis would put e on.
func (f *fakeStream) route(e types.PutRecordsRequestEntry) string {
	var h *big.Int
	if e.ExplicitHashKey != nil {
		h, _ = new(big.Int).SetString(*e.ExplicitHashKey, 10)
	} else {
		sum := md5.Sum([]byte(aws.ToString(e.PartitionKey))) // Kinesis's own rule, not the code under test
		h = new(big.Int).SetBytes(sum[:])
	}
	for _, sh := range f.shards {
		lo, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
		hi, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
		if h.Cmp(lo) >= 0 && h.Cmp(hi) <= 0 {
			return *sh.ShardId
		}
	}
	return "none"
}

func (f *fakeStream) PutRecords(ctx context.Context, in *awskinesis.PutRecordsInput, _ ...func(*awskinesis.Options)) (*awskinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := len(f.calls)
	f.calls = append(f.calls, in.Records)
	out := &awskinesis.PutRecordsOutput{}
	for i, e := range in.Records {
		if f.refuse != nil && f.refuse(call, i) {
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("Rate exceeded")})
			continue
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(f.route(e)), SequenceNumber: aws.String(fmt.Sprint(i))})
	}
	return out, nil
}

// events returns n events of about size bytes over keys partition keys.
func events(n, size, keys int) []spate.Record {
	out := make([]spate.Record, n)
	for i := range out {
		data := fmt.Appendf(nil, `{"n":%d,"pad":"`, i)
		data = append(data, bytes.Repeat([]byte("x"), max(0, size-len(data)-2))...)
		out[i] = spate.Record{PartitionKey: fmt.Sprintf("session-%d", i%keys), Data: append(data, `"}`...)}
	}
	return out
}

func TestAggregatesPerShard(t *testing.T) {
	f := newFakeStream(4)
	sink := kinesis.NewSink(f, "events", kinesis.SinkConfig{Shards: kinesis.NewShardMap(f, "events", time.Hour, nil)})
	in := events(1000, 500, 50)
	if err := sink.Put(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var got []spate.Record
	for _, call := range f.calls {
		for _, e := range call {
			if size := len(aws.ToString(e.PartitionKey)) + len(e.Data); size > kinesis.DefaultAggregateBytes {
				t.Errorf("record of %d bytes, over the %d target", size, kinesis.DefaultAggregateBytes)
			}
			shard := f.route(e)
			users, err := kpl.Unmarshal(e.Data)
			if err != nil {
				t.Fatalf("record is not aggregated: %v", err)
			}
			for _, u := range users {
				// Every event is on the shard its own key maps to.
				if own := f.route(types.PutRecordsRequestEntry{PartitionKey: aws.String(u.PartitionKey)}); own != shard {
					t.Fatalf("event of key %s on %s, its key maps to %s", u.PartitionKey, shard, own)
				}
				got = append(got, spate.Record{PartitionKey: u.PartitionKey, Data: u.Data})
			}
		}
	}
	if len(got) != len(in) {
		t.Fatalf("%d events in the records, want %d", len(got), len(in))
	}
	// Per key, the order of the input survives.
	perKey := func(recs []spate.Record) map[string][]string {
		m := map[string][]string{}
		for _, r := range recs {
			m[r.PartitionKey] = append(m[r.PartitionKey], string(r.Data))
		}
		return m
	}
	want := perKey(in)
	for k, v := range perKey(got) {
		if !slices.Equal(v, want[k]) {
			t.Fatalf("key %s: events out of order", k)
		}
	}
	st := sink.Stats()
	if st.Events != 1000 || st.Records >= 100 || st.Calls != 1 || st.Unexpected != 0 {
		t.Errorf("stats %+v: want 1000 events in fewer than 100 records, one call", st)
	}
	if perRecord := float64(st.Events) / float64(st.Records); perRecord < 40 {
		t.Errorf("%.1f events per record, want about 48 (25 KiB of 500-byte events)", perRecord)
	}
}

func TestAggregatedRecordFailsEveryEventInIt(t *testing.T) {
	f := newFakeStream(2)
	f.refuse = func(call, i int) bool { return i == 0 }
	sink := kinesis.NewSink(f, "events", kinesis.SinkConfig{Shards: kinesis.NewShardMap(f, "events", time.Hour, nil)})
	in := events(200, 300, 20)
	errs := spate.ItemErrors(sink.Put(context.Background(), in), len(in))
	refused, err := kpl.Unmarshal(f.calls[0][0].Data)
	if err != nil {
		t.Fatal(err)
	}
	inRefused := map[string]bool{}
	for _, u := range refused {
		inRefused[string(u.Data)] = true
	}
	failed := 0
	for i, err := range errs {
		if inRefused[string(in[i].Data)] != (err != nil) {
			t.Fatalf("event %d: err %v, in the refused record %v", i, err, inRefused[string(in[i].Data)])
		}
		if err != nil {
			failed++
			if !errors.Is(err, spate.ErrThrottled) {
				t.Errorf("event %d: %v, want throttled", i, err)
			}
		}
	}
	if failed != len(refused) || failed < 2 {
		t.Errorf("%d events failed, the refused record held %d", failed, len(refused))
	}
}

func TestSingleEventsStayPlain(t *testing.T) {
	f := newFakeStream(4)
	sink := kinesis.NewSink(f, "events", kinesis.SinkConfig{Shards: kinesis.NewShardMap(f, "events", time.Hour, nil), AggregateBytes: 1000})
	in := []spate.Record{
		{PartitionKey: "a", Data: []byte(`{"only":1}`)},
		{PartitionKey: "big", Data: bytes.Repeat([]byte("y"), 5000)}, // over the target alone
	}
	if err := sink.Put(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.calls[0] {
		if kpl.IsAggregated(e.Data) || e.ExplicitHashKey != nil {
			t.Errorf("record of key %s was aggregated", aws.ToString(e.PartitionKey))
		}
	}
	huge := []spate.Record{{PartitionKey: "k", Data: make([]byte, kinesis.MaxRecordBytes)}}
	if err := spate.ItemErrors(sink.Put(context.Background(), huge), 1)[0]; !errors.Is(err, spate.ErrTooLarge) {
		t.Errorf("oversized event: %v", err)
	}
}

func TestShardMapRefreshesOnUnexpectedShard(t *testing.T) {
	f := newFakeStream(2)
	now := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m := kinesis.NewShardMap(f, "events", time.Hour, clock)
	sink := kinesis.NewSink(f, "events", kinesis.SinkConfig{Shards: m})
	ctx := context.Background()
	if err := sink.Put(ctx, events(100, 200, 30)); err != nil {
		t.Fatal(err)
	}
	<-f.listed // the first load
	// Prescale resharded the stream to 4 new shards.
	f.setShards(4, 2)
	if err := sink.Put(ctx, events(100, 200, 30)); err != nil {
		t.Fatal(err)
	}
	if sink.Stats().Unexpected == 0 {
		t.Fatal("no put was seen landing on an unexpected shard")
	}
	<-f.listed // the refresh it triggered
	waitFor(t, func() bool { return m.Stats().Shards == 4 })
	before := sink.Stats().Unexpected
	if err := sink.Put(ctx, events(100, 200, 30)); err != nil {
		t.Fatal(err)
	}
	if after := sink.Stats().Unexpected; after != before {
		t.Errorf("%d unexpected shards after the refresh", after-before)
	}

	// The timer: an hour later the next put refreshes in the background.
	now = now.Add(time.Hour)
	if err := sink.Put(ctx, events(10, 200, 3)); err != nil {
		t.Fatal(err)
	}
	<-f.listed
	waitFor(t, func() bool { return m.Stats().Refreshes == 3 })
}

// waitFor polls cond, for state another goroutine publishes after a
// signal the test already received.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAggregatedAgainstKinesalite writes aggregated records through the
// real SDK client and checks where kinesalite put them: every event on the
// shard its key maps to, all back, in order per key.
func TestAggregatedAgainstKinesalite(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	client := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	if _, err := client.CreateStream(ctx, &awskinesis.CreateStreamInput{StreamName: aws.String("agg"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	m := kinesis.NewShardMap(client, "agg", time.Hour, nil)
	sink := kinesis.NewSink(client, "agg", kinesis.SinkConfig{Shards: m})
	in := events(1500, 400, 61)
	for i := 0; i < len(in); i += 500 {
		if err := sink.Put(ctx, in[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	if st := sink.Stats(); st.Unexpected != 0 || st.Events != 1500 || st.Records > 60 {
		t.Errorf("stats %+v", st)
	}
	raw, err := spatetest.ReadRecords(ctx, client, "agg")
	if err != nil {
		t.Fatal(err)
	}
	shards, err := client.ListShards(ctx, &awskinesis.ListShardsInput{StreamName: aws.String("agg")})
	if err != nil {
		t.Fatal(err)
	}
	owner := func(key string) string {
		sum := md5.Sum([]byte(key)) // independent of kinesis.HashOf
		h := new(big.Int).SetBytes(sum[:])
		for _, sh := range shards.Shards {
			lo, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
			hi, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
			if h.Cmp(lo) >= 0 && h.Cmp(hi) <= 0 {
				return *sh.ShardId
			}
		}
		return ""
	}
	for _, r := range raw {
		users, err := kpl.Unmarshal(r.Data)
		if err != nil {
			t.Fatalf("record %s is not aggregated: %v", r.SequenceNumber, err)
		}
		for _, u := range users {
			if owner(u.PartitionKey) != r.ShardID {
				t.Fatalf("event of key %s on %s, owned by %s", u.PartitionKey, r.ShardID, owner(u.PartitionKey))
			}
		}
	}
	got, err := spatetest.ReadEvents(ctx, client, "agg")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("read back %d events, want %d", len(got), len(in))
	}
	seen := map[string][]string{}
	for _, r := range got {
		seen[r.PartitionKey] = append(seen[r.PartitionKey], string(r.Data))
	}
	for _, r := range in {
		if len(seen[r.PartitionKey]) == 0 || seen[r.PartitionKey][0] != string(r.Data) {
			t.Fatalf("key %s: events missing or out of order", r.PartitionKey)
		}
		seen[r.PartitionKey] = seen[r.PartitionKey][1:]
	}
}

// TestShardMapFollowsKinesaliteReshard splits a shard in kinesalite under
// an aggregating sink: the first put after the split lands on a child the
// map does not know, which refreshes it; from then on every event is again
// on the shard its key maps to.
func TestShardMapFollowsKinesaliteReshard(t *testing.T) {
	ep := spatetest.Emulators(t)
	ctx := spatetest.Context(t, 60*time.Second)
	client := awskinesis.NewFromConfig(spatetest.AWSConfig(), func(o *awskinesis.Options) { o.BaseEndpoint = aws.String(ep.Kinesis) })
	const stream = "resharded"
	if _, err := client.CreateStream(ctx, &awskinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	m := kinesis.NewShardMap(client, stream, time.Hour, nil)
	sink := kinesis.NewSink(client, stream, kinesis.SinkConfig{Shards: m})
	if err := sink.Put(ctx, events(300, 300, 40)); err != nil {
		t.Fatal(err)
	}
	shards, err := client.ListShards(ctx, &awskinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	first := shards.Shards[0]
	lo, _ := new(big.Int).SetString(*first.HashKeyRange.StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(*first.HashKeyRange.EndingHashKey, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := client.SplitShard(ctx, &awskinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: first.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	if err := awskinesis.NewStreamExistsWaiter(client, func(o *awskinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	}).
		Wait(ctx, &awskinesis.DescribeStreamInput{StreamName: aws.String(stream)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := sink.Put(ctx, events(300, 300, 40)); err != nil {
		t.Fatal(err)
	}
	if sink.Stats().Unexpected == 0 {
		t.Fatal("the put after the split was not seen landing on an unexpected shard")
	}
	waitFor(t, func() bool { return m.Stats().Shards == 3 })
	before := sink.Stats().Unexpected
	recs := events(300, 300, 40)
	for i := range recs {
		recs[i].Data = append(recs[i].Data[:len(recs[i].Data)-2], `after"}`...)
	}
	if err := sink.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if n := sink.Stats().Unexpected - before; n != 0 {
		t.Errorf("%d records on unexpected shards after the refresh", n)
	}
	open, err := client.ListShards(ctx, &awskinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	owner := func(key string) string {
		sum := md5.Sum([]byte(key)) // independent of kinesis.HashOf
		h := new(big.Int).SetBytes(sum[:])
		for _, sh := range open.Shards {
			if sh.SequenceNumberRange.EndingSequenceNumber != nil {
				continue
			}
			lo, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
			hi, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
			if h.Cmp(lo) >= 0 && h.Cmp(hi) <= 0 {
				return *sh.ShardId
			}
		}
		return ""
	}
	raw, err := spatetest.ReadRecords(ctx, client, stream)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range raw {
		users, bad := kpl.Split([]spate.Record{r})
		if bad != 0 {
			t.Fatalf("undecodable record %s", r.SequenceNumber)
		}
		for _, u := range users {
			if !bytes.HasSuffix(u.Data, []byte(`after"}`)) {
				continue
			}
			checked++
			if owner(u.PartitionKey) != r.ShardID {
				t.Fatalf("after the refresh, an event of key %s is on %s, owned by %s", u.PartitionKey, r.ShardID, owner(u.PartitionKey))
			}
		}
	}
	if checked != len(recs) {
		t.Fatalf("found %d of the %d events put after the refresh", checked, len(recs))
	}
}
