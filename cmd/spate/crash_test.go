package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/spate-dev/spate/local"
	"github.com/spate-dev/spate/rewarddemo"
)

// buildSpate builds this command into a temporary directory.
func buildSpate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a `spate local` process.
type proc struct {
	cmd    *exec.Cmd
	base   string
	exited chan error
	log    *bytes.Buffer
	logMu  *sync.Mutex
}

// startProc starts bin local with args and waits for it to listen.
func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"local", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1), log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.logMu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.logMu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
	}()
	go func() { <-scanned; p.exited <- cmd.Wait() }()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-p.exited:
		t.Fatalf("spate local exited before listening: %v\n%s", err, p.logs())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("spate local did not listen within 60s\n%s", p.logs())
	}
	return p
}

func (p *proc) logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// ledger is what clients were told: acknowledged, unknown (no answer:
// the process died mid-request) and refused event ids.
type ledger struct {
	mu      sync.Mutex
	acked   map[string]bool
	unknown map[string]bool
	refused int
	codes   map[int]int
}

func newLedger() *ledger {
	return &ledger{acked: map[string]bool{}, unknown: map[string]bool{}, codes: map[int]int{}}
}

// crashEvent is event i of round: impressions, clicks and play starts
// with variants (they count in the rewards) and page views (they do not).
func crashEvent(round, i int) (id, body string) {
	id = fmt.Sprintf("0190a3c4-%04d-7000-8000-%012d", round, i)
	content := fmt.Sprintf("prog-%d", i%3)
	variant := fmt.Sprintf("hero_%c", 'a'+rune(i%2))
	platform := []string{"web", "tv"}[i/2%2]
	switch i % 5 {
	case 0, 1:
		return id, fmt.Sprintf(`{"type":"impression","event_id":%q,"content_id":%q,"image_variant":%q,"platform":%q,"anonymous_id":"a"}`, id, content, variant, platform)
	case 2:
		return id, fmt.Sprintf(`{"type":"click","event_id":%q,"content_id":%q,"image_variant":%q,"platform":%q,"anonymous_id":"a"}`, id, content, variant, platform)
	case 3:
		return id, fmt.Sprintf(`{"type":"play_start","event_id":%q,"content_id":%q,"image_variant":%q,"platform":%q,"anonymous_id":"a"}`, id, content, variant, platform)
	}
	return id, fmt.Sprintf(`{"type":"page_view","event_id":%q,"page":"/tv","platform":%q,"anonymous_id":"a"}`, id, platform)
}

