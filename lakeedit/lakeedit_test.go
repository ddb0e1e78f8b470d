package lakeedit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate/internal/laketest"
	"github.com/spate-dev/spate/lakeedit"
)

func newDir(t *testing.T) lakeedit.Store {
	dir := filepath.Join(t.TempDir(), "lake")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := lakeedit.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestForgetDir(t *testing.T)  { laketest.Forget(t, newDir) }
func TestCompactDir(t *testing.T) { laketest.Compact(t, newDir) }
