package router_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/router"
)

// delivered counts each event_id across everything d was sent.
func delivered(t *testing.T, d *dest, ok func(c call, j int) bool) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, evs := range d.events(ok) {
		for _, ev := range evs {
			_, rest, _ := strings.Cut(ev, `"event_id":"`)
			id, _, _ := strings.Cut(rest, `"`)
			n[id]++
		}
	}
	return n
}

// TestRecentSkipsRedelivered: a Lambda batch resumed from its first failed
// record sends only what was not delivered; every event once.
func TestRecentSkipsRedelivered(t *testing.T) {
	ctx := context.Background()
	recs := events(300)
	var mu sync.Mutex
	got := map[string]int{}
	d := &dest{put: func(call int, stream string, records [][]byte) error {
		var errs []error
		if call <= 3 { // the first calls refuse their second half
			errs = make([]error, len(records))
			for j := len(records) / 2; j < len(records); j++ {
				errs[j] = errors.New("ServiceUnavailableException")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for j, rec := range records {
			if errs != nil && errs[j] != nil {
				continue
			}
			_, rest, _ := strings.Cut(string(rec), `"event_id":"`)
			id, _, _ := strings.Cut(rest, `"`)
			got[id]++
		}
		if errs != nil {
			return &spate.BatchError{Errs: errs}
		}
		return nil
	}}
	r := newRouter(t, d, &deadLetter{}, router.Config{MaxAttempts: 1, NoPacking: true})
	pos, rounds := 0, 0
	for pos < len(recs) {
		rounds++
		err := r.Route(ctx, recs[pos:])
		if err == nil {
			break
		}
		var be *spate.BatchError
		if !errors.As(err, &be) {
			t.Fatal(err)
		}
		first := 0
		for first < len(be.Errs) && be.Errs[first] == nil {
			first++
		}
		pos += first
	}
	if rounds < 2 {
		t.Fatal("no redelivery")
	}
	for _, rec := range recs {
		id := strings.Split(strings.Split(string(rec.Data), `"event_id":"`)[1], `"`)[0]
		if got[id] != 1 {
			t.Errorf("%s delivered %d times", id, got[id])
		}
	}
	if st := r.Stats(); st.Duplicates == 0 || st.RememberedIDs != int64(len(recs)) {
		t.Errorf("stats: %d duplicates skipped, %d ids remembered (want %d)", st.Duplicates, st.RememberedIDs, len(recs))
	}
}

func TestRecentBatchAndBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("same batch twice", func(t *testing.T) {
		d := &dest{}
		r := newRouter(t, d, &deadLetter{}, router.Config{})
		recs := events(50)
		for range 2 {
			if err := r.Route(ctx, recs); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(delivered(t, d, nil)); n != 50 || r.Stats().Routed != 50 || r.Stats().Duplicates != 50 {
			t.Errorf("%d distinct delivered, stats %+v", n, r.Stats())
		}
	})
	t.Run("copies within a batch share the first one's fate", func(t *testing.T) {
		fail := true
		d := &dest{put: func(int, string, [][]byte) error {
			if fail {
				return errors.New("down")
			}
			return nil
		}}
		r := newRouter(t, d, &deadLetter{}, router.Config{MaxAttempts: 1})
		recs := events(5)
		recs = append(recs, recs[2], recs[4])
		err := r.Route(ctx, recs)
		var be *spate.BatchError
		if !errors.As(err, &be) || be.Count() != len(recs) {
			t.Fatalf("refused batch: %v", err)
		}
		fail = false
		if err := r.Route(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Routed != 5 || st.Duplicates != 4 {
			t.Errorf("routed %d, duplicates %d; want 5 and 4 (2 copies per attempt, nothing remembered from the refusal)", st.Routed, st.Duplicates)
		}
	})
	t.Run("bounded per shard and in shards", func(t *testing.T) {
		d := &dest{}
		r := newRouter(t, d, &deadLetter{}, router.Config{RecentIDs: 10, RecentShards: 2})
		recs := events(25)
		if err := r.Route(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.RememberedIDs != 10 {
			t.Errorf("remembered %d ids, bound 10", st.RememberedIDs)
		}
		// The last ten are known, the first fifteen forgotten.
		if err := r.Route(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Duplicates != 10 || st.Routed != 40 {
			t.Errorf("second pass: %d skipped, %d routed in all; want 10 and 40", st.Duplicates, st.Routed)
		}
		for s := range 3 {
			batch := events(5)
			for i := range batch {
				batch[i].ShardID = fmt.Sprintf("shardId-%012d", s+1)
			}
			if err := r.Route(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		if st := r.Stats(); st.RememberedIDs != 10 {
			t.Errorf("after 4 shards: %d ids remembered, want 2 shards × 5", st.RememberedIDs)
		}
	})
	t.Run("off", func(t *testing.T) {
		d := &dest{}
		r := newRouter(t, d, &deadLetter{}, router.Config{RecentIDs: -1})
		recs := events(10)
		for range 2 {
			if err := r.Route(ctx, recs); err != nil {
				t.Fatal(err)
			}
		}
		if st := r.Stats(); st.Routed != 20 || st.Duplicates != 0 || st.RememberedIDs != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("events without an id or in another form", func(t *testing.T) {
		d := &dest{}
		r := newRouter(t, d, &deadLetter{}, router.Config{})
		recs := []spate.Record{
			{ShardID: "s", Data: []byte(`{"type":"click","content_id":"c","platform":"web","user_id":"u"}`)},
			{ShardID: "s", Data: []byte(`{"type":"click","content_id":"c","platform":"web","user_id":"u"}`)},
			{ShardID: "s", Data: []byte(`{"platform":"web", "event_id":"e\u002d1","type":"click","user_id":"u"}`)},
			{ShardID: "s", Data: []byte(`{"type":"click","event_id":"e-1","platform":"web","user_id":"u"}`)},
			{ShardID: "s", Data: []byte(`{"type":"click","event_id":7,"platform":"web","user_id":"u"}`)},
		}
		if err := r.Route(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Routed != 4 || st.Duplicates != 1 {
			t.Errorf("routed %d, duplicates %d; want 4 and 1 (no id: never a duplicate; e-1 escaped or not: the same)", st.Routed, st.Duplicates)
		}
	})
}
