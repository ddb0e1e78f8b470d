package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spate-dev/spate/internal/faultproxy"
	"github.com/spate-dev/spate/internal/spatetest"
)

// hostileRow is one line of the "Hostile clients" table: what was done to
// the real binary, the bound the test holds it to, and what was measured.
type hostileRow struct{ Attack, Bound, Measured string }

// hostile runs the attacks found by the adversarial pass (issue 16) against
// the real `spate ingest`, each on a fresh process, each with neighbours:
// valid clients whose requests must still get through.
func (w *world) hostile(t *testing.T) {
	t.Run("slow bodies", w.slowBodies)
	t.Run("declared lengths", w.declaredLengths)
	t.Run("big-body flood", w.bigBodyFlood)
	t.Run("connection flood", w.connFlood)
	w.report.addHostile(
		hostileRow{"`{\"events\":[A,B,C]}` where C nests 67 levels deep (`testdata/badinput/batch-one-deep-element`)", "202; A and B accepted, index 2 rejected", "as bound (`TestBadInput`)"},
		hostileRow{"`{\"events\":[A],\"events\":[B]}` (`batch-duplicate-events-key`, also with `\\u0065vents`)", "400 naming `events`: a duplicate key is rejected, never merged", "as bound (`TestBadInput`)"},
		hostileRow{"`\\f`, U+00A0, U+0085 around a body, a `\\v` NDJSON line (`ws-*`)", "400 (or that line rejected alone): JSON whitespace is space, tab, CR, LF", "as bound (`TestBadInput`)"},
	)
}

// neighbour posts one valid event and returns the status (0: no answer)
// and how long the answer took.
func neighbour(ctx context.Context, client *http.Client, base string) (int, time.Duration) {
	body := fmt.Sprintf(`{"type":"play_progress","event_id":%q,"anonymous_id":"n1","platform":"tv","content_id":"n","position_ms":1}`, uuid.NewString())
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, base+"/v1/events", strings.NewReader(body))
	if err != nil {
		return 0, 0
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// neighbours sends n requests from 8 clients, spread over about d, and
// returns their statuses and latencies.
func neighbours(ctx context.Context, client *http.Client, base string, n int, d time.Duration) ([]int, []time.Duration) {
	statuses := make([]int, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	gap := d / time.Duration(n)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				// Open loop: request i leaves at start + i·gap.
				if wait := time.Until(start.Add(time.Duration(i) * gap)); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
				statuses[i], lat[i] = neighbour(ctx, client, base)
			}
		})
	}
	wg.Wait()
	return statuses, lat
}

func count(statuses []int, want int) int {
	n := 0
	for _, s := range statuses {
		if s == want {
			n++
		}
	}
	return n
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

func p50(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadAvg is the machine's 1-minute load average, for the record: the
// suite shares its cores.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// fds is how many descriptors the process has open.
func (p *proc) fds() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatalf("read fds: %v", err)
	}
	return len(ents)
}

// waitFor polls cond every 10 ms until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		<-tick.C
	}
}

