package diskstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/diskstream"
)

func open(t *testing.T, dir string, cfg diskstream.Config) *diskstream.Stream {
	t.Helper()
	if cfg.Consumers == nil {
		cfg.Consumers = []string{"a", "b"}
	}
	s, _, err := diskstream.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recs(from, n int) []spate.Record {
	out := make([]spate.Record, n)
	for i := range out {
		out[i] = spate.Record{PartitionKey: fmt.Sprintf("pk-%d", from+i), Data: fmt.Appendf(nil, `{"n":%d}`, from+i)}
	}
	return out
}

// readAll reads every shard from the checkpoints of consumer until the
// heads, returning the data in order per shard.
func readAll(t *testing.T, s *diskstream.Stream, after []uint64) map[string][]spate.Record {
	t.Helper()
	out := map[string][]spate.Record{}
	for i, id := range s.Shards() {
		for after[i] < s.Head(i) {
			got, err := s.Read(context.Background(), i, after[i], 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				seq, _ := diskstream.ParseSequence(r.SequenceNumber)
				if seq != after[i]+1 || r.ShardID != id {
					t.Fatalf("shard %s: got seq %d after %d (%s)", id, seq, after[i], r.ShardID)
				}
				after[i] = seq
				out[id] = append(out[id], r)
			}
		}
	}
	return out
}

// TestDurableAcrossReopen: what Put acknowledged is there after a reopen,
// in order, with the same sequence numbers and arrival times, and sequence
// numbers carry on.
func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := open(t, dir, diskstream.Config{Now: func() time.Time { return now }})
	ctx := context.Background()
	for i := 0; i < 100; i += 10 {
		if err := s.Put(ctx, recs(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	before := readAll(t, s, make([]uint64, 4))
	id := s.ID()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, rec, err := diskstream.Open(dir, diskstream.Config{Consumers: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec.Records != 100 || s.ID() != id {
		t.Errorf("recovered %d records, id %q (was %q)", rec.Records, s.ID(), id)
	}
	after := readAll(t, s, make([]uint64, 4))
	n := 0
	for sh, rs := range before {
		for j, r := range rs {
			g := after[sh][j]
			if string(g.Data) != string(r.Data) || g.SequenceNumber != r.SequenceNumber || !g.ArrivedAt.Equal(now) || g.PartitionKey != r.PartitionKey {
				t.Errorf("%s #%d: %+v after reopen, was %+v", sh, j, g, r)
			}
			n++
		}
	}
	if n != 100 {
		t.Errorf("read %d records, want 100", n)
	}
	if err := s.Put(ctx, recs(100, 50)); err != nil {
		t.Fatal(err)
	}
	heads := 0
	for i := range s.Shards() {
		heads += int(s.Head(i))
	}
	if heads != 150 {
		t.Errorf("heads sum to %d, want 150", heads)
	}
	if _, _, err := diskstream.Open(dir, diskstream.Config{Consumers: []string{"a"}}); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second open of a locked stream: %v", err)
	}
}

// TestGroupCommit: concurrent Puts share commits.
func TestGroupCommit(t *testing.T) {
	s := open(t, t.TempDir(), diskstream.Config{})
	defer s.Close()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				if err := s.Put(context.Background(), recs(g*1000+i*5, 5)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Records != 16*20*5 {
		t.Errorf("records %d", st.Records)
	}
	if st.Commits >= 16*20 {
		t.Errorf("%d commits for %d Puts: no group commit", st.Commits, 16*20)
	}
	t.Logf("%d Puts in %d commits", 16*20, st.Commits)
}

// TestRetentionWaitsForEveryConsumer: records go once all consumers are
// past them, and checkpoints and state survive a reopen.
func TestRetentionWaitsForEveryConsumer(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, diskstream.Config{Shards: 1})
	ctx := context.Background()
	for i := range 10 {
		if err := s.Put(ctx, recs(i*10, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit("a", map[int]uint64{0: 100}, map[string][]byte{"k": []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Deleted != 0 {
		t.Fatalf("deleted %d records before consumer b committed", st.Deleted)
	}
	if err := s.Commit("b", map[int]uint64{0: 35}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Deleted != 30 {
		t.Errorf("deleted %d records, want the 3 chunks wholly at or below 35 (30)", st.Deleted)
	}
	got, err := s.Read(ctx, 0, 35, 100)
	if err != nil || len(got) != 65 || got[0].SequenceNumber != fmt.Sprintf("%021d", 36) {
		t.Fatalf("read after 35: %d records, %v", len(got), err)
	}
	if err := s.Commit("a", nil, map[string][]byte{"j": []byte("w")}, []string{"k"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, diskstream.Config{Shards: 1})
	defer s.Close()
	cp, _ := s.Checkpoints("b")
	st, _ := s.State("a")
	if cp[0] != 35 || len(st) != 1 || string(st["j"]) != "w" {
		t.Errorf("after reopen: checkpoint %v, state %q", cp, st)
	}
	if _, _, err := diskstream.Open(t.TempDir(), diskstream.Config{}); err == nil {
		t.Error("open without consumers succeeded")
	}
}

// TestFullStreamThrottlesThenRecovers: past the bound Put fails every record
// with ErrThrottled and writes nothing; once consumers commit, it accepts
// again, and the file never exceeds MaxBytes.
func TestFullStreamThrottlesThenRecovers(t *testing.T) {
	const maxBytes = 2 << 20
	s := open(t, t.TempDir(), diskstream.Config{Shards: 2, MaxBytes: maxBytes, Consumers: []string{"a"}})
	defer s.Close()
	ctx := context.Background()
	big := make([]spate.Record, 50)
	for i := range big {
		big[i] = spate.Record{PartitionKey: fmt.Sprint(i), Data: []byte(strings.Repeat("x", 1000))}
	}
	puts := 0
	for {
		err := s.Put(ctx, big)
		if err == nil {
			puts++
			if puts > 100 {
				t.Fatal("stream never filled")
			}
			continue
		}
		var be *spate.BatchError
		if !errors.As(err, &be) || be.Count() != len(big) || !errors.Is(be.Errs[0], spate.ErrThrottled) {
			t.Fatalf("full stream: %v", err)
		}
		break
	}
	st := s.Stats()
	if st.Records != int64(puts*len(big)) || st.FileBytes > maxBytes {
		t.Errorf("stats %+v after %d puts", st, puts)
	}
	if err := s.Commit("a", map[int]uint64{0: s.Head(0), 1: s.Head(1)}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, big); err != nil {
		t.Fatalf("after consumers caught up: %v", err)
	}
}

// TestSealDrains: after Seal, Put fails, Read returns what is left and then
// ErrClosed; a blocked Read wakes.
func TestSealDrains(t *testing.T) {
	s := open(t, t.TempDir(), diskstream.Config{Shards: 1})
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, recs(0, 3)); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Read(ctx, 0, 3, 10)
		blocked <- err
	}()
	s.Seal()
	if err := <-blocked; !errors.Is(err, diskstream.ErrClosed) {
		t.Errorf("blocked read after seal: %v", err)
	}
	if err := s.Put(ctx, recs(3, 1)); !errors.Is(err, spate.ErrClosed) {
		t.Errorf("put after seal: %v", err)
	}
	got, err := s.Read(ctx, 0, 0, 10)
	if err != nil || len(got) != 3 {
		t.Errorf("read after seal: %d, %v", len(got), err)
	}
}
