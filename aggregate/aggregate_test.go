package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// ev returns the canonical JSON of an event of typ.
func ev(typ, content, variant, platform string) []byte {
	e := spate.Event{
		Type: typ, EventID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", OccurredAt: t0, ReceivedAt: t0,
		UserID: "u1", SessionID: "s1", Platform: platform,
	}
	if content != "" {
		e.Set(spate.Str("content_id", content))
	}
	if variant != "" {
		e.Set(spate.Str("image_variant", variant))
	}
	if typ == "page_view" {
		e.Set(spate.Str("page", "/"))
	}
	return e.AppendJSON(nil)
}

// recs builds records on one shard with consecutive sequence numbers.
type recs struct {
	shard string
	seq   int
	out   []spate.Record
}

func (r *recs) add(at time.Time, data []byte) *recs {
	r.out = append(r.out, spate.Record{
		PartitionKey: "s1", Data: data, ShardID: r.shard,
		SequenceNumber: fmt.Sprintf("%021d", r.seq), ArrivedAt: at,
	})
	r.seq++
	return r
}

func (r *recs) take() []spate.Record {
	out := r.out
	r.out = nil
	return out
}

func mustFolder(t testing.TB, cfg Config) *Folder {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// totals sums aggregates per window start and key.
func totals(aggs []Aggregate) map[string]Counts {
	out := make(map[string]Counts)
	for _, a := range aggs {
		for _, r := range a.Rows {
			k := fmt.Sprintf("%s %s/%s/%s", a.Window.Start.Format("15:04:05"), r.ContentID, r.ImageVariant, r.Platform)
			c := out[k]
			c.Impressions += r.Impressions
			c.Clicks += r.Clicks
			c.PlayStarts += r.PlayStarts
			out[k] = c
		}
	}
	return out
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"15 minutes", Config{Window: 15 * time.Minute}, true},
		{"over 15 minutes", Config{Window: 901 * time.Second}, false},
		{"sub-second", Config{Window: time.Millisecond}, false},
		{"negative", Config{Window: -time.Second}, false},
		{"state over 1 MB", Config{StateBytes: 1_000_001}, false},
		{"state tiny", Config{StateBytes: 100}, false},
		{"chunk over record limit", Config{ChunkBytes: 1 << 20}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New(%+v) err = %v, want ok=%v", tt.cfg, err, tt.ok)
			}
			if tt.ok && f.Config().Window == 0 {
				t.Error("default window not applied")
			}
		})
	}
}

func TestFoldCountsOnlyVariantEvents(t *testing.T) {
	f := mustFolder(t, Config{})
	r := &recs{shard: "shardId-000000000000"}
	at := t0.Add(time.Second)
	r.add(at, ev("impression", "c1", "a", "web")).
		add(at, ev("impression", "c1", "a", "web")).
		add(at, ev("click", "c1", "a", "web")).
		add(at, ev("play_start", "c1", "a", "web")).
		add(at, ev("impression", "c1", "b", "tv")).
		add(at, ev("click", "c2", "", "web")).          // no variant: ignored
		add(at, ev("play_progress", "c1", "a", "web")). // other type
		add(at, ev("page_view", "", "", "web")).
		add(at, []byte(`{not json`))
	st := NewState("src", WindowOf(at, time.Minute))
	if got := f.Fold(st, r.take()); got != nil {
		t.Fatalf("Fold emitted %d aggregates under budget", len(got))
	}
	if got, want := st.Get(Key{"c1", "a", "web"}), (Counts{2, 1, 1}); got != want {
		t.Errorf("c1/a/web = %+v, want %+v", got, want)
	}
	if got, want := st.Get(Key{"c1", "b", "tv"}), (Counts{Impressions: 1}); got != want {
		t.Errorf("c1/b/tv = %+v, want %+v", got, want)
	}
	if st.Rows() != 2 {
		t.Errorf("rows = %d, want 2", st.Rows())
	}
	want := Stats{Records: 9, Counted: 5, Ignored: 3, Malformed: 1}
	if got := f.Stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	aggs := f.Close(st, false)
	if len(aggs) != 1 || aggs[0].Partial || aggs[0].Chunks != 1 {
		t.Fatalf("Close = %+v, want one complete aggregate", aggs)
	}
	a := aggs[0]
	if a.FirstSequence != fmt.Sprintf("%021d", 0) || a.LastSequence != fmt.Sprintf("%021d", 8) {
		t.Errorf("sequence range %s..%s", a.FirstSequence, a.LastSequence)
	}
	if a.Rows[0].ImageVariant != "a" || a.Rows[1].ImageVariant != "b" {
		t.Errorf("rows not sorted: %+v", a.Rows)
	}
}

