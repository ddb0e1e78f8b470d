package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench`.
type benchLine struct {
	Name    string             // without the Benchmark prefix and -N suffix
	N       int64              // iterations
	Metrics map[string]float64 // by unit: ns/op, B/op, allocs/op, custom
}

// parseBench reads the result lines of `go test -bench` output.
func parseBench(out []byte) []benchLine {
	var lines []benchLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		// -cpu N appends -N unless N is 1.
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		l := benchLine{Name: name, N: n, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			l.Metrics[f[i+1]] = v
		}
		if ok {
			lines = append(lines, l)
		}
	}
	return lines
}

// goBench runs one `go test -bench` command in the repository and returns
// the command line and its parsed results.
func (r *run) goBench(ctx context.Context, args ...string) (string, []benchLine, error) {
	full := append([]string{"test"}, args...)
	shown := make([]string, len(full))
	for i, a := range full {
		shown[i] = a
		if strings.ContainsAny(a, "^$*") {
			shown[i] = "'" + a + "'"
		}
	}
	cmdline := "go " + strings.Join(shown, " ")
	r.logf("running %s", cmdline)
	cmd := exec.CommandContext(ctx, r.goCmd, full...)
	cmd.Dir = r.root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return cmdline, nil, fmt.Errorf("%s: %w\n%s", cmdline, err, out)
	}
	lines := parseBench(out)
	if len(lines) == 0 {
		return cmdline, nil, fmt.Errorf("%s: no benchmark results in\n%s", cmdline, out)
	}
	return cmdline, lines, nil
}

// find returns the lines named name, in order (one per -count).
func find(lines []benchLine, name string) []benchLine {
	var out []benchLine
	for _, l := range lines {
		if l.Name == name {
			out = append(out, l)
		}
	}
	return out
}

// pair formats a metric over repeated runs: "a / b".
func pair(ls []benchLine, unit string, prec int) string {
	var s []string
	for _, l := range ls {
		s = append(s, num(l.Metrics[unit], prec))
	}
	if len(s) == 0 {
		return "–"
	}
	return strings.Join(s, " / ")
}

func mean(ls []benchLine, unit string) float64 {
	if len(ls) == 0 {
		return 0
	}
	var sum float64
	for _, l := range ls {
		sum += l.Metrics[unit]
	}
	return sum / float64(len(ls))
}

// ingestSection runs the ingest benchmarks: spate against the decode-only
// ceiling and one call per event, on one core.
func (r *run) ingestSection(ctx context.Context) (section, error) {
	cmdline, lines, err := r.goBench(ctx, "-run", "^$", "-bench", "BenchmarkPostEvents", "-cpu", "1", "./ingest")
	if err != nil {
		return section{}, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "```\n%s\n```\n\n", cmdline)
	b.WriteString("`POST /v1/events` through the HTTP handler in process (no sockets on the client side), 256 requests in flight, on one core (`-cpu 1`). Bodies are one event or a batch of 20 `impression` events. `spate` is the real handler: decode, validate, canonical JSON, batch, and a 202 only once the events are written, packed into KPL aggregated records (the default), by the real aws-sdk-go-v2 Kinesis client to a stub PutRecords endpoint over loopback (`internal/kinesisstub`, one shard). `spate-plain` is the same with `SPATE_KINESIS_AGGREGATION=false`: one record per event, as before aggregation. `ceiling` is a minimal chi handler that only decodes the JSON and answers 202. `call-per-event` is the naive design: one `PutRecord` call per event.\n\n")
	var rows [][]string
	for _, n := range []int{1, 20} {
		sp := find(lines, fmt.Sprintf("PostEvents/spate/events=%d", n))
		pl := find(lines, fmt.Sprintf("PostEvents/spate-plain/events=%d", n))
		ce := find(lines, fmt.Sprintf("PostEvents/ceiling/events=%d", n))
		cp := find(lines, fmt.Sprintf("PostEvents/call-per-event/events=%d", n))
		for _, v := range []struct {
			name string
			ls   []benchLine
		}{{"spate", sp}, {"spate-plain", pl}, {"ceiling", ce}, {"call-per-event", cp}} {
			if len(v.ls) == 0 {
				return section{}, fmt.Errorf("%s: no result for %s/events=%d", cmdline, v.name, n)
			}
			l := v.ls[0]
			row := []string{v.name, strconv.Itoa(n), num(l.Metrics["ns/op"], 0), num(l.Metrics["events/s"], 0),
				num(l.Metrics["B/op"], 0), num(l.Metrics["allocs/op"], 0), ratio(l.Metrics["events/s"], mean(ce, "events/s")), ratio(l.Metrics["events/s"], mean(cp, "events/s"))}
			rows = append(rows, row)
		}
	}
	b.WriteString(table([]string{"handler", "events/request", "ns/op", "events/s (1 core)", "B/op", "allocs/op", "vs ceiling", "vs call-per-event"}, rows))
	sp1, sp20 := find(lines, "PostEvents/spate/events=1"), find(lines, "PostEvents/spate/events=20")
	ce1, ce20 := find(lines, "PostEvents/ceiling/events=1"), find(lines, "PostEvents/ceiling/events=20")
	cp1, cp20 := find(lines, "PostEvents/call-per-event/events=1"), find(lines, "PostEvents/call-per-event/events=20")
	fmt.Fprintf(&b, "\n- Single events: spate does %s of the ceiling's events/s and %s of call-per-event's.\n",
		ratio(mean(sp1, "events/s"), mean(ce1, "events/s")), ratio(mean(sp1, "events/s"), mean(cp1, "events/s")))
	fmt.Fprintf(&b, "- Batches of 20: spate does %s of the ceiling's events/s and %s of call-per-event's.\n",
		ratio(mean(sp20, "events/s"), mean(ce20, "events/s")), ratio(mean(sp20, "events/s"), mean(cp20, "events/s")))
	for _, n := range []int{1, 20} {
		sp, pl := find(lines, fmt.Sprintf("PostEvents/spate/events=%d", n)), find(lines, fmt.Sprintf("PostEvents/spate-plain/events=%d", n))
		if len(sp) > 0 && len(pl) > 0 {
			fmt.Fprintf(&b, "- %d event(s) per request, per 1,000 events: %s PutRecords calls and %s record bytes aggregated (%s events per record), %s calls and %s bytes plain.\n", n,
				num(mean(sp, "calls/kevent"), 2), num(mean(sp, "bytes/kevent"), 0), num(mean(sp, "events/record"), 1), num(mean(pl, "calls/kevent"), 2), num(mean(pl, "bytes/kevent"), 0))
		}
	}
	b.WriteString("- The handlers ran in the same `go test` process, seconds apart, so the ratios compare like with like even when the absolute numbers move with the machine's load.\n")
	return section{name: "ingest", title: "## Ingest", body: b.String()}, nil
}

// routerLakeSections reruns the router and lake benchmarks the way their
// sections describe, and regenerates their tables.
func (r *run) routerLakeSections(ctx context.Context) ([]section, error) {
	lakeCmd, lakeLines, err := r.goBench(ctx, "-run", "^$", "-bench", ".", "-benchtime", "300000x", "-cpu", "1", "-count", "2", "./lake")
	if err != nil {
		return nil, err
	}
	routerCmd, routerLines, err := r.goBench(ctx, "-run", "^$", "-bench", ".", "-benchtime", "100000x", "-cpu", "1", "-count", "2", "./firehose")
	if err != nil {
		return nil, err
	}
	var lk strings.Builder
	fmt.Fprintf(&lk, "Last `make bench` (`%s`); the notes below the table were written from the run this section was first written with:\n\n", lakeCmd)
	var rows [][]string
	for i, l := range find(lakeLines, "LakeWriter") {
		rows = append(rows, []string{strconv.Itoa(i + 1), num(l.Metrics["ns/op"], 0), num(l.Metrics["events/cpu-s"], 0),
			num(l.Metrics["json-B/event"], 1), num(l.Metrics["parquet-B/event"], 2), num(l.Metrics["peak-RSS-MiB"], 1) + " MiB", num(l.Metrics["allocs/op"], 0)})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no BenchmarkLakeWriter result", lakeCmd)
	}
	lk.WriteString(table([]string{"run", "ns/op (wall)", "events/cpu-s", "JSON B/event", "Parquet B/event", "peak RSS", "allocs/event"}, rows))

	var rt strings.Builder
	fmt.Fprintf(&rt, "Last `make bench` (`%s`); the notes below the table were written from the run this section was first written with:\n\n", routerCmd)
	rows = nil
	for _, name := range []string{"Route/batch=100", "Route/batch=1000", "RouteFirehose/batch=100/packed=true", "RouteFirehose/batch=100/packed=false",
		"RouteFirehose/batch=1000/packed=true", "RouteFirehose/batch=1000/packed=false"} {
		ls := find(routerLines, name)
		if len(ls) == 0 {
			return nil, fmt.Errorf("%s: no result for %s", routerCmd, name)
		}
		parts := strings.Split(name, "/")
		batch := strings.TrimPrefix(parts[1], "batch=")
		packed := "yes"
		if len(parts) > 2 && parts[2] == "packed=false" {
			packed = "no"
		}
		rows = append(rows, []string{parts[0], num(atof(batch), 0), packed, pair(ls, "ns/op", 0), pair(ls, "events/cpu-s", 0),
			num(mean(ls, "events/record"), 2), num(mean(ls, "billed-B/event"), 1), num(mean(ls, "B/op"), 0), num(mean(ls, "allocs/op"), 0)})
	}
	rt.WriteString(table([]string{"benchmark", "batch", "packed", "ns/op (wall)", "events/cpu-s", "events/record", "billed B/event", "B/op", "allocs/op"}, rows))
	rt.WriteString("\n(Pairs are the two runs.)\n")
	route := find(routerLines, "Route/batch=100")
	lakeW := find(lakeLines, "LakeWriter")
	fmt.Fprintf(&rt, "\nIn this run the lake writer did %s events/cpu-s and the router alone (batch 100) %s: the lake stage costs %s the router's CPU per event.\n",
		num(mean(lakeW, "events/cpu-s"), 0), num(mean(route, "events/cpu-s"), 0), ratio(mean(route, "events/cpu-s"), mean(lakeW, "events/cpu-s")))
	return []section{
		{name: "lake", title: "### Lake writer", body: lk.String()},
		{name: "router", title: "### Router", body: rt.String()},
	}, nil
}

func atof(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}
