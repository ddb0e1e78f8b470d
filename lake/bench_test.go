package lake_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/registry"
)

// benchEvents are n events of a realistic mix: mostly progress heartbeats
// and impressions, some attrs, sparse optional fields.
func benchEvents(n int) map[string][]*spate.Event {
	reg := registry.New(registry.Limits{})
	types := reg.Types()
	weights := map[string]int{"page_view": 1, "impression": 4, "click": 1, "play_start": 1, "play_progress": 6, "play_end": 1}
	var cycle []string
	for _, t := range types {
		for range weights[t] {
			cycle = append(cycle, t)
		}
	}
	at := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	hex := func(n int) string { return fmt.Sprintf("%0*x", n, rng.Uint64())[:n] }
	sessions := make([]string, 5000)
	for i := range sessions {
		sessions[i] = hex(16)
	}
	out := map[string][]*spate.Event{}
	for i := range n {
		typ := cycle[i%len(cycle)]
		e := &spate.Event{Type: typ, EventID: hex(8) + "-" + hex(4) + "-7" + hex(3) + "-8" + hex(3) + "-" + hex(12),
			OccurredAt: at.Add(time.Duration(i) * time.Millisecond), ReceivedAt: at.Add(time.Duration(i)*time.Millisecond + 80*time.Millisecond),
			SessionID: sessions[rng.IntN(len(sessions))], Platform: []string{"web", "ios", "android", "tv"}[rng.IntN(4)], AppVersion: "5.12.0"}
		if i%3 == 0 {
			e.UserID = fmt.Sprintf("user-%07d", rng.IntN(1_000_000))
		} else {
			e.AnonymousID = hex(16)
		}
		if i%10 == 0 {
			e.Attrs = map[string]string{"experiment": "thumbs-7", "screen": "1920x1080"}
		}
		pos, ms, dur := int64(i%30), int64(i%7200)*1000, int64(3_600_000)
		live := i%5 == 0
		switch typ {
		case "page_view":
			e.Props = []spate.Prop{spate.Str("page", "/ohjelmat/areena")}
		case "impression":
			e.Props = []spate.Prop{spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Str("image_variant", fmt.Sprintf("v%d", i%4)), spate.Str("list_id", "trending"), spate.Int("position", pos)}
		case "click":
			e.Props = []spate.Prop{spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Str("image_variant", fmt.Sprintf("v%d", i%4)), spate.Int("position", pos)}
		case "play_start":
			e.Props = []spate.Prop{spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Int("position_ms", ms), spate.Bool("live", live)}
		case "play_progress":
			e.Props = []spate.Prop{spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Int("position_ms", ms), spate.Int("duration_ms", dur)}
		case "play_end":
			e.Props = []spate.Prop{spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Int("position_ms", ms), spate.Str("reason", "completed")}
		}
		out[typ] = append(out[typ], e)
	}
	return out
}

// BenchmarkLakeWriter measures the lake's PutBatch path: parse packed
// event JSON, build rows, encode Parquet (Snappy, page v1), with files
// finished as they fill. One op is one event.
func BenchmarkLakeWriter(b *testing.B) {
	byType := benchEvents(12_000)
	type batch struct {
		typ  string
		recs [][]byte
		n    int
	}
	var batches []batch
	var jsonBytes int
	for typ, events := range byType {
		for start := 0; start < len(events); start += 200 {
			chunk := events[start:min(start+200, len(events))]
			recs := pack(chunk, 1000<<10)
			for _, r := range recs {
				jsonBytes += len(r)
			}
			batches = append(batches, batch{typ, recs, len(chunk)})
		}
	}
	l, err := lake.Open(registry.New(registry.Limits{}), lake.Config{Dir: filepath.Join(b.TempDir(), "lake"), FlushInterval: time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	events := 0
	for i := 0; events < b.N; i++ {
		bt := batches[i%len(batches)]
		if err := l.PutBatch(ctx, bt.typ, bt.recs); err != nil {
			b.Fatal(err)
		}
		events += bt.n
	}
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(st.Rows)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(st.FileBytes)/float64(st.Rows), "parquet-B/event")
	b.ReportMetric(float64(jsonBytes)/12_000, "json-B/event")
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
}

// cpuTime is the CPU time the process has used, all threads and the
// runtime included: on a shared machine, events per CPU-second is what one
// core sustains, where wall time also counts other tenants' load.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