func hostPort(t *testing.T, base string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// slowBodies: 600 connections trickle their bodies at 1 byte/s while 200
// valid requests arrive. Slow bodies must not take the slots good clients
// need, and must be cut off at the body deadline.
func (w *world) slowBodies(t *testing.T) {
	ctx := spatetest.Context(t, 2*time.Minute)
	s := w.scenario(t, ctx)
	p := s.start()
	addr := hostPort(t, p.URL)
	const slow = 600
	base := p.fds()
	type answer struct {
		status string
		after  time.Duration
	}
	answers := make(chan answer, slow)
	sctx, stopSlow := context.WithCancel(ctx)
	defer stopSlow()
	var wg sync.WaitGroup
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow connection: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		started := time.Now()
		if _, err := io.WriteString(c, "POST /v1/events HTTP/1.1\r\nHost: spate\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-tick.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		})
		go func() {
			line, _ := bufio.NewReader(c).ReadString('\n')
			answers <- answer{strings.TrimSpace(line), time.Since(started)}
		}()
	}
	waitFor(t, 20*time.Second, "slow connections accepted", func() bool { return p.fds() >= base+slow })

	statuses, lat := neighbours(ctx, s.client, p.URL, 200, 2*time.Second)
	accepted := count(statuses, http.StatusAccepted)

	// Every slow body is answered 408 at the body deadline (5 s by
	// default); give it twice that.
	var timedOut int
	var latest time.Duration
	deadline := time.After(10 * time.Second)
collect:
	for range slow {
		select {
		case a := <-answers:
			if strings.HasPrefix(a.status, "HTTP/1.1 408") {
				timedOut++
				latest = max(latest, a.after)
			}
		case <-deadline:
			break collect
		}
	}
	stopSlow()
	wg.Wait()
	if accepted < 190 {
		t.Errorf("%d of 200 neighbours accepted under %d slow bodies, want ≥ 95%% (statuses: %d×503, %d×no answer)", accepted, slow, count(statuses, 503), count(statuses, 0))
	}
	if timedOut != slow {
		t.Errorf("%d of %d slow bodies answered 408 within 10 s", timedOut, slow)
	}
	p.stop()
	w.report.addHostile(hostileRow{
		Attack:   fmt.Sprintf("%d connections sending a 1,000-byte body at 1 byte/s; 200 valid requests from 8 clients meanwhile", slow),
		Bound:    "≥ 95 % of the valid requests accepted; every slow body answered 408 at `SPATE_BODY_TIMEOUT` (5 s)",
		Measured: fmt.Sprintf("%d/200 accepted, p99 %s; %d/%d slow bodies answered 408, the last after %s", accepted, p99(lat).Round(time.Millisecond), timedOut, slow, latest.Round(10*time.Millisecond)),
	})
}

// rawExchange sends head (and body, if any) on a new connection and
// returns the first status line the server sends.
func rawExchange(t *testing.T, addr, head, body string) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(c, head+body); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "no answer (" + err.Error() + ")", time.Since(start)
	}
	return strings.TrimSpace(line), time.Since(start)
}

// declaredLengths: a body declared far over the limit is refused before
// it is read, and a client that asks first (Expect: 100-continue) is told
// no rather than to go on.
func (w *world) declaredLengths(t *testing.T) {
	ctx := spatetest.Context(t, time.Minute)
	s := w.scenario(t, ctx)
	p := s.start()
	addr := hostPort(t, p.URL)
	const hdr = "POST /v1/events HTTP/1.1\r\nHost: spate\r\nContent-Type: application/json\r\n"
	huge, hugeIn := rawExchange(t, addr, hdr+"Content-Length: 100000000000\r\n\r\n", "{}")
	expect, expectIn := rawExchange(t, addr, hdr+"Content-Length: 5000000000\r\nExpect: 100-continue\r\n\r\n", "")
	gz, gzIn := rawExchange(t, addr, hdr+"Content-Encoding: gzip\r\nContent-Length: 2000000\r\n\r\n", "\x1f\x8b")
	for _, c := range []struct{ name, got string }{{"declared 100 GB", huge}, {"Expect: 100-continue, 5 GB", expect}, {"gzip, 2 MB declared", gz}} {
		if !strings.HasPrefix(c.got, "HTTP/1.1 413") {
			t.Errorf("%s: first answer %q, want 413", c.name, c.got)
		}
	}
	if status, _ := neighbour(ctx, s.client, p.URL); status != http.StatusAccepted {
		t.Errorf("neighbour: %d", status)
	}
	p.stop()
	w.report.addHostile(
		hostileRow{"`Content-Length: 100000000000` and a 2-byte body", "413 before the body is read", fmt.Sprintf("`%s` after %s", huge, hugeIn.Round(10*time.Microsecond))},
		hostileRow{"`Expect: 100-continue` with `Content-Length: 5000000000`", "413, never `100 Continue`", fmt.Sprintf("`%s` after %s", expect, expectIn.Round(10*time.Microsecond))},
		hostileRow{"gzip body declaring 2 MB on the wire", "413 before inflating", fmt.Sprintf("`%s` after %s", gz, gzIn.Round(10*time.Microsecond))},
	)
}

