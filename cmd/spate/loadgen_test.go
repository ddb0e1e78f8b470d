package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spate-dev/spate/loadgen"
)

func loadgenEnv(vars map[string]string) (*environment, *bytes.Buffer) {
	var out bytes.Buffer
	return &environment{stdout: &out, stderr: io.Discard, getenv: func(k string) string { return vars[k] }, log: slog.New(slog.DiscardHandler)}, &out
}

func TestLoadgenFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "flood"},
		{"--rate", "0"},
		{"--duration", "0s"},
		{"--output", "xml"},
		{"--events-per-request", "501"},
		{"--p99", "0s"},
		{"--url", "127.0.0.1:8080", "--duration", "1ms"},
		{"extra"},
	} {
		env, _ := loadgenEnv(nil)
		if err := runLoadgen(context.Background(), env, args); err == nil {
			t.Errorf("loadgen %q accepted", args)
		}
	}
}

// TestLoadgenJSON runs the CLI against a stand-in ingest and reads its
// JSON report and ids file back.
func TestLoadgenJSON(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys[r.Header.Get("X-Api-Key")]++
		mu.Unlock()
		var body struct {
			Events []json.RawMessage `json:"events"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || len(body.Events) != 3 {
			http.Error(w, "want a batch of 3", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"accepted":3,"rejected":[]}`)
	}))
	defer srv.Close()
	ids := filepath.Join(t.TempDir(), "ids.txt")
	env, out := loadgenEnv(map[string]string{"SPATE_LOADGEN_API_KEY": "k-env"})
	err := runLoadgen(context.Background(), env, []string{"--url", srv.URL, "--rate", "200", "--duration", "100ms",
		"--events-per-request", "3", "--output", "json", "--ids", ids, "--p99", "10s"})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var res loadgen.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	if res.Scenario != "steady" || res.Requests.Scheduled != 20 || res.Status["202"] != 20 || res.Events.Accepted != 60 {
		t.Errorf("report %+v", res)
	}
	if keys["k-env"] != 20 {
		t.Errorf("api keys sent %v, want k-env on every request", keys)
	}
	b, err := os.ReadFile(ids)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if int64(len(lines)) != res.IDs || res.IDs+res.Events.ServerIDs != 60 {
		t.Errorf("%d ids in the file, report says %d written and %d server-assigned", len(lines), res.IDs, res.Events.ServerIDs)
	}
}

// TestLoadgenThresholds: a run that fails its thresholds still prints the
// report, and exits non-zero; breakpoint breaking is its answer, not an
// error.
func TestLoadgenThresholds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	env, out := loadgenEnv(nil)
	err := runLoadgen(context.Background(), env, []string{"--url", srv.URL, "--rate", "100", "--duration", "50ms", "--api-key", "k"})
	if !errors.Is(err, errThresholds) {
		t.Errorf("err %v, want thresholds failed", err)
	}
	if !strings.Contains(out.String(), "503: 5") || !strings.Contains(out.String(), "FAILED") {
		t.Errorf("table:\n%s", out)
	}
	env, out = loadgenEnv(nil)
	if err := runLoadgen(context.Background(), env, []string{"--url", srv.URL, "--scenario", "breakpoint", "--rate", "100", "--duration", "50ms"}); err != nil {
		t.Errorf("breakpoint: %v", err)
	}
	if !strings.Contains(out.String(), "breakpoint") {
		t.Errorf("table:\n%s", out)
	}
}
