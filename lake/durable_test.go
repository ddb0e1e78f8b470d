package lake_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate/lake"
)

// TestSealThenPublish: with ManualFlush nothing appears until Publish; a
// sealed file carries its metadata and is complete under its temporary
// name; Publish is repeatable; RemoveTemp deletes what was never sealed.
func TestSealThenPublish(t *testing.T) {
	l, _ := open(t, lake.Config{ManualFlush: true, FlushBytes: 1})
	ctx := context.Background()
	var recs [][]byte
	for _, e := range clicks(10, 1) {
		recs = append(recs, e.AppendJSON(nil))
	}
	if err := l.PutBatch(ctx, "click", recs); err != nil {
		t.Fatal(err)
	}
	if l.Buffered() == 0 {
		t.Fatal("nothing buffered")
	}
	if files(t, l.Dir(), "*.parquet") != 0 {
		t.Fatal("a file was published without Publish (FlushBytes 1 must not flush a ManualFlush lake)")
	}
	sealed, err := l.Seal(map[string]string{"spate.flush": "7"})
	if err != nil || len(sealed) != 1 || sealed[0].Rows != 10 || l.Buffered() != 0 {
		t.Fatalf("seal: %+v, %v", sealed, err)
	}
	md, err := lake.ReadMetadata(sealed[0].Tmp, "spate.flush")
	if err != nil || md["spate.flush"] != "7" {
		t.Fatalf("metadata of the sealed file: %v, %v", md, err)
	}
	// A file still being written, as a crash leaves it.
	if err := l.PutBatch(ctx, "click", recs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(sealed); err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(sealed); err != nil {
		t.Fatalf("publish again: %v", err)
	}
	if _, err := os.Stat(sealed[0].Final); err != nil {
		t.Fatal(err)
	}
	if n, err := lake.RemoveTemp(l.Dir()); err != nil || n != 1 {
		t.Errorf("RemoveTemp: %d, %v; want the one open file", n, err)
	}
	if files(t, l.Dir(), ".*.tmp") != 0 {
		t.Error("temporary files left")
	}
}

func files(t *testing.T, dir, pattern string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "click", "dt=*", "hour=*", pattern))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}