// floodBody is a valid batch of 500 events of about 1.95 KB: 975 KB.
func floodBody() []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	val := strings.Repeat("v", 170)
	for i := range 500 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"play_progress","anonymous_id":"flood-%d","platform":"tv","content_id":"prog-%d","position_ms":%d,"attrs":{`, i, i%50, i)
		for k := range 10 {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":"%s"`, k, val)
		}
		b.WriteString(`}}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// bigBodyFlood: 600 clients post ~975 KB batches back to back while a
// neighbour posts small ones. Request memory must stay within the body
// budget, excess answered 503 at once, and the neighbour answered fast.
func (w *world) bigBodyFlood(t *testing.T) {
	ctx := spatetest.Context(t, 2*time.Minute)
	s := w.scenario(t, ctx)
	// The Fargate task: 2,048 MiB (terraform/variables.tf).
	// The sink takes nothing (writes held, never forwarded): the flood
	// meets a full buffer too, and the emulators never see a write cut
	// off by the kill below (kinesalite dies of an aborted request).
	// Buffered acks: the answer time measures the front door, not the
	// stalled sink.
	stall := []faultproxy.Rule{{Ops: []string{"PutRecords", "SendMessageBatch"}, Blackhole: true}}
	s.kp.Set(stall...)
	s.qp.Set(stall...)
	// One batch in flight: the stalled sink's own request buffers (a 5 MiB
	// PutRecords serialised, then its DLQ fallback) are not what is
	// measured.
	p := s.start("SPATE_MEMORY_LIMIT=2048MiB", "SPATE_ACK_MODE=buffered", "SPATE_BATCH_IN_FLIGHT=1")
	startRSS := p.PeakRSS()
	const flooders = 600
	const floodFor = 6 * time.Second
	// The flood runs in its own process, as an attacker would: its 600
	// goroutines must not share a Go scheduler with the neighbours'
	// client, or the neighbours' latency would measure the test.
	flood := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	flood.Env = append(os.Environ(), floodEnv+"="+p.URL, fmt.Sprintf("SPATE_FLOOD_CLIENTS=%d", flooders), "SPATE_FLOOD_FOR="+floodFor.String())
	var floodOut bytes.Buffer
	flood.Stdout = &floodOut
	flood.Stderr = &floodOut
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	statuses, lat := neighbours(ctx, s.client, p.URL, 100, floodFor-time.Second)
	if err := flood.Wait(); err != nil {
		t.Fatalf("flood: %v\n%s", err, floodOut.String())
	}
	var fs floodStats
	if err := json.Unmarshal(bytes.TrimSpace(floodOut.Bytes()), &fs); err != nil {
		t.Fatalf("flood output %q: %v", floodOut.String(), err)
	}
	peak := p.PeakRSS()
	p.kill() // what the stalled sink holds is not the point here
	answered := len(statuses) - count(statuses, 0)
	tail := p99(lat)
	const bound = 512 << 20
	if peak > bound {
		t.Errorf("peak RSS %s under the flood, bound %s", mib(peak), mib(bound))
	}
	// Every neighbour is answered; how fast is measured and reported, not
	// asserted (no timed assertions: this machine's load is not ours).
	if answered != len(statuses) {
		t.Errorf("neighbours: %d of %d answered, want all", answered, len(statuses))
	}
	if fs.Shed == 0 {
		t.Error("the flood was never shed with 503")
	}
	row := hostileRow{
		Attack: fmt.Sprintf("%d clients posting valid 975 KB batches back to back for %s, the sink stalled (its buffer fills; buffered acks, one batch in flight); a neighbour posting one event every 50 ms", flooders, floodFor),
		Bound:  "peak RSS ≤ 512 MiB with `SPATE_MEMORY_LIMIT=2048MiB` (body budget 32 MiB, GOMEMLIMIT 1,638 MiB); every neighbour answered (p99 measured, target ≤ 1 s); excess shed with 503",
		Measured: fmt.Sprintf("peak RSS %s (at start %s); flood: %d requests, %d × 202, %d × 503, %d cut; neighbours %d/%d answered (%d × 202), p50 %s, p99 %s; load average %s",
			mib(peak), mib(startRSS), fs.Sent, fs.Accepted, fs.Shed, fs.Cut, answered, len(statuses), count(statuses, http.StatusAccepted), p50(lat).Round(time.Millisecond), tail.Round(time.Millisecond), loadAvg()),
	}
	t.Log(row.Measured)
	w.report.addHostile(row)
}

// connFlood: far more connections than SPATE_MAX_CONNS, silent or idle
// after one request. The process holds at most its limit; once they go,
// clients are served again.
func (w *world) connFlood(t *testing.T) {
	ctx := spatetest.Context(t, time.Minute)
	s := w.scenario(t, ctx)
	const limit, silent, idle = 500, 1000, 500
	p := s.start(fmt.Sprintf("SPATE_MAX_CONNS=%d", limit))
	addr := hostPort(t, p.URL)
	base := p.fds()
	baseRSS := p.PeakRSS()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range idle {
		// One request, then idle on keep-alive.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: spate\r\n\r\n")
	}
	for range silent {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 10*time.Second, "the server at its connection limit", func() bool { return p.fds() >= base+limit-1 })
	held := p.fds() - base
	rss := p.PeakRSS()
	if held > limit+8 {
		t.Errorf("%d connections held open, limit %d", held, limit)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	status, took := neighbour(ctx, s.client, p.URL)
	if status != http.StatusAccepted {
		t.Errorf("after the flood: %d", status)
	}
	p.stop()
	w.report.addHostile(hostileRow{
		Attack:   fmt.Sprintf("%d keep-alive connections idle after one request plus %d silent ones, with `SPATE_MAX_CONNS=%d`", idle, silent, limit),
		Bound:    fmt.Sprintf("at most %d connections open (the rest wait in the accept queue); served again once they go", limit),
		Measured: fmt.Sprintf("%d open (%+d MiB RSS); a request right after they closed: %d in %s", held, (rss-baseRSS)>>20, status, took.Round(time.Millisecond)),
	})
}

// floodEnv names the URL a flood process (the test binary re-run, see
// TestMain) posts to.
const floodEnv = "SPATE_FLOOD_URL"

type floodStats struct{ Sent, Accepted, Shed, Cut int64 }

// runFlood is the flood process: SPATE_FLOOD_CLIENTS clients posting
// floodBody back to back, not backing off, for SPATE_FLOOD_FOR. It prints
// its counts as JSON.
func runFlood(base string) int {
	n, _ := strconv.Atoi(os.Getenv("SPATE_FLOOD_CLIENTS"))
	d, err := time.ParseDuration(os.Getenv("SPATE_FLOOD_FOR"))
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "flood: SPATE_FLOOD_CLIENTS and SPATE_FLOOD_FOR required")
		return 2
	}
	body := floodBody()
	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 20 * time.Second}
	var sent, accepted, shed, cut atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/events", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					cut.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusServiceUnavailable:
					shed.Add(1)
				case http.StatusAccepted:
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	out, _ := json.Marshal(floodStats{sent.Load(), accepted.Load(), shed.Load(), cut.Load()})
	fmt.Println(string(out))
	return 0
}

// TestMain runs the flood process when asked to (bigBodyFlood), the tests
// otherwise.
func TestMain(m *testing.M) {
	if base := os.Getenv(floodEnv); base != "" {
		os.Exit(runFlood(base))
	}
	os.Exit(m.Run())
}
