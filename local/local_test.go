package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/diskstream"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewarddemo"
	"github.com/spate-dev/spate/rewardhttp"
	"github.com/spate-dev/spate/router"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// rig is the parts of local mode on one data directory.
type rig struct {
	t      *testing.T
	dir    string
	clock  *fakeClock
	stream *diskstream.Stream
	lake   *lake.Lake
	router *router.Router
	rc     *rewarddemo.Receiver
	api    *httptest.Server
}

func newRig(t *testing.T, dir string, c *fakeClock, rc *rewarddemo.Receiver) *rig {
	t.Helper()
	r := &rig{t: t, dir: dir, clock: c, rc: rc}
	var err error
	r.stream, _, err = diskstream.Open(filepath.Join(dir, "stream"), diskstream.Config{Shards: 2, Consumers: Consumers, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Limits{})
	r.lake, err = lake.Open(reg, lake.Config{Dir: filepath.Join(dir, "lake"), ManualFlush: true, Now: c.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.router, err = router.New(reg, r.lake, r.lake, router.Config{Streams: router.StreamNames(reg.Types(), "")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.api = httptest.NewServer(rc.Routes())
	return r
}

func (r *rig) config() Config {
	folder, err := aggregate.New(aggregate.Config{Window: time.Minute})
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := rewardhttp.New(r.api.URL+"/v1/rewards", rewardhttp.Config{})
	if err != nil {
		r.t.Fatal(err)
	}
	return Config{Stream: r.stream, Lake: r.lake, Router: r.router, FlushInterval: time.Hour, Folder: folder,
		Rewarders: []reward.Endpoint{{Model: "thumbnails", Rewarder: c}}, Now: r.clock.Now}
}

// close abandons the rig as a crash would leave it, bar the process.
func (r *rig) close() {
	_ = r.lake.Close(context.Background())
	_ = r.stream.Close()
	r.api.Close()
}

func events(from, n int) []spate.Record {
	var out []spate.Record
	for i := from; i < from+n; i++ {
		typ := []string{"impression", "click", "page_view"}[i%3]
		e := fmt.Sprintf(`{"type":%q,"event_id":"0190a3c4-0000-7000-8000-%012d","received_at":"2026-01-02T03:04:05.000Z","occurred_at":"2026-01-02T03:04:05.000Z","platform":"web","anonymous_id":"a","content_id":"c%d","image_variant":"v","page":"/"}`, typ, i, i%4)
		out = append(out, spate.Record{PartitionKey: fmt.Sprint(i), Data: []byte(e)})
	}
	return out
}

func lakeCounts(t *testing.T, dir string) (rows, distinct int) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "lake", "*", "dt=*", "hour=*", "*.parquet"))
	if len(files) == 0 {
		return 0, 0
	}
	q := fmt.Sprintf(`SELECT count(*), count(DISTINCT event_id) FROM read_parquet('%s', union_by_name = true)`, filepath.Join(dir, "lake", "*", "dt=*", "hour=*", "*.parquet"))
	if err := db.QueryRow(q).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

func stop(t *testing.T, r *rig, p *Pipeline) {
	t.Helper()
	r.stream.Seal()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPipelineDeliversEverythingOnceAndFreesTheStream: records put into the
// stream reach the lake once each and the receiver's totals; after Stop
// both checkpoints are at the heads and the stream holds nothing.
func TestPipelineDeliversEverythingOnceAndFreesTheStream(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	rc := rewarddemo.New(rewarddemo.Config{})
	r := newRig(t, t.TempDir(), c, rc)
	defer r.close()
	p, _, err := Start(context.Background(), r.config())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600; i += 100 {
		if err := r.stream.Put(context.Background(), events(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	stop(t, r, p)
	if rows, ids := lakeCounts(t, r.dir); rows != 600 || ids != 600 {
		t.Errorf("lake: %d rows, %d distinct; want 600", rows, ids)
	}
	var imp, clk int64
	for _, tot := range rc.Totals().Rewards {
		imp += tot.Impressions
		clk += tot.Clicks
	}
	if imp != 200 || clk != 200 {
		t.Errorf("rewards: %d impressions, %d clicks; want 200 each", imp, clk)
	}
	for _, name := range Consumers {
		cps, _ := r.stream.Checkpoints(name)
		for i, cp := range cps {
			if cp != r.stream.Head(i) {
				t.Errorf("%s checkpoint of shard %d: %d, head %d", name, i, cp, r.stream.Head(i))
			}
		}
	}
	if st := r.stream.Stats(); st.Retained != 0 || st.Deleted != 600 {
		t.Errorf("stream after stop: %+v; want everything deleted", st)
	}
	md, _ := filepath.Glob(filepath.Join(r.dir, "lake", "click", "*", "*", "*.parquet"))
	if len(md) != 1 {
		t.Fatalf("click files %v", md)
	}
	meta, err := lake.ReadMetadata(md[0], MetaFlush, MetaRanges)
	if err != nil || meta[MetaFlush] == "" || meta[MetaRanges] == "" {
		t.Errorf("footer metadata %v, %v", meta, err)
	}
}

// TestInterruptedLakeCommitRollsForward: a crash after the intent leaves
// sealed files under temporary names; Start renames them, moves the
// checkpoint, and replays nothing twice.
func TestInterruptedLakeCommitRollsForward(t *testing.T) {
	dir := t.TempDir()
	c := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	rc := rewarddemo.New(rewarddemo.Config{})
	r := newRig(t, dir, c, rc)
	ctx := context.Background()
	if err := r.stream.Put(ctx, events(0, 90)); err != nil {
		t.Fatal(err)
	}
	// What the lake consumer does up to CrashLakeIntent, by hand.
	cps := map[int]uint64{}
	for i := range r.stream.Shards() {
		recs, err := r.stream.Read(ctx, i, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.router.Route(ctx, recs); err != nil {
			t.Fatal(err)
		}
		cps[i] = r.stream.Head(i)
	}
	sealed, err := r.lake.Seal(map[string]string{MetaFlush: "f1"})
	if err != nil || len(sealed) == 0 {
		t.Fatalf("seal: %v, %v", sealed, err)
	}
	in := intent{ID: "f1", Checkpoints: cps}
	for _, f := range sealed {
		in.Files = append(in.Files, intentFile{Tmp: f.Tmp, Final: f.Final})
	}
	raw, _ := json.Marshal(in)
	if err := r.stream.Commit(lakeConsumerName, nil, map[string][]byte{intentKey: raw}, nil); err != nil {
		t.Fatal(err)
	}
	// One file was renamed before the crash, and one file of a later
	// commit was still open.
	if err := os.Rename(sealed[0].Tmp, sealed[0].Final); err != nil {
		t.Fatal(err)
	}
	if err := r.lake.PutBatch(ctx, "click", [][]byte{events(2, 1)[0].Data}); err != nil {
		t.Fatal(err)
	}
	r.close()

	r = newRig(t, dir, c, rc)
	defer r.close()
	p, rec, err := Start(ctx, r.config())
	if err != nil {
		t.Fatal(err)
	}
	if rec.RolledForward != len(sealed) || rec.TempRemoved != 1 || rec.ReplayRecords != 90 {
		t.Errorf("recovery %+v; want %d rolled forward, 1 temporary file removed, 90 to replay (aggregator)", rec, len(sealed))
	}
	cp, _ := r.stream.Checkpoints(lakeConsumerName)
	for i, want := range cps {
		if cp[i] != want {
			t.Errorf("lake checkpoint %d: %d, want %d", i, cp[i], want)
		}
	}
	stop(t, r, p)
	if rows, ids := lakeCounts(t, dir); rows != 90 || ids != 90 {
		t.Errorf("lake: %d rows, %d distinct; want 90", rows, ids)
	}
}

// TestOutboxIsDeliveredAfterARestartWithTheSameKeys: aggregates in the
// outbox when the process died are delivered on start; one delivered but
// not removed is sent again and the receiver drops it by its key.
func TestOutboxIsDeliveredAfterARestartWithTheSameKeys(t *testing.T) {
	dir := t.TempDir()
	c := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	rc := rewarddemo.New(rewarddemo.Config{})
	r := newRig(t, dir, c, rc)
	folder, _ := aggregate.New(aggregate.Config{Window: time.Minute})
	st := aggregate.NewState("local-x/shardId-000000000000", aggregate.WindowOf(c.Now(), time.Minute))
	for i := range 3 {
		folder.Fold(st, []spate.Record{{SequenceNumber: fmt.Sprintf("%021d", i+1), ArrivedAt: c.Now(),
			Data: []byte(`{"type":"impression","content_id":"c","image_variant":"v","platform":"web"}`)}})
	}
	a := folder.Close(st, false)[0]
	b, _ := a.MarshalJSON()
	if err := r.stream.Commit(aggConsumerName, nil, map[string][]byte{outboxPrefix + "00000000000000000007": b}, nil); err != nil {
		t.Fatal(err)
	}
	// Delivered before the crash, not yet removed.
	cl, _ := rewardhttp.New(r.api.URL+"/v1/rewards", rewardhttp.Config{})
	if err := cl.Reward(context.Background(), reward.IdempotencyKey(a.ID, "thumbnails"), reward.NewRequest("thumbnails", a)); err != nil {
		t.Fatal(err)
	}
	r.close()

	r = newRig(t, dir, c, rc)
	defer r.close()
	p, rec, err := Start(context.Background(), r.config())
	if err != nil {
		t.Fatal(err)
	}
	if rec.OutboxPending != 1 {
		t.Errorf("outbox pending %d, want 1", rec.OutboxPending)
	}
	stop(t, r, p)
	tot := rc.Totals()
	if tot.Duplicates != 1 || len(tot.Rewards) != 1 || tot.Rewards[0].Impressions != 3 {
		t.Errorf("receiver totals %+v; want 3 impressions counted once, one duplicate", tot)
	}
	if st, _ := r.stream.State(aggConsumerName); len(st) != 0 {
		t.Errorf("outbox after stop: %d entries", len(st))
	}
}

// TestWindowsCloseByLaterRecordsAndByTheClock: a record of a later window
// closes a shard's open window at once; the clock closes the last one; each
// close moves the aggregator's checkpoint past exactly the window's
// records.
func TestWindowsCloseByLaterRecordsAndByTheClock(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	rc := rewarddemo.New(rewarddemo.Config{})
	r := newRig(t, t.TempDir(), c, rc)
	defer r.close()
	cfg := r.config()
	cfg.defaults()
	ac, err := newAggConsumer(cfg, &Recovery{})
	if err != nil {
		t.Fatal(err)
	}
	sh := ac.shards[0]
	rec := func(seq uint64, at time.Time, typ string) spate.Record {
		return spate.Record{ShardID: sh.id, SequenceNumber: fmt.Sprintf("%021d", seq), ArrivedAt: at,
			Data: fmt.Appendf(nil, `{"type":%q,"content_id":"c","image_variant":"v","platform":"web"}`, typ)}
	}
	t0 := c.Now()
	if err := ac.fold(sh, []spate.Record{rec(1, t0, "impression"), rec(2, t0, "click")}); err != nil {
		t.Fatal(err)
	}
	if sh.cp != 0 || ac.outboxLen() != 0 {
		t.Fatalf("checkpoint %d, outbox %d before any close", sh.cp, ac.outboxLen())
	}
	if err := ac.fold(sh, []spate.Record{rec(3, t0.Add(time.Minute), "impression")}); err != nil {
		t.Fatal(err)
	}
	if sh.cp != 2 || ac.outboxLen() != 1 {
		t.Errorf("after a later window's record: checkpoint %d, outbox %d; want 2, 1", sh.cp, ac.outboxLen())
	}
	sh.mu.Lock()
	err = ac.closeLocked(sh, t0.Add(2*time.Minute))
	sh.mu.Unlock()
	if err != nil || sh.cp != 3 || ac.outboxLen() != 2 {
		t.Errorf("after the clock: checkpoint %d, outbox %d, %v; want 3, 2", sh.cp, ac.outboxLen(), err)
	}
	if n, err := ac.deliverOutbox(context.Background()); err != nil || n != 0 {
		t.Fatalf("deliver: %d left, %v", n, err)
	}
	tot := rc.Totals()
	if len(tot.Rewards) != 1 || tot.Rewards[0].Impressions != 2 || tot.Rewards[0].Clicks != 1 {
		t.Errorf("totals %+v", tot)
	}
}

// TestRewardMaxAgeReadsTheLocalClock: the sender measures an aggregate's
// age with local mode's clock, not the machine's: a young aggregate stays
// in the outbox while the API is down, an old one is given up on.
func TestRewardMaxAgeReadsTheLocalClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		age     time.Duration
		expired bool
	}{{"young window is kept", 2 * time.Minute, false}, {"old window is given up on", 3 * time.Hour, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: t0}
			r := newRig(t, t.TempDir(), c, rewarddemo.New(rewarddemo.Config{}))
			defer r.close()
			r.api.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "down", http.StatusServiceUnavailable)
			})
			cfg := r.config()
			cfg.Sender = reward.Config{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxElapsed: 20 * time.Millisecond}
			cfg.defaults()
			ac, err := newAggConsumer(cfg, &Recovery{})
			if err != nil {
				t.Fatal(err)
			}
			sh := ac.shards[0]
			if err := ac.fold(sh, []spate.Record{{ShardID: sh.id, SequenceNumber: fmt.Sprintf("%021d", 1), ArrivedAt: t0,
				Data: []byte(`{"type":"impression","content_id":"c","image_variant":"v","platform":"web"}`)}}); err != nil {
				t.Fatal(err)
			}
			c.Add(tc.age)
			sh.mu.Lock()
			err = ac.closeLocked(sh, c.Now())
			sh.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			left, err := ac.deliverOutbox(ctx)
			st := ac.sender.Stats()
			if tc.expired && (err != nil || left != 0 || st.Expired != 1) {
				t.Errorf("old aggregate: %d left, %v, %+v; want it expired", left, err, st)
			}
			if !tc.expired && (err == nil || left != 1 || st.Expired != 0) {
				t.Errorf("young aggregate: %d left, %v, %+v; want it kept for the next try", left, err, st)
			}
		})
	}
}
