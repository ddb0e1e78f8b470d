package ingest

import (
	"errors"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
)

// Stats counts what ingest did. Labels are bounded: HTTP status codes and
// rejection reasons named by field (from the registry) and class, never
// payloads or identifiers.
type Stats struct {
	known    map[string]bool
	accepted atomic.Int64
	unstored atomic.Int64
	shed     atomic.Int64
	// shedMemory counts requests refused because the body budget was
	// spent. Bodies that missed their deadline are Requests[408].
	shedMemory atomic.Int64
	bodyBytes  func() int64
	conns      func() int64

	mu       sync.Mutex
	requests map[int]int64
	rejected map[string]int64
}

func newStats(reg *registry.Registry) *Stats {
	known := map[string]bool{"": true, "body": true, "events": true}
	for _, f := range reg.Fields() {
		known[f.Name] = true
	}
	return &Stats{known: known, requests: map[int]int64{}, rejected: map[string]int64{}}
}

// Snapshot is a copy of the counters.
type Snapshot struct {
	Accepted int64 // events acknowledged
	Unstored int64 // accepted events answered 503 because no sink took them
	Shed     int64 // requests refused for load: in-flight limit
	// ShedMemory: requests refused for load: request memory budget spent.
	ShedMemory int64
	BodyBytes  int64            // bytes request bodies hold now (charged to the budget)
	Conns      int64            // open connections on the Listen listener
	Requests   map[int]int64    // by status code
	Rejected   map[string]int64 // events rejected, by reason "field:class"
}

// Snapshot returns the counters.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{
		Accepted: s.accepted.Load(), Unstored: s.unstored.Load(), Shed: s.shed.Load(),
		ShedMemory: s.shedMemory.Load(), BodyBytes: s.bodyBytes(), Conns: s.conns(),
		Requests: maps.Clone(s.requests), Rejected: maps.Clone(s.rejected),
	}
}

func (s *Stats) request(status int) {
	s.mu.Lock()
	s.requests[status]++
	s.mu.Unlock()
}

func (s *Stats) reject(field string, err error) {
	if !s.known[field] {
		field = "unknown_field"
	}
	class := "invalid"
	var he *httpError
	switch {
	case errors.As(err, &he):
		class = http.StatusText(he.status)
	case errors.Is(err, spate.ErrUnknownType):
		class = "unknown_type"
	case errors.Is(err, spate.ErrTooLarge):
		class = "too_large"
	}
	key := field + ":" + class
	if field == "" {
		key = "event:" + class
	}
	s.mu.Lock()
	s.rejected[key]++
	s.mu.Unlock()
}
