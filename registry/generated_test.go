package registry_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate/registry"
)

var update = flag.Bool("update", false, "rewrite the generated files from the registry")

// TestGeneratedFilesAreCurrent keeps docs/events.md and the Glue columns
// terraform reads equal to what the registry generates.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	r := registry.New(registry.Limits{})
	files := map[string][]byte{
		filepath.Join("..", "docs", "events.md"):                []byte(r.Markdown()),
		filepath.Join("..", "terraform", "glue_columns.json"):   r.GlueJSON(),
		filepath.Join("..", "terraform", "failed_columns.json"): registry.Failed().GlueJSON(),
	}
	for path, want := range files {
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./registry -update)", path, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is stale: run go test ./registry -update", path)
		}
	}
}
