package router_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// dest is a func-field Destination that records every call.
type dest struct {
	put   func(call int, stream string, records [][]byte) error
	mu    sync.Mutex
	calls []call
}

type call struct {
	stream  string
	records [][]byte
}

func (d *dest) PutBatch(ctx context.Context, stream string, records [][]byte) error {
	d.mu.Lock()
	n := len(d.calls)
	d.calls = append(d.calls, call{stream, slices.Clone(records)})
	d.mu.Unlock()
	if d.put == nil {
		return nil
	}
	return d.put(n, stream, records)
}

// accepted returns the events each stream accepted, given which calls'
// records failed.
func (d *dest) events(ok func(c call, j int) bool) map[string][]string {
	out := map[string][]string{}
	for _, c := range d.calls {
		for j, rec := range c.records {
			if ok != nil && !ok(c, j) {
				continue
			}
			if len(rec) == 0 || rec[len(rec)-1] != '\n' {
				panic(fmt.Sprintf("record not newline-terminated: %q", rec))
			}
			for _, line := range strings.Split(strings.TrimSuffix(string(rec), "\n"), "\n") {
				out[c.stream] = append(out[c.stream], line)
			}
		}
	}
	return out
}

type deadLetter struct {
	put     func(recs []spate.Record, reason string) error
	mu      sync.Mutex
	reasons map[string][]string
}

func (d *deadLetter) PutReason(ctx context.Context, recs []spate.Record, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reasons == nil {
		d.reasons = map[string][]string{}
	}
	for _, r := range recs {
		d.reasons[reason] = append(d.reasons[reason], string(r.Data))
	}
	if d.put != nil {
		return d.put(recs, reason)
	}
	return nil
}

// events returns n canonical events cycling through every type, each with
// a distinct event_id, as stream records.
func events(n int) []spate.Record {
	types := registry.New(registry.Limits{}).Types()
	recs := make([]spate.Record, n)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range recs {
		pos := int64(i)
		e := &spate.Event{Type: types[i%len(types)], EventID: fmt.Sprintf("0190a3c4-0000-7000-8000-%012d", i),
			OccurredAt: at, ReceivedAt: at, SessionID: fmt.Sprintf("s%d", i%7), UserID: "u", Platform: "web", Props: []spate.Prop{spate.Str("content_id", "c"), spate.Int("position_ms", pos)}}
		recs[i] = spate.Record{PartitionKey: e.PartitionKey(), Data: e.AppendJSON(nil), ShardID: "shardId-000000000000",
			SequenceNumber: fmt.Sprintf("%021d", i), ArrivedAt: at}
	}
	return recs
}

