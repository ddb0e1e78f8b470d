package firehose_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/firehose"
	"github.com/spate-dev/spate/internal/fakefirehose"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/router"
)

// benchRecords are n stream records of a realistic mix of types, as
// ingest writes them.
func benchRecords(n int) []spate.Record {
	reg := registry.New(registry.Limits{})
	weights := map[string]int{"page_view": 1, "impression": 4, "click": 1, "play_start": 1, "play_progress": 6, "play_end": 1}
	var cycle []string
	for _, t := range reg.Types() {
		for range weights[t] {
			cycle = append(cycle, t)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	hex := func(n int) string { return fmt.Sprintf("%016x", rng.Uint64())[:n] }
	at := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	recs := make([]spate.Record, n)
	for i := range recs {
		typ := cycle[i%len(cycle)]
		pos, ms, dur := int64(i%30), int64(i%7200)*1000, int64(3_600_000)
		e := &spate.Event{Type: typ, EventID: hex(8) + "-" + hex(4) + "-7" + hex(3) + "-8" + hex(3) + "-" + hex(12),
			OccurredAt: at, ReceivedAt: at, SessionID: hex(16), AnonymousID: hex(16), Platform: []string{"web", "ios", "android", "tv"}[i%4], AppVersion: "5.12.0"}
		switch typ {
		case "page_view":
			e.Set(spate.Str("page", "/ohjelmat/areena"))
		case "impression", "click":
			e.Props = append(e.Props, spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Str("image_variant", fmt.Sprintf("v%d", i%4)), spate.Str("list_id", "trending"), spate.Int("position", pos))
		case "play_start":
			e.Props = append(e.Props, spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Int("position_ms", ms))
		case "play_progress":
			e.Props = append(e.Props, spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Int("position_ms", ms), spate.Int("duration_ms", dur))
		case "play_end":
			e.Props = append(e.Props, spate.Str("content_id", fmt.Sprintf("1-%d", i%20000)), spate.Int("position_ms", ms), spate.Str("reason", "completed"))
		}
		recs[i] = spate.Record{PartitionKey: e.PartitionKey(), Data: e.AppendJSON(nil), ShardID: "shardId-000000000000",
			SequenceNumber: fmt.Sprintf("%021d", i), ArrivedAt: at}
	}
	return recs
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type nopDest struct{}

func (nopDest) PutBatch(context.Context, string, [][]byte) error { return nil }

// runRoute routes b.N events in Lambda-sized batches and reports events per
// CPU-second and what Firehose would bill per event.
func runRoute(b *testing.B, dest router.Destination, batch int, noPacking bool) {
	reg := registry.New(registry.Limits{})
	r, err := router.New(reg, dest, discardDLQ{}, router.Config{Streams: router.StreamNames(reg.Types(), "spate-"), NoPacking: noPacking}, nil)
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(10 * batch)
	size := 0
	for _, rec := range recs {
		size += len(rec.Data)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for done, i := 0, 0; done < b.N; i++ {
		part := recs[(i%10)*batch : (i%10+1)*batch]
		if err := r.Route(ctx, part); err != nil {
			b.Fatal(err)
		}
		done += batch
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	st := r.Stats()
	b.ReportMetric(float64(st.Routed)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(size)/float64(len(recs)), "B/event")
	b.ReportMetric(float64(st.BilledBytes)/float64(st.Routed), "billed-B/event")
	b.ReportMetric(float64(st.Routed)/float64(st.PutRecords), "events/record")
}

// BenchmarkRoute is the router's own cost: decode, route and pack, with a
// destination that does nothing.
func BenchmarkRoute(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { runRoute(b, nopDest{}, batch, false) })
	}
}

// BenchmarkRouteFirehose is decode → route → pack → PutRecordBatch through
// the real SDK client to the fake endpoint on loopback. The fake runs in
// this process, so the CPU figure includes its decoding of every request.
func BenchmarkRouteFirehose(b *testing.B) {
	reg := registry.New(registry.Limits{})
	srv := fakefirehose.New(slices.Collect(maps.Values(router.StreamNames(reg.Types(), "spate-")))...)
	defer srv.Close()
	srv.Discard()
	dest := firehose.NewDestination(client(srv, 1))
	for _, batch := range []int{100, 1000} {
		for _, noPacking := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch=%d/packed=%v", batch, !noPacking), func(b *testing.B) { runRoute(b, dest, batch, noPacking) })
		}
	}
}
