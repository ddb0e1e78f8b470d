package ingest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/registry"
)

// realServer serves api the way spate does (HTTPServer on LimitListener),
// not through httptest's defaults: the timeouts are what is tested.
func realServer(t *testing.T, cfg ingest.Config) (*ingest.Server, string) {
	t.Helper()
	prod := batch.NewProducer(&store{}, batch.Config{Policy: batch.Policy{Age: time.Millisecond}}, discard)
	api := ingest.New(registry.New(registry.Limits{}), prod, cfg, discard)
	ln, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.HTTPServer(api.Routes())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close()
		_ = prod.Close(ctx)
	})
	return api, ln.Addr().String()
}

const validEvent = `{"type":"click","anonymous_id":"a1","platform":"web","content_id":"c1"}`

// exchange writes raw on a new connection and returns the first line of
// the answer ("" when the connection closed without one).
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestSlowBodiesHoldNoSlot(t *testing.T) {
	api, addr := realServer(t, ingest.Config{MaxInFlight: 8, BodyTimeout: time.Second})
	const slow = 32 // four times the slots
	answers := make(chan string, slow)
	var conns []net.Conn
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		// Headers and one byte of a 1,000-byte body, then nothing.
		if _, err := io.WriteString(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		go func() {
			line, _ := bufio.NewReader(c).ReadString('\n')
			answers <- strings.TrimSpace(line)
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Every slow request is in its handler, reading: each holds a first
	// chunk of the budget.
	deadline := time.Now().Add(5 * time.Second)
	for api.Stats().Snapshot().BodyBytes < slow*1000 {
		if time.Now().After(deadline) {
			t.Fatalf("slow requests not reading: %+v", api.Stats().Snapshot())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 20 {
		resp, err := client.Post("http://"+addr+"/v1/events", "application/json", strings.NewReader(validEvent))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("neighbour %d: %d while %d bodies trickle", i, resp.StatusCode, slow)
		}
	}
	for range slow {
		if a := <-answers; !strings.HasPrefix(a, "HTTP/1.1 408") {
			t.Errorf("slow body answered %q, want 408", a)
		}
	}
	if n := api.Stats().Snapshot().Requests[http.StatusRequestTimeout]; n != slow {
		t.Errorf("%d body timeouts counted, want %d", n, slow)
	}
}

func TestDeclaredLengthOverLimitRefusedBeforeReading(t *testing.T) {
	_, addr := realServer(t, ingest.Config{})
	hdr := "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	for name, raw := range map[string]string{
		"100 GB declared, 2 bytes sent":  hdr + "Content-Length: 100000000000\r\n\r\n{}",
		"Expect: 100-continue with 5 GB": hdr + "Content-Length: 5000000000\r\nExpect: 100-continue\r\n\r\n",
		"just over the limit":            hdr + fmt.Sprintf("Content-Length: %d\r\n\r\n", 1<<20+1),
	} {
		if got := exchange(t, addr, raw); !strings.HasPrefix(got, "HTTP/1.1 413") {
			t.Errorf("%s: %q, want 413 at once", name, got)
		}
	}
	// Within the limit, Expect: 100-continue is told to go on.
	if got := exchange(t, addr, hdr+fmt.Sprintf("Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(validEvent))); got != "HTTP/1.1 100 Continue" {
		t.Errorf("Expect within the limit: %q, want 100 Continue", got)
	}
}

func TestBodyBudgetShedsLargeKeepsSmall(t *testing.T) {
	const budget = 512 << 10
	api, addr := realServer(t, ingest.Config{BodyMemory: budget, BodyTimeout: 5 * time.Second})
	hdr := "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	// Two 200 KB bodies half sent hold 400 KB of the 448 KB open to
	// large bodies.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, hdr+"Content-Length: 200000\r\n\r\n"+strings.Repeat(" ", 100000)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for api.Stats().Snapshot().BodyBytes < 400000 {
		if time.Now().After(deadline) {
			t.Fatalf("bodies not held: %+v", api.Stats().Snapshot())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, hdr+"Content-Length: 200000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a third large body: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// A small request still gets through, on the reserve.
	r2, err := http.Post("http://"+addr+"/v1/events", "application/json", strings.NewReader(validEvent))
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusAccepted {
		t.Errorf("a small request while large ones hold the budget: %d", r2.StatusCode)
	}
	if s := api.Stats().Snapshot(); s.ShedMemory != 1 {
		t.Errorf("ShedMemory %d, want 1", s.ShedMemory)
	}
}

func TestBodyBudgetIsReturned(t *testing.T) {
	api, addr := realServer(t, ingest.Config{})
	body := `{"events":[` + strings.Repeat(validEvent+",", 299) + validEvent + `]}`
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			resp, err := http.Post("http://"+addr+"/v1/events", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := api.Stats().Snapshot().BodyBytes; n != 0 {
		t.Errorf("%d bytes still charged after every request ended", n)
	}
}

func TestIdleKeepAliveClosed(t *testing.T) {
	_, addr := realServer(t, ingest.Config{IdleTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// Idle now: the server closes the connection (EOF), well before the
	// client's 5 s deadline.
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("idle keep-alive connection: %v, want EOF", err)
	}
}

func TestConnectionLimit(t *testing.T) {
	api, addr := realServer(t, ingest.Config{MaxConns: 4})
	var conns []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for api.Stats().Snapshot().Conns < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("connections not accepted: %+v", api.Stats().Snapshot())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	if n := api.Stats().Snapshot().Conns; n != 4 {
		t.Errorf("%d connections open, limit 4", n)
	}
	for _, c := range conns {
		c.Close()
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("after the others closed: %v", err)
	}
	resp.Body.Close()
}

// TestVaryOriginOnEveryCORSAnswer: whether an answer carries
// Access-Control-Allow-Origin depends on Origin, allowed or not, so every
// answer says so to caches.
func TestVaryOriginOnEveryCORSAnswer(t *testing.T) {
	any := newHarness(t, ingest.Config{}, batch.Config{})
	limited := newHarness(t, ingest.Config{AllowedOrigins: []string{"https://areena.example"}}, batch.Config{})
	for _, c := range []struct {
		name   string
		h      *harness
		method string
		origin string
	}{
		{"allowed origin", limited, http.MethodPost, "https://areena.example"},
		{"origin not allowed", limited, http.MethodPost, "https://evil.example"},
		{"preflight not allowed", limited, http.MethodOptions, "https://evil.example"},
		{"no origin", limited, http.MethodPost, ""},
		{"any origin", any, http.MethodPost, "https://areena.example"},
		{"any origin, none sent", any, http.MethodPost, ""},
	} {
		hdr := map[string]string{}
		if c.origin != "" {
			hdr["Origin"] = c.origin
		}
		res := c.h.do(t, c.method, "application/json", validEvent, hdr)
		if res.header.Get("Vary") != "Origin" {
			t.Errorf("%s: Vary %q, want Origin", c.name, res.header.Values("Vary"))
		}
	}
}
