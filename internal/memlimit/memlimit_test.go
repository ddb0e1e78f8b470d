package memlimit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate/internal/memlimit"
)

func TestCgroup(t *testing.T) {
	cases := []struct {
		file, content string
		want          int64
	}{
		{"memory.max", "2147483648\n", 2 << 30},
		{"memory.max", "max\n", 0},
		{"memory/memory.limit_in_bytes", "536870912\n", 512 << 20},
		{"memory/memory.limit_in_bytes", "9223372036854771712\n", 0}, // v1 "unlimited"
		{"none", "", 0},
	}
	for _, c := range cases {
		root := t.TempDir()
		if c.file != "none" {
			p := filepath.Join(root, c.file)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := memlimit.Cgroup(root); got != c.want {
			t.Errorf("%s=%q: %d, want %d", c.file, c.content, got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"2048MiB": 2 << 30, "1GiB": 1 << 30, "4096": 4096, "10KiB": 10 << 10, "7B": 7} {
		if got, err := memlimit.Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "2GB", "lots", "9999999TiB"} {
		if _, err := memlimit.Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}
