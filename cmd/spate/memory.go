package main

import (
	"log/slog"
	"runtime/debug"

	"github.com/spate-dev/spate/internal/memlimit"
)

// memorySettings ties the process's memory to the task's: GOMEMLIMIT and
// the request-body budget are derived from one limit.
type memorySettings struct {
	Limit  int64 // bytes; 0: the cgroup's, if any
	getenv func(string) string
}

// gcShare of the limit becomes the Go soft limit: the rest is headroom for
// what the Go heap does not count (goroutine stacks are counted; socket
// buffers charged to the cgroup are not).
const gcShare = 0.8

// apply sets the soft memory limit (unless GOMEMLIMIT says otherwise) and
// returns the body budget: bodyMemory when set, else 1/64 of the limit
// (32 MiB of a 2 GiB task: bodies, their records while decoded, the
// producer's buffer and the GC's headroom over them stay under 512 MiB),
// else 0 for ingest's default.
func (m memorySettings) apply(bodyMemory int64, log *slog.Logger) int64 {
	limit, from := m.Limit, "SPATE_MEMORY_LIMIT"
	if limit == 0 {
		limit, from = memlimit.Cgroup("/sys/fs/cgroup"), "cgroup"
	}
	if limit == 0 {
		return bodyMemory
	}
	if m.getenv == nil || m.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(float64(limit) * gcShare))
	}
	if bodyMemory == 0 {
		bodyMemory = limit / 64
	}
	log.Info("memory", "limit_bytes", limit, "from", from, "gomemlimit_bytes", debug.SetMemoryLimit(-1), "body_memory_bytes", bodyMemory)
	return bodyMemory
}
