package lakeedit_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/spate-dev/spate/failed"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/lakeedit"
	"github.com/spate-dev/spate/registry"
)

// TestForgetFindsIdentifiersInFailedPayloads: a failed event whose payload
// is not JSON has empty identifier columns; the person named inside the
// payload is still erased, and other failed events stay.
func TestForgetFindsIdentifiersInFailedPayloads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	at := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	log := slog.New(slog.DiscardHandler)
	lk, err := lake.Open(registry.Failed(), lake.Config{Dir: dir, FlushInterval: time.Hour, Now: func() time.Time { return at }}, log)
	if err != nil {
		t.Fatal(err)
	}
	k := failed.New(lk, registry.New(registry.Limits{}), failed.Config{}, log)
	go k.Run(ctx)
	k.Keep([]byte(`{"type":"click","user_id":"user-gone","content_id":`), errors.New("malformed JSON"), at) // truncated: not JSON
	k.Keep([]byte(`{"type":"click","user_id":"user-stays","colour":"red"}`), errors.New("unknown field"), at)
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := lakeedit.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := lakeedit.ParseRequests(strings.NewReader("user_id:user-gone\n"), lakeedit.DefaultIdentifiers())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{Now: func() time.Time { return at }}, log)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RowsRemoved != 1 || rep.PerRequest[0].Rows != 1 {
		t.Fatalf("removed %d rows (request: %d), want the one failed event naming user-gone", rep.RowsRemoved, rep.PerRequest[0].Rows)
	}
	files, _ := filepath.Glob(filepath.Join(dir, registry.FailedType, "*", "*", "*.parquet"))
	if len(files) != 1 {
		t.Fatalf("failed files %v", files)
	}
	type row struct {
		Payload *string `parquet:"payload,optional"`
	}
	rows, err := parquet.ReadFile[row](files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Payload == nil || !strings.Contains(*rows[0].Payload, "user-stays") {
		t.Errorf("%d rows left, want only user-stays's", len(rows))
	}
}
