package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSplice(t *testing.T) {
	doc := "# Benchmarks\n\nIntro by hand.\n\n## Router\n\nProse by hand.\n\n<!-- bench:router -->\nold table\n<!-- /bench:router -->\n\nMore prose by hand.\n"
	got, err := splice(doc, []section{
		{name: "router", title: "### Router", body: "new table\n"},
		{name: "e2e", title: "## End to end", body: "counts"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nIntro by hand.\n\n## Router\n\nProse by hand.\n\n<!-- bench:router -->\nnew table\n<!-- /bench:router -->\n\nMore prose by hand.\n" +
		"\n## End to end\n\n<!-- bench:e2e -->\ncounts\n<!-- /bench:e2e -->\n"
	if got != want {
		t.Errorf("splice:\n%s\nwant:\n%s", got, want)
	}
	// Running again changes nothing but the marked regions.
	again, err := splice(got, []section{{name: "e2e", title: "## End to end", body: "new counts"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(again, "## End to end") != 1 || !strings.Contains(again, "<!-- bench:e2e -->\nnew counts\n<!-- /bench:e2e -->") || !strings.Contains(again, "More prose by hand.") {
		t.Errorf("second splice:\n%s", again)
	}
	for _, bad := range []string{
		"<!-- bench:x -->\nno end\n",
		"<!-- /bench:x -->\n<!-- bench:x -->\n",
		"<!-- bench:x -->\n<!-- /bench:x -->\n<!-- bench:x -->\n<!-- /bench:x -->\n",
	} {
		if _, err := splice(bad, []section{{name: "x", body: "y"}}); err == nil {
			t.Errorf("splice accepted %q", bad)
		}
	}
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/spate-dev/spate/ingest
cpu: AMD EPYC
BenchmarkPostEvents/spate/events=1         	   50000	     23456 ns/op	     42633 events/s	    5123 B/op	      45 allocs/op
BenchmarkPostEvents/ceiling/events=20-2    	    1000	   1234567 ns/op	 16200.5 events/s
BenchmarkBroken/x 	 12 	 abc ns/op
--- FAIL: something
PASS
ok  	github.com/spate-dev/spate/ingest	12.3s
`
	lines := parseBench([]byte(out))
	if len(lines) != 2 {
		t.Fatalf("%d lines parsed: %+v", len(lines), lines)
	}
	if l := lines[0]; l.Name != "PostEvents/spate/events=1" || l.N != 50000 || l.Metrics["events/s"] != 42633 || l.Metrics["allocs/op"] != 45 {
		t.Errorf("first line %+v", l)
	}
	if l := lines[1]; l.Name != "PostEvents/ceiling/events=20" || l.Metrics["events/s"] != 16200.5 {
		t.Errorf("-cpu suffix not stripped: %+v", l)
	}
	if got := find(lines, "PostEvents/ceiling/events=20"); len(got) != 1 || mean(got, "ns/op") != 1234567 {
		t.Errorf("find: %+v", got)
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.891: "1,234,568", -45000: "-45,000"} {
		if got := num(v, 0); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
	if got := num(1234.5, 1); got != "1,234.5" {
		t.Errorf("num(1234.5, 1) = %q", got)
	}
	if ratio(3, 2) != "×1.50" || ratio(1, 0) != "n/a" {
		t.Errorf("ratio: %s %s", ratio(3, 2), ratio(1, 0))
	}
	tb := table([]string{"a", "b"}, [][]string{{"1", "2"}})
	if tb != "| a | b |\n|---|---|\n| 1 | 2 |\n" {
		t.Errorf("table:\n%s", tb)
	}
}

// TestCeiling: the ceiling answers like ingest for what loadgen sends,
// gzip included, so runs against both count events the same way.
func TestCeiling(t *testing.T) {
	srv := httptest.NewServer(ceilingHandler())
	defer srv.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, `{"events":[{"type":"click"},{"type":"click"},{"type":"click"}]}`)
	zw.Close()
	for _, tc := range []struct {
		body     string
		gzip     bool
		status   int
		accepted string
	}{
		{`{"type":"click"}`, false, 202, `"accepted":1`},
		{`{"events":[{"type":"click"},{"type":"page_view"}]}`, false, 202, `"accepted":2`},
		{gz.String(), true, 202, `"accepted":3`},
		{`{"type":`, false, 400, ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		if tc.gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.accepted) {
			t.Errorf("%q: %d %s, want %d %s", tc.body, resp.StatusCode, b, tc.status, tc.accepted)
		}
	}
}
