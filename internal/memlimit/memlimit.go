// Package memlimit finds the memory a process may use: a declared limit,
// else its cgroup's (v2 memory.max, v1 memory.limit_in_bytes). On Fargate a
// task's memory is set on the task, not the container, and the container's
// cgroup reads unlimited: the task definition must declare it
// (SPATE_MEMORY_LIMIT), and the cgroup is the fallback that holds elsewhere
// (docker --memory, Kubernetes limits).
package memlimit

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// unlimited: cgroup v1 reports "no limit" as a page-rounded MaxInt64.
const unlimited = 1 << 60

// Cgroup returns the memory limit of the cgroup the process is in, read
// under root (normally /sys/fs/cgroup); 0 when there is none.
func Cgroup(root string) int64 {
	for _, p := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= unlimited {
			return 0
		}
		return n
	}
	return 0
}

// Parse reads a size in GOMEMLIMIT's syntax: bytes, or a number with B,
// KiB, MiB, GiB or TiB.
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want bytes, or a number with KiB, MiB, GiB or TiB")
	}
	if n > (1<<62)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}