func newRouter(t *testing.T, d router.Destination, dl router.DeadLetter, cfg router.Config) *router.Router {
	t.Helper()
	reg := registry.New(registry.Limits{})
	if cfg.Streams == nil {
		cfg.Streams = router.StreamNames(reg.Types(), "spate-")
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Millisecond
	}
	r, err := router.New(reg, d, dl, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantByStream is which events of recs belong on which stream.
func wantByStream(recs []spate.Record) map[string][]string {
	out := map[string][]string{}
	for _, r := range recs {
		typ := strings.SplitN(strings.TrimPrefix(string(r.Data), `{"type":"`), `"`, 2)[0]
		out["spate-"+typ] = append(out["spate-"+typ], string(r.Data))
	}
	return out
}

func sameEvents(t *testing.T, got, want map[string][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("streams = %d, want %d", len(got), len(want))
	}
	for s, w := range want {
		g := slices.Clone(got[s])
		w = slices.Clone(w)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Errorf("stream %s: got %d events, want %d (or different ones)", s, len(g), len(w))
		}
	}
}

func TestRoutePacksEachTypeToItsStream(t *testing.T) {
	d := &dest{}
	r := newRouter(t, d, &deadLetter{}, router.Config{})
	recs := events(600)
	if err := r.Route(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, d.events(nil), wantByStream(recs))
	// 600 small events of 6 types fit in one record per type.
	if len(d.calls) != 6 {
		t.Errorf("calls = %d, want one per type", len(d.calls))
	}
	for _, c := range d.calls {
		if len(c.records) != 1 {
			t.Errorf("%s: %d records, want 1 packed record", c.stream, len(c.records))
		}
	}
	st := r.Stats()
	if st.Records != 600 || st.Routed != 600 || st.Failed != 0 || st.PutRecords != 6 {
		t.Errorf("stats = %+v", st)
	}
	if st.BilledBytes >= st.UnpackedBilledBytes || st.UnpackedBilledBytes != 600*router.BillingUnit {
		t.Errorf("billed %d packed vs %d unpacked; want packing to save", st.BilledBytes, st.UnpackedBilledBytes)
	}
}

func TestRouteRespectsLimits(t *testing.T) {
	recs := events(3000)
	longest := 0
	for _, r := range recs {
		longest = max(longest, len(r.Data)+1)
	}
	cfg := router.Config{MaxRecordBytes: 4 * longest, MaxBatchRecords: 7, MaxBatchBytes: 20 * longest}
	for _, noPacking := range []bool{false, true} {
		t.Run(fmt.Sprintf("noPacking=%v", noPacking), func(t *testing.T) {
			d := &dest{}
			cfg.NoPacking = noPacking
			r := newRouter(t, d, &deadLetter{}, cfg)
			if err := r.Route(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			sameEvents(t, d.events(nil), wantByStream(recs))
			for _, c := range d.calls {
				if len(c.records) > cfg.MaxBatchRecords {
					t.Fatalf("call with %d records > %d", len(c.records), cfg.MaxBatchRecords)
				}
				size := 0
				for _, rec := range c.records {
					size += len(rec)
					if len(rec) > cfg.MaxRecordBytes {
						t.Fatalf("record of %d bytes > %d", len(rec), cfg.MaxRecordBytes)
					}
					if n := bytes.Count(rec, []byte("\n")); noPacking && n != 1 {
						t.Fatalf("unpacked record holds %d events", n)
					}
				}
				if size > cfg.MaxBatchBytes {
					t.Fatalf("call of %d bytes > %d", size, cfg.MaxBatchBytes)
				}
			}
		})
	}
}

func TestRouteRetriesOnlyFailedRecords(t *testing.T) {
	recs := events(60)
	var clickCalls atomic.Int32
	d := &dest{put: func(call int, stream string, records [][]byte) error {
		if stream != "spate-click" || clickCalls.Add(1) > 1 {
			return nil
		}
		// The first attempt at click fails its second record; the retry
		// must carry that record alone.
		be := spate.NewBatchError(len(records))
		if len(records) > 1 {
			be.Failed(1, errors.New("ServiceUnavailableException: slow down"))
		}
		return be.OrNil()
	}}
	r := newRouter(t, d, &deadLetter{}, router.Config{MaxRecordBytes: 700})
	if err := r.Route(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var clicks []call
	for _, c := range d.calls {
		if c.stream == "spate-click" {
			clicks = append(clicks, c)
		}
	}
	if len(clicks) != 2 || len(clicks[0].records) < 2 || len(clicks[1].records) != 1 || !bytes.Equal(clicks[1].records[0], clicks[0].records[1]) {
		t.Fatalf("click calls = %d (%d, then %d records); want the failed record alone on retry", len(clicks), len(clicks[0].records), len(clicks[len(clicks)-1].records))
	}
	ok := func(c call, j int) bool { return !(c.stream == "spate-click" && len(c.records) > 1 && j == 1) }
	sameEvents(t, d.events(ok), wantByStream(recs))
	if st := r.Stats(); st.Retries != 1 || st.Routed != 60 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRouteReportsWhatNeverMadeIt(t *testing.T) {
	recs := events(60)
	d := &dest{put: func(call int, stream string, records [][]byte) error {
		if stream == "spate-play_start" {
			return fmt.Errorf("ServiceUnavailableException: %w", spate.ErrThrottled)
		}
		return nil
	}}
	r := newRouter(t, d, &deadLetter{}, router.Config{MaxAttempts: 3})
	err := r.Route(context.Background(), recs)
	var be *spate.BatchError
	if !errors.As(err, &be) || len(be.Errs) != len(recs) {
		t.Fatalf("err = %v, want a BatchError over the input", err)
	}
	for i, e := range be.Errs {
		isPlay := strings.Contains(string(recs[i].Data), `"type":"play_start"`)
		if isPlay != (e != nil) {
			t.Errorf("record %d (%s): err %v", i, recs[i].Data[:30], e)
		}
		if e != nil && !errors.Is(e, spate.ErrThrottled) {
			t.Errorf("record %d: err %v does not wrap the destination's", i, e)
		}
	}
	n := 0
	for _, c := range d.calls {
		if c.stream == "spate-play_start" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("play_start attempts = %d, want MaxAttempts 3", n)
	}
	if st := r.Stats(); st.Failed != 10 || st.Routed != 50 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRouteDoesNotRetryPermanentErrors(t *testing.T) {
	d := &dest{put: func(int, string, [][]byte) error {
		return fmt.Errorf("ResourceNotFoundException: %w", router.ErrPermanent)
	}}
	r := newRouter(t, d, &deadLetter{}, router.Config{})
	recs := events(6)
	err := r.Route(context.Background(), recs)
	if spate.ItemErrors(err, 6)[0] == nil || len(d.calls) != 6 {
		t.Fatalf("err = %v, calls = %d; want every record failed after one call per stream", err, len(d.calls))
	}
}

// TestRouteStopsRetryingBeforeTheDeadline: a retry whose backoff would end
// past the deadline is not waited for; the result is reported in time.
func TestRouteStopsRetryingBeforeTheDeadline(t *testing.T) {
	d := &dest{put: func(int, string, [][]byte) error { return spate.ErrThrottled }}
	r := newRouter(t, d, &deadLetter{}, router.Config{MinBackoff: time.Hour, MaxAttempts: 100})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := events(6)
	err := r.Route(ctx, recs)
	if n := (&spate.BatchError{Errs: spate.ItemErrors(err, 6)}).Count(); n != 6 || len(d.calls) != 6 {
		t.Fatalf("failed = %d, calls = %d; want 6 and 6 (no retry past the deadline)", n, len(d.calls))
	}
	if ctx.Err() != nil {
		t.Fatal("Route returned after the invocation's deadline")
	}
}

// TestRouteCutsASlowDestinationAtTheMargin: a destination that hangs is
// abandoned DeadlineMargin before the deadline, leaving time to report.
func TestRouteCutsASlowDestinationAtTheMargin(t *testing.T) {
	d := &dest{}
	hang := &hangingDest{d: d}
	r := newRouter(t, hang, &deadLetter{}, router.Config{DeadlineMargin: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err := r.Route(ctx, events(6))
	if n := (&spate.BatchError{Errs: spate.ItemErrors(err, 6)}).Count(); n != 6 {
		t.Fatalf("failed = %d, want 6", n)
	}
	if ctx.Err() != nil {
		t.Fatal("Route returned after the invocation's deadline")
	}
}

type hangingDest struct{ d *dest }

func (h *hangingDest) PutBatch(ctx context.Context, stream string, records [][]byte) error {
	_ = h.d.PutBatch(ctx, stream, records)
	<-ctx.Done()
	return ctx.Err()
}

func TestRouteDeadLetters(t *testing.T) {
	good := events(6)
	huge := &spate.Event{Type: "page_view", Platform: "web", UserID: "u", Props: []spate.Prop{spate.Str("page", strings.Repeat("p", 2000))}}
	recs := append(slices.Clone(good),
		spate.Record{Data: []byte("Hello World"), SequenceNumber: "100"},
		spate.Record{Data: []byte(`{"type":"purchase","platform":"web"}`), SequenceNumber: "101"},
		spate.Record{Data: huge.AppendJSON(nil), SequenceNumber: "102"},
	)
	t.Run("kept with their reason", func(t *testing.T) {
		d, dl := &dest{}, &deadLetter{}
		r := newRouter(t, d, dl, router.Config{MaxRecordBytes: 1024})
		if err := r.Route(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			router.ReasonUndecodable: {"Hello World"},
			router.ReasonUnknownType: {`{"type":"purchase","platform":"web"}`},
			router.ReasonTooLarge:    {string(huge.AppendJSON(nil))},
		}
		for reason, w := range want {
			if !slices.Equal(dl.reasons[reason], w) {
				t.Errorf("%s: got %q", reason, dl.reasons[reason])
			}
		}
		sameEvents(t, d.events(nil), wantByStream(good))
		st := r.Stats()
		if st.DeadLettered != 3 || st.Undecodable != 1 || st.UnknownType != 1 || st.TooLarge != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("redelivered when the target fails", func(t *testing.T) {
		dl := &deadLetter{put: func(recs []spate.Record, reason string) error {
			if reason == router.ReasonUnknownType {
				return errors.New("queue down")
			}
			return nil
		}}
		r := newRouter(t, &dest{}, dl, router.Config{MaxRecordBytes: 1024})
		errs := spate.ItemErrors(r.Route(context.Background(), recs), len(recs))
		for i, err := range errs {
			if (i == 7) != (err != nil) {
				t.Errorf("record %d: err = %v", i, err)
			}
		}
	})
}

func TestRouteConcurrentCallers(t *testing.T) {
	d := &dest{}
	r := newRouter(t, d, &deadLetter{}, router.Config{})
	recs := events(400)
	var wg sync.WaitGroup
	for i := range 4 {
		part := recs[i*100 : (i+1)*100]
		wg.Go(func() {
			if err := r.Route(context.Background(), part); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	sameEvents(t, d.events(nil), wantByStream(recs))
}

func TestNewNeedsAStreamPerType(t *testing.T) {
	reg := registry.New(registry.Limits{})
	streams := router.StreamNames(reg.Types(), "x-")
	delete(streams, "click")
	if _, err := router.New(reg, &dest{}, &deadLetter{}, router.Config{Streams: streams}, nil); err == nil {
		t.Error("New accepted a registry type without a stream")
	}
	if _, err := router.New(reg, nil, &deadLetter{}, router.Config{Streams: router.StreamNames(reg.Types(), "")}, nil); err == nil {
		t.Error("New accepted a nil destination")
	}
}
