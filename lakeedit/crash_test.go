package lakeedit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/lakegen"
	"github.com/spate-dev/spate/internal/laketest"
	"github.com/spate-dev/spate/lakeedit"
)

// crashing is a store that fails (as a crash would stop) every Delete, or
// every Commit.
type crashing struct {
	lakeedit.Store
	deletes, commits bool
}

var errCrash = errors.New("crashed")

func (c *crashing) Delete(ctx context.Context, o lakeedit.Object) error {
	if c.deletes {
		return errCrash
	}
	return c.Store.Delete(ctx, o)
}

func (c *crashing) Create(ctx context.Context, key string) (lakeedit.Upload, error) {
	up, err := c.Store.Create(ctx, key)
	if err != nil || !c.commits {
		return up, err
	}
	return failingUpload{up}, nil
}

type failingUpload struct{ lakeedit.Upload }

func (u failingUpload) Commit(context.Context) (lakeedit.Object, error) {
	u.Abort()
	return lakeedit.Object{}, errCrash
}

func generated(t *testing.T, dup int) (lakegen.Config, *lakeedit.Dir) {
	cfg := lakegen.Config{Dir: filepath.Join(t.TempDir(), "lake"), Rows: 6000, Hours: 2, FilesPerHour: 3, DuplicateEvery: dup,
		Start: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	if _, err := lakegen.Generate(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	st, err := lakeedit.NewDir(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, st
}

// TestCompactCrashLeavesBothNeverNeither: merged files are in place before
// anything is deleted; a crash there leaves every row (some twice), and the
// next run leaves every event_id once.
func TestCompactCrashLeavesBothNeverNeither(t *testing.T) {
	ctx := context.Background()
	cfg, st := generated(t, 5)
	db := laketest.DB(t)
	ids := func() (int64, int64) {
		var rows, ids int64
		q := fmt.Sprintf(`SELECT count(*), count(DISTINCT event_id) FROM read_parquet('%s', union_by_name = true)`, laketest.Glob(cfg.Dir))
		if err := db.QueryRow(q).Scan(&rows, &ids); err != nil {
			t.Fatal(err)
		}
		return rows, ids
	}
	rows0, ids0 := ids()
	now := func() time.Time { return cfg.Start.Add(24 * time.Hour) }
	if _, err := lakeedit.Compact(ctx, &crashing{Store: st, deletes: true}, lakeedit.CompactConfig{Now: now}, nil); !errors.Is(err, lakeedit.ErrIncomplete) {
		t.Fatalf("crashed compact: %v", err)
	}
	if rows, n := ids(); n != ids0 || rows <= rows0 {
		t.Fatalf("after the crash: %d rows, %d event_ids; want all %d ids, some twice", rows, n, ids0)
	}
	if _, err := lakeedit.Compact(ctx, st, lakeedit.CompactConfig{Now: now}, nil); err != nil {
		t.Fatal(err)
	}
	if rows, n := ids(); n != ids0 || rows != ids0 {
		t.Errorf("after the next run: %d rows, %d event_ids; want %d once each", rows, n, ids0)
	}
}

// TestForgetCrashKeepsTheOldFile: a rewrite that never commits leaves the
// file as it was, and the run says it is incomplete; the next run erases.
func TestForgetCrashKeepsTheOldFile(t *testing.T) {
	ctx := context.Background()
	cfg, st := generated(t, 0)
	reqs, match := laketest.Requests(cfg, 10)
	db := laketest.DB(t)
	before, _ := laketest.Rows(t, db, cfg.Dir, "true")
	want, _ := laketest.Rows(t, db, cfg.Dir, match)
	_, sums := laketest.Dump(t, st)
	rep, err := lakeedit.Forget(ctx, &crashing{Store: st, commits: true}, reqs, lakeedit.ForgetConfig{}, nil)
	if !errors.Is(err, lakeedit.ErrIncomplete) || len(rep.Errors) == 0 {
		t.Fatalf("crashed forget: %v, %d errors", err, len(rep.Errors))
	}
	if _, now := laketest.Dump(t, st); len(now) != len(sums) {
		t.Fatalf("files: %d, were %d", len(now), len(sums))
	} else {
		for k, v := range sums {
			if now[k] != v {
				t.Errorf("%s changed by a rewrite that never committed", k)
			}
		}
	}
	rep, err = lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := laketest.Rows(t, db, cfg.Dir, match); n != 0 || rep.RowsRemoved != want {
		t.Errorf("next run: %d rows left, %d removed of %d", n, rep.RowsRemoved, want)
	}
	if n, _ := laketest.Rows(t, db, cfg.Dir, "true"); n != before-want {
		t.Errorf("%d rows, want %d", n, before-want)
	}
}
