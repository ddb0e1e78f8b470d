package memstream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/memstream"
)

// TestLogPullContract: sequence numbers from 1, reads after a checkpoint,
// records dropped once every consumer is past them, a full log throttles
// the whole batch, a sealed one drains then reports ErrClosed.
func TestLogPullContract(t *testing.T) {
	l, err := memstream.NewLog(memstream.LogConfig{Shards: 1, Consumers: []string{"a", "b"}, MaxRecords: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var recs []spate.Record
	for i := range 8 {
		recs = append(recs, spate.Record{PartitionKey: fmt.Sprint(i), Data: []byte{byte(i)}})
	}
	if err := l.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := l.Read(ctx, 0, 3, 2)
	if err != nil || len(got) != 2 || got[0].SequenceNumber != fmt.Sprintf("%021d", 4) || got[0].Data[0] != 3 {
		t.Fatalf("read after 3: %+v, %v", got, err)
	}
	var be *spate.BatchError
	if err := l.Put(ctx, recs[:3]); !errors.As(err, &be) || !errors.Is(be.Errs[0], spate.ErrThrottled) || l.Head(0) != 8 {
		t.Fatalf("put past MaxRecords: %v, head %d", err, l.Head(0))
	}
	if err := l.Commit("a", map[int]uint64{0: 8}, map[string][]byte{"k": []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, recs[:3]); err == nil {
		t.Fatal("consumer b is behind: the log must still be full")
	}
	if err := l.Commit("b", map[int]uint64{0: 5}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, recs[:3]); err != nil {
		t.Fatalf("after both consumers committed: %v", err)
	}
	if got, _ := l.Read(ctx, 0, 5, 100); len(got) != 6 {
		t.Errorf("read after 5: %d records, want 6", len(got))
	}
	st, _ := l.State("a")
	if string(st["k"]) != "v" {
		t.Errorf("state %q", st)
	}
	l.Seal()
	if _, err := l.Read(ctx, 0, 11, 10); !errors.Is(err, spate.ErrClosed) {
		t.Errorf("read at the end after seal: %v", err)
	}
	if err := l.Put(ctx, recs[:1]); !errors.Is(err, spate.ErrClosed) {
		t.Errorf("put after seal: %v", err)
	}
}
