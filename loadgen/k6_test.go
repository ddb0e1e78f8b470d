package loadgen_test

import (
	"flag"
	"os"
	"testing"

	"github.com/spate-dev/spate/loadgen"
	"github.com/spate-dev/spate/registry"
)

var update = flag.Bool("update", false, "rewrite loadtest/lib/schemas.gen.js")

// TestK6ModuleIsCurrent keeps the k6 generator's schema module equal to
// what the schemas generate.
func TestK6ModuleIsCurrent(t *testing.T) {
	const path = "../loadtest/lib/schemas.gen.js"
	want := loadgen.K6Module(registry.New(registry.Limits{}))
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(want) {
		t.Fatalf("%s is stale (%v): run go test ./loadgen -update", path, err)
	}
}