// load posts events to base from a few clients until stop is closed:
// 20-event bodies and single events.
func load(base string, round int, l *ledger, stop <-chan struct{}) {
	client := &http.Client{Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	var next sync.Mutex
	n := 0
	for c := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				size := 20
				if c%2 == 1 {
					size = 1
				}
				next.Lock()
				from := n
				n += size
				next.Unlock()
				var ids, bodies []string
				for i := from; i < from+size; i++ {
					id, b := crashEvent(round, i)
					ids, bodies = append(ids, id), append(bodies, b)
				}
				body := bodies[0]
				if size > 1 {
					body = `{"events":[` + strings.Join(bodies, ",") + `]}`
				}
				res, err := client.Post(base+"/v1/events", "application/json", strings.NewReader(body))
				l.mu.Lock()
				switch {
				case err != nil:
					for _, id := range ids {
						l.unknown[id] = true
					}
				case res.StatusCode == http.StatusAccepted:
					for _, id := range ids {
						l.acked[id] = true
					}
				default:
					l.refused += len(ids)
				}
				if err == nil {
					l.codes[res.StatusCode]++
					res.Body.Close()
				}
				l.mu.Unlock()
				if err != nil {
					return // the process is gone
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashLosesNothingAcknowledged runs the real binary under load and
// SIGKILLs it, at random moments and at each crash point of a lake commit
// and a window emission, restarts it every time, and finally stops it with
// SIGTERM: every event answered 202 is in the lake exactly once, no
// temporary file is left, and the reward receiver's totals are those of
// the lake's events.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	bin := buildSpate(t)
	rc := rewarddemo.New(rewarddemo.Config{MaxKeys: 1 << 20})
	api := httptest.NewServer(rc.Routes())
	defer api.Close()
	data := t.TempDir()
	args := []string{"--data", data, "--flush-interval", "300ms", "--window", "1s", "--reward-url", api.URL + "/v1/rewards"}

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)
	rounds := []string{"", local.CrashLakeSealed, local.CrashLakeIntent, "", local.CrashLakePublished + ":2",
		local.CrashWindowEmitted + ":2", local.CrashRewardDelivered, ""}
	l := newLedger()
	for round, point := range rounds {
		var env []string
		if point != "" {
			env = append(env, "SPATE_CRASH_AT="+point)
		}
		p := startProc(t, bin, env, args...)
		stop := make(chan struct{})
		loaded := make(chan struct{})
		go func() { load(p.base, round, l, stop); close(loaded) }()
		var exitErr error
		if point == "" {
			select {
			case <-time.After(time.Duration(300+rng.IntN(1700)) * time.Millisecond):
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				exitErr = <-p.exited
			case exitErr = <-p.exited:
			}
		} else {
			select {
			case exitErr = <-p.exited:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				<-p.exited
				t.Fatalf("round %d: crash point %s not reached in 30s\n%s", round, point, p.logs())
			}
		}
		close(stop)
		<-loaded
		var ee *exec.ExitError
		if !errors.As(exitErr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d (%q): exit %v, want SIGKILL\n%s", round, point, exitErr, p.logs())
		}
		if point != "" && !strings.Contains(p.logs(), `"point":"`+strings.Split(point, ":")[0]+`"`) {
			t.Fatalf("round %d: killed, but not at %s", round, point)
		}
		l.mu.Lock()
		t.Logf("round %d (%q): acked %d, unknown %d, refused %d so far", round, point, len(l.acked), len(l.unknown), l.refused)
		l.mu.Unlock()
	}

	// A last run: recover, take some more, stop cleanly.
	p := startProc(t, bin, nil, args...)
	if !strings.Contains(p.logs(), `"msg":"recovered"`) {
		t.Errorf("no recovery line in the log")
	}
	stop := make(chan struct{})
	loaded := make(chan struct{})
	go func() { load(p.base, len(rounds), l, stop); close(loaded) }()
	time.Sleep(500 * time.Millisecond) // load for a while: not synchronisation
	close(stop)
	<-loaded
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.logs())
	}
	if len(l.acked) == 0 {
		t.Fatal("nothing acknowledged")
	}

	// No temporary file anywhere.
	_ = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".tmp") {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(data, "lake", "*", "dt=*", "hour=*", "*.parquet")
	rows, err := db.QueryContext(context.Background(), fmt.Sprintf(
		`SELECT event_id, count(*) FROM read_parquet('%s', union_by_name = true) GROUP BY event_id`, glob))
	if err != nil {
		t.Fatal(err)
	}
	inLake := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		inLake[id] = n
	}
	rows.Close()
	missing, dup, stray := 0, 0, 0
	for id := range l.acked {
		if inLake[id] == 0 {
			missing++
		}
	}
	for id, n := range inLake {
		if n > 1 {
			dup++
		}
		if !l.acked[id] && !l.unknown[id] {
			stray++
		}
	}
	t.Logf("acked %d, unknown %d (of which in the lake: %d), refused %d, lake %d distinct events, codes %v",
		len(l.acked), len(l.unknown), len(inLake)-len(l.acked)+missing, l.refused, len(inLake), l.codes)
	if missing > 0 || dup > 0 || stray > 0 {
		t.Errorf("acknowledged events missing from the lake: %d; events in the lake more than once: %d; events never sent or refused in the lake: %d", missing, dup, stray)
	}

	// Rewards: the receiver counted each lake event with a variant once.
	type key struct{ content, variant, platform string }
	want := map[key]rewarddemo.Counts{}
	q := fmt.Sprintf(`SELECT type, content_id, image_variant, platform, count(*) FROM read_parquet('%s', union_by_name = true)
		WHERE type IN ('impression', 'click', 'play_start') AND image_variant IS NOT NULL GROUP BY ALL`, glob)
	rows, err = db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ, content, variant, platform string
		var n int64
		if err := rows.Scan(&typ, &content, &variant, &platform, &n); err != nil {
			t.Fatal(err)
		}
		k := key{content, variant, platform}
		c := want[k]
		switch typ {
		case "impression":
			c.Impressions += n
		case "click":
			c.Clicks += n
		case "play_start":
			c.PlayStarts += n
		}
		want[k] = c
	}
	rows.Close()
	tot := rc.Totals()
	got := map[key]rewarddemo.Counts{}
	for _, r := range tot.Rewards {
		got[key{r.ContentID, r.ImageVariant, r.Platform}] = r.Counts
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("rewards %v: receiver %+v, lake %+v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("receiver has %d keys, the lake %d", len(got), len(want))
	}
	t.Logf("reward requests %d, duplicates dropped by idempotency key %d", tot.Requests, tot.Duplicates)
}