func TestCloseOfIgnoredOnlyStateEmitsNothing(t *testing.T) {
	f := mustFolder(t, Config{})
	r := &recs{shard: "s"}
	st := NewState("src", WindowOf(t0, time.Minute))
	f.Fold(st, r.add(t0, ev("page_view", "", "", "web")).take())
	if st.Empty() {
		t.Fatal("state with a folded record reports empty")
	}
	if got := f.Close(st, false); len(got) != 0 {
		t.Errorf("Close = %+v, want nothing", got)
	}
}

func TestTumblerExactCountsAcrossWindowBoundaries(t *testing.T) {
	f := mustFolder(t, Config{Window: time.Minute})
	tu := NewTumbler(f, "run1", 2*time.Second)
	a := &recs{shard: "shardId-000000000000"}
	b := &recs{shard: "shardId-000000000001"}

	// Window 12:00: 3 impressions + 1 click on shard a, 2 impressions on b,
	// the last ones a nanosecond before the boundary.
	end := t0.Add(time.Minute)
	a.add(t0, ev("impression", "c1", "a", "web")).
		add(t0.Add(30*time.Second), ev("impression", "c1", "a", "web")).
		add(end.Add(-time.Nanosecond), ev("impression", "c1", "a", "web")).
		add(end.Add(-time.Nanosecond), ev("click", "c1", "a", "web"))
	b.add(t0.Add(time.Second), ev("impression", "c1", "a", "web")).
		add(t0.Add(59*time.Second), ev("impression", "c1", "a", "web"))
	// Window 12:01: exactly on the boundary belongs to the next window.
	a.add(end, ev("impression", "c1", "a", "web")).
		add(end, ev("play_start", "c1", "a", "web"))
	b.add(end.Add(59*time.Second), ev("click", "c1", "a", "web"))
	// Window 12:02.
	a.add(end.Add(time.Minute), ev("impression", "c2", "x", "tv"))

	tu.Add(a.take())
	tu.Add(b.take())
	if got := tu.Open(); got != 5 {
		t.Fatalf("open windows = %d, want 5 (2 shards × 2 windows + 1)", got)
	}

	// Before end+grace nothing closes.
	if got := tu.CloseDue(end.Add(time.Second)); len(got) != 0 {
		t.Fatalf("CloseDue before grace emitted %+v", got)
	}
	first := tu.CloseDue(end.Add(2 * time.Second))
	if len(first) != 2 {
		t.Fatalf("first close = %d aggregates, want 2 (one per shard)", len(first))
	}
	for _, agg := range first {
		if !agg.Window.Start.Equal(t0) || !agg.Window.End.Equal(end) || agg.Partial {
			t.Errorf("aggregate %+v: want complete window 12:00", agg)
		}
		if !strings.HasPrefix(agg.Source, "run1/shardId-") {
			t.Errorf("source %q", agg.Source)
		}
	}
	rest := tu.CloseDue(end.Add(2*time.Minute + 2*time.Second))
	if tu.Open() != 0 {
		t.Fatalf("%d windows still open", tu.Open())
	}
	got := totals(append(first, rest...))
	want := map[string]Counts{
		"12:00:00 c1/a/web": {Impressions: 5, Clicks: 1},
		"12:01:00 c1/a/web": {Impressions: 1, Clicks: 1, PlayStarts: 1},
		"12:02:00 c2/x/tv":  {Impressions: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals\n got %v\nwant %v", got, want)
	}
	ids := make(map[string]bool)
	for _, agg := range append(first, rest...) {
		if ids[agg.ID] {
			t.Errorf("duplicate aggregate id %s", agg.ID)
		}
		ids[agg.ID] = true
	}
}

func TestTumblerLateRecordsMakeAnotherPartial(t *testing.T) {
	f := mustFolder(t, Config{Window: time.Minute})
	tu := NewTumbler(f, "run1", 0)
	r := &recs{shard: "shardId-000000000000"}
	tu.Add(r.add(t0.Add(10*time.Second), ev("impression", "c1", "a", "web")).take())
	first := tu.CloseDue(t0.Add(time.Minute))
	// A record stamped inside the closed window, delivered after it closed.
	tu.Add(r.add(t0.Add(59*time.Second), ev("click", "c1", "a", "web")).take())
	late := tu.CloseDue(t0.Add(time.Minute))
	if len(first) != 1 || len(late) != 1 {
		t.Fatalf("got %d then %d aggregates, want 1 and 1", len(first), len(late))
	}
	if first[0].Partial || !late[0].Partial {
		t.Errorf("partial flags: first %v late %v, want false true", first[0].Partial, late[0].Partial)
	}
	if first[0].ID == late[0].ID {
		t.Error("late partial reuses the first aggregate's id")
	}
	got := totals(append(first, late...))["12:00:00 c1/a/web"]
	if want := (Counts{Impressions: 1, Clicks: 1}); got != want {
		t.Errorf("totals %+v, want %+v", got, want)
	}
}

func TestTumblerFlushEmitsRunningWindowsAsPartial(t *testing.T) {
	f := mustFolder(t, Config{Window: time.Minute})
	tu := NewTumbler(f, "run1", time.Second)
	r := &recs{shard: "shardId-000000000000"}
	tu.Add(r.add(t0, ev("impression", "c1", "a", "web")).
		add(t0.Add(time.Minute), ev("impression", "c1", "a", "web")).take())
	got := tu.Flush(t0.Add(time.Minute + time.Second))
	if len(got) != 2 {
		t.Fatalf("Flush = %d aggregates, want 2", len(got))
	}
	if got[0].Partial || !got[1].Partial {
		t.Errorf("partial flags %v %v, want ended window complete and running one partial", got[0].Partial, got[1].Partial)
	}
	if tu.Open() != 0 {
		t.Error("windows left open after Flush")
	}
}

func TestEarlyCloseIsPartialAndAdditive(t *testing.T) {
	// Lambda's early termination: the state so far is emitted, and the same
	// window continues with a fresh state.
	f := mustFolder(t, Config{})
	r := &recs{shard: "shardId-000000000000"}
	w := WindowOf(t0, time.Minute)
	st := NewState("src", w)
	f.Fold(st, r.add(t0, ev("impression", "c1", "a", "web")).add(t0, ev("click", "c1", "a", "web")).take())
	early := f.Close(st, true)
	st2 := NewState("src", w)
	f.Fold(st2, r.add(t0, ev("impression", "c1", "a", "web")).take())
	final := f.Close(st2, false)
	if len(early) != 1 || !early[0].Partial || len(final) != 1 {
		t.Fatalf("early %+v final %+v", early, final)
	}
	if early[0].ID == final[0].ID {
		t.Error("early and final aggregates share an id")
	}
	if got, want := totals(append(early, final...))["12:00:00 c1/a/web"], (Counts{Impressions: 2, Clicks: 1}); got != want {
		t.Errorf("totals %+v, want %+v", got, want)
	}
}

func TestAggregateIDsAreStableAcrossRefolds(t *testing.T) {
	fold := func(batches ...int) []Aggregate {
		f := mustFolder(t, Config{StateBytes: MinStateBytes})
		r := &recs{shard: "shardId-000000000000"}
		for i := range 600 {
			r.add(t0, ev("impression", fmt.Sprintf("content-%04d", i), "variant", "web"))
		}
		all := r.take()
		st := NewState("src", WindowOf(t0, time.Minute))
		var out []Aggregate
		// Different batch boundaries, as retries and bisection produce.
		for len(all) > 0 {
			n := min(batches[0], len(all))
			batches = append(batches[1:], batches[0])
			out = append(out, f.Fold(st, all[:n])...)
			all = all[n:]
		}
		return append(out, f.Close(st, false)...)
	}
	a, b := fold(100), fold(7, 250, 1)
	if len(a) < 2 {
		t.Fatalf("want budget emissions, got %d aggregates", len(a))
	}
	if len(a) != len(b) {
		t.Fatalf("%d vs %d aggregates", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || len(a[i].Rows) != len(b[i].Rows) {
			t.Errorf("aggregate %d differs: %s/%d vs %s/%d", i, a[i].ID, len(a[i].Rows), b[i].ID, len(b[i].Rows))
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	f := mustFolder(t, Config{})
	r := &recs{shard: "shardId-000000000000"}
	// Keys with the separator, the escape, JSON and HTML specials.
	contents := []string{"c1", "a|b", "100%", "%7C", "quote\"back\\slash", "<tag>&", "ünïcode", "tab\tnl\n"}
	for i, c := range contents {
		for range i + 1 {
			r.add(t0, ev("impression", c, "v|1", "web"))
		}
		r.add(t0, ev("click", c, "v2", ""))
	}
	st := NewState("arn:aws:kinesis:eu-west-1:1:stream/events/shardId-000000000000", WindowOf(t0, time.Minute))
	f.Fold(st, r.take())

	enc := st.Encode()
	raw, err := json.Marshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < len(raw) {
		t.Errorf("Size() = %d under the encoded %d bytes", st.Size(), len(raw))
	}
	// Through JSON, as Lambda carries it.
	var back map[string]string
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeState(back)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != st.Source || got.Window != st.Window || got.first != st.first || got.last != st.last || got.records != st.records {
		t.Errorf("meta differs: %+v vs %+v", got, st)
	}
	if got.size != st.size {
		t.Errorf("size %d after decode, %d before", got.size, st.size)
	}
	for i, c := range contents {
		k := Key{c, "v|1", "web"}
		if got.Get(k) != (Counts{Impressions: int64(i + 1)}) || got.Get(Key{c, "v2", ""}) != (Counts{Clicks: 1}) {
			t.Errorf("%q: %+v %+v", c, got.Get(k), got.Get(Key{c, "v2", ""}))
		}
	}
	// Continuing from the decoded state gives what continuing in memory gives.
	more := r.add(t0, ev("impression", "c1", "v|1", "web")).take()
	f.Fold(st, more)
	f.Fold(got, more)
	x, y := f.Close(st, false), f.Close(got, false)
	xj, _ := json.Marshal(x)
	yj, _ := json.Marshal(y)
	if string(xj) != string(yj) {
		t.Errorf("aggregates differ after round trip\n%s\n%s", xj, yj)
	}
}

func TestDecodeStateEmptyAndInvalid(t *testing.T) {
	if st, err := DecodeState(nil); st != nil || err != nil {
		t.Errorf("DecodeState(nil) = %v, %v", st, err)
	}
	if st, err := DecodeState(map[string]string{}); st != nil || err != nil {
		t.Errorf("DecodeState({}) = %v, %v", st, err)
	}
	if enc := NewState("s", WindowOf(t0, time.Minute)).Encode(); enc == nil || len(enc) != 0 {
		t.Errorf("empty state encodes as %v, want empty non-nil map", enc)
	}
	goodMeta := `{"v":1,"source":"s","start":"2026-11-27T12:00:00Z","end":"2026-11-27T12:01:00Z","records":1}`
	tests := []struct {
		name string
		m    map[string]string
	}{
		{"no meta", map[string]string{"c|v|web": "1,0,0"}},
		{"meta not json", map[string]string{"~": "{"}},
		{"wrong version", map[string]string{"~": `{"v":2,"start":"2026-11-27T12:00:00Z","end":"2026-11-27T12:01:00Z","records":1}`}},
		{"window backwards", map[string]string{"~": `{"v":1,"start":"2026-11-27T12:01:00Z","end":"2026-11-27T12:00:00Z","records":1}`}},
		{"no records", map[string]string{"~": `{"v":1,"start":"2026-11-27T12:00:00Z","end":"2026-11-27T12:01:00Z","records":0}`}},
		{"two fields", map[string]string{"~": goodMeta, "c|v": "1,0,0"}},
		{"empty variant", map[string]string{"~": goodMeta, "c||web": "1,0,0"}},
		{"bad escape", map[string]string{"~": goodMeta, "c%41|v|web": "1,0,0"}},
		{"negative", map[string]string{"~": goodMeta, "c|v|web": "-1,0,0"}},
		{"not canonical number", map[string]string{"~": goodMeta, "c|v|web": "01,0,0"}},
		{"two counts", map[string]string{"~": goodMeta, "c|v|web": "1,0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeState(tt.m); !errors.Is(err, spate.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestManyKeysStayUnderStateBudget(t *testing.T) {
	f := mustFolder(t, Config{})
	r := &recs{shard: "shardId-000000000000"}
	st := NewState("arn:aws:kinesis:eu-west-1:123456789012:stream/events/shardId-000000000000", WindowOf(t0, time.Minute))
	const keys = 40_000
	var emitted []Aggregate
	for i := range keys {
		// Long ids with characters JSON escapes, to make the bound work.
		c := fmt.Sprintf("content-<%06d>-%s", i, strings.Repeat("x", 16))
		r.add(t0, ev("impression", c, "variant-a", "web")).add(t0, ev("click", c, "variant-a", "web"))
		if i%1000 == 999 {
			emitted = append(emitted, f.Fold(st, r.take())...)
			raw, _ := json.Marshal(st.Encode())
			if len(raw) > DefaultStateBytes || len(raw) > st.Size() {
				t.Fatalf("after %d keys: encoded state %d bytes, Size %d, budget %d", i+1, len(raw), st.Size(), DefaultStateBytes)
			}
		}
	}
	budgetEmissions := f.Stats().Budget
	if budgetEmissions == 0 {
		t.Fatalf("no budget emission for %d keys", keys)
	}
	emitted = append(emitted, f.Close(st, false)...)
	var imps, clicks int64
	ids := make(map[string]bool)
	for _, a := range emitted {
		raw, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > DefaultChunkBytes {
			t.Errorf("aggregate chunk of %d bytes over %d", len(raw), DefaultChunkBytes)
		}
		if ids[a.ID] {
			t.Errorf("duplicate id %s", a.ID)
		}
		ids[a.ID] = true
		for _, row := range a.Rows {
			imps += row.Impressions
			clicks += row.Clicks
		}
	}
	if imps != keys || clicks != keys {
		t.Errorf("emitted %d impressions, %d clicks; want %d each", imps, clicks, keys)
	}
	t.Logf("%d keys: %d budget emissions, %d aggregate records", keys, budgetEmissions, len(emitted))
}

func TestAggregateJSONRoundTrip(t *testing.T) {
	f := mustFolder(t, Config{})
	r := &recs{shard: "shardId-000000000000"}
	st := NewState("src", WindowOf(t0, time.Minute))
	f.Fold(st, r.add(t0, ev("impression", "c1", "a", "web")).add(t0, ev("click", "c1", "a", "web")).take())
	a := f.Close(st, false)[0]
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"` + a.ID + `","source":"src","window_start":"2026-11-27T12:00:00.000Z","window_end":"2026-11-27T12:01:00.000Z",` +
		`"first_sequence":"000000000000000000000","last_sequence":"000000000000000000001","chunk":0,"chunks":1,` +
		`"rows":[{"content_id":"c1","image_variant":"a","platform":"web","impressions":1,"clicks":1,"play_starts":0}]}`
	if string(raw) != want {
		t.Errorf("json\n got %s\nwant %s", raw, want)
	}
	back, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw2, _ := json.Marshal(back)
	if string(raw2) != string(raw) {
		t.Errorf("round trip\n got %s\nwant %s", raw2, raw)
	}
}

func TestDecodeMinimalAndInvalid(t *testing.T) {
	// What another engine (a Flink job) needs to write.
	minimal := `{"id":"x","window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z","rows":[{"content_id":"c","image_variant":"v","impressions":3,"clicks":1,"play_starts":0}],"extra":true}`
	a, err := Decode([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if a.Chunks != 1 || a.Rows[0].Impressions != 3 {
		t.Errorf("decoded %+v", a)
	}
	tests := []struct{ name, in string }{
		{"not json", `{`},
		{"no id", `{"window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z","rows":[]}`},
		{"bad start", `{"id":"x","window_start":"noon","window_end":"2026-11-27T12:01:00Z","rows":[]}`},
		{"year below 0000 in UTC", `{"id":"x","window_start":"0000-01-01T00:00:00+01:00","window_end":"2026-11-27T12:01:00Z","rows":[]}`},
		{"end before start", `{"id":"x","window_start":"2026-11-27T12:01:00Z","window_end":"2026-11-27T12:00:00Z","rows":[]}`},
		{"chunk out of range", `{"id":"x","window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z","chunk":2,"chunks":2,"rows":[]}`},
		{"negative count", `{"id":"x","window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z","rows":[{"content_id":"c","image_variant":"v","clicks":-1}]}`},
		{"no variant", `{"id":"x","window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z","rows":[{"content_id":"c"}]}`},
		{"count not integer", `{"id":"x","window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z","rows":[{"content_id":"c","image_variant":"v","clicks":1.5}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode([]byte(tt.in)); !errors.Is(err, spate.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"x","window_start":"2026-11-27T12:00:00Z","window_end":"2026-11-27T12:01:00Z","rows":[{"content_id":"c","image_variant":"v","impressions":3}]}`))
	f.Add([]byte(`{"id":"x","source":"s","window_start":"2026-11-27T12:00:00.000Z","window_end":"2026-11-27T12:01:00.000Z","chunk":1,"chunks":2,"rows":[]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":"x","window_start":"0000-01-01T00:00:00+01:00","window_end":"9999-12-31T23:59:59-01:00","rows":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Decode(data)
		if err != nil {
			return
		}
		raw, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("marshal decoded aggregate: %v", err)
		}
		b, err := Decode(raw)
		if err != nil {
			t.Fatalf("re-decode %s: %v", raw, err)
		}
		raw2, _ := json.Marshal(b)
		if string(raw) != string(raw2) {
			t.Fatalf("unstable round trip\n%s\n%s", raw, raw2)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	meta := `{"v":1,"source":"s","start":"2026-11-27T12:00:00Z","end":"2026-11-27T12:01:00Z","records":3}`
	f.Add(meta, "c|v|web", "1,2,0", "a%7Cb|v|", "0,0,1")
	f.Add(meta, "c|v|web", "1,2", "x", "y")
	f.Add("{", "", "", "", "")
	f.Fuzz(func(t *testing.T, m, k1, v1, k2, v2 string) {
		in := map[string]string{"~": m, k1: v1, k2: v2}
		st, err := DecodeState(in)
		if err != nil || st == nil {
			return
		}
		enc := st.Encode()
		raw, _ := json.Marshal(enc)
		if st.Size() < len(raw) {
			t.Fatalf("Size %d under encoded %d", st.Size(), len(raw))
		}
		back, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if back.Rows() != st.Rows() || back.size != st.size || back.records != st.records {
			t.Fatalf("round trip differs: %+v vs %+v", back, st)
		}
		for k := range st.rows {
			if back.Get(k) != st.Get(k) {
				t.Fatalf("row %+v differs", k)
			}
		}
	})
}

// benchEvents is a realistic mix: the six types weighted toward
// play_progress and impression, distinct event and session ids, 2,000
// contents × 3 variants × 4 platforms.
func benchEvents(n int) ([]spate.Record, int) {
	types := []string{"impression", "impression", "impression", "play_progress", "play_progress", "play_progress",
		"click", "play_start", "page_view", "play_end"}
	platforms := []string{"web", "ios", "android", "tv"}
	recs := make([]spate.Record, n)
	size := 0
	for i := range recs {
		ms := int64(i * 1000)
		e := spate.Event{
			Type: types[i%len(types)], EventID: fmt.Sprintf("6ba7b810-9dad-11d1-%04x-%012x", i%65536, i*7919),
			OccurredAt: t0, ReceivedAt: t0, AnonymousID: fmt.Sprintf("anon-%016x", i*104729), SessionID: fmt.Sprintf("sess-%016x", i/20),
			Platform: platforms[i%4], AppVersion: "5.12.0",
		}
		switch e.Type {
		case "page_view":
			e.Set(spate.Str("page", "/ohjelmat"))
		default:
			e.Set(spate.Str("content_id", fmt.Sprintf("1-%d", i%2000)))
			e.Set(spate.Str("image_variant", fmt.Sprintf("hero_%d", i%3)))
		}
		switch e.Type {
		case "play_progress", "play_end":
			e.Set(spate.Int("position_ms", ms))
		}
		recs[i] = spate.Record{PartitionKey: e.SessionID, Data: e.AppendJSON(nil), ShardID: "shardId-000000000000",
			SequenceNumber: fmt.Sprintf("%021d", i), ArrivedAt: t0}
		size += len(recs[i].Data)
	}
	return recs, size / n
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFold folds Lambda-sized batches of 100 records into one
// window's state and reports events per CPU-second.
func BenchmarkFold(b *testing.B) {
	f := mustFolder(b, Config{})
	recs, avg := benchEvents(10_000)
	b.SetBytes(int64(avg))
	b.ReportAllocs()
	st := NewState("arn:aws:kinesis:eu-north-1:123456789012:stream/spate-events/shardId-000000000000", WindowOf(t0, time.Minute))
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for done, i := 0, 0; done < b.N; i++ {
		n := min(100, b.N-done)
		off := (i * 100) % len(recs)
		f.Fold(st, recs[off:off+n])
		done += n
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(avg), "B/event")
}

// BenchmarkStateRoundTrip is what every Lambda invocation pays besides the
// fold: decode the state it is handed, encode the one it returns. The
// state holds 5,000 rows (about 180 KB); ns/op is per invocation.
func BenchmarkStateRoundTrip(b *testing.B) {
	f := mustFolder(b, Config{})
	st := NewState("arn:aws:kinesis:eu-north-1:123456789012:stream/spate-events/shardId-000000000000", WindowOf(t0, time.Minute))
	r := &recs{shard: "shardId-000000000000"}
	for i := range 5000 {
		r.add(t0, ev("impression", fmt.Sprintf("1-%d", i/3), fmt.Sprintf("hero_%d", i%3), "web"))
	}
	f.Fold(st, r.take())
	enc := st.Encode()
	raw, _ := json.Marshal(enc)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := DecodeState(enc)
		if err != nil {
			b.Fatal(err)
		}
		enc = got.Encode()
	}
	b.ReportMetric(float64(len(raw)), "state-B")
}
