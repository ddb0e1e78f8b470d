package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/registry"
)

// badCase is one file of testdata/badinput: directives, then the request.
//
//	# expect: 400            status the request must get
//	# field: occurred_at     a field the JSON error must name (top-level or rejected[])
//	# accepted: 2            for a 202, how many events were accepted
//	# rejected: 1,2          indices of the batch the answer must list as rejected
//	# why: ...               what the case is about
//	# body-file: x.gz        the body is that file, not what follows
//	POST /v1/events
//	Content-Type: application/json
//
//	body bytes; {{now+48h}} becomes a timestamp relative to the test's clock
type badCase struct {
	name     string
	expect   int
	field    string
	accepted int
	rejected []int
	why      string
	method   string
	path     string
	header   http.Header
	body     []byte
}

var nowPlaceholder = regexp.MustCompile(`\{\{now([+-][0-9hms]+)\}\}`)

func loadBadCase(dir, file string, now time.Time) (badCase, error) {
	raw, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return badCase{}, err
	}
	c := badCase{name: strings.TrimSuffix(file, ".http"), header: http.Header{}, accepted: -1}
	r := bufio.NewReader(bytes.NewReader(raw))
	readLine := func() (string, error) {
		l, err := r.ReadString('\n')
		return strings.TrimRight(l, "\r\n"), err
	}
	line, err := readLine()
	for ; err == nil && strings.HasPrefix(line, "#"); line, err = readLine() {
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "#"), ":")
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "expect":
			c.expect, err = strconv.Atoi(v)
		case "field":
			c.field = v
		case "accepted":
			c.accepted, err = strconv.Atoi(v)
		case "rejected":
			for part := range strings.SplitSeq(v, ",") {
				var n int
				if n, err = strconv.Atoi(strings.TrimSpace(part)); err != nil {
					break
				}
				c.rejected = append(c.rejected, n)
			}
		case "why":
			c.why = v
		case "body-file":
			c.body, err = os.ReadFile(filepath.Join(dir, v))
		default:
			err = fmt.Errorf("unknown directive %q", k)
		}
		if err != nil {
			return c, fmt.Errorf("%s: %w", file, err)
		}
	}
	if err != nil {
		return c, fmt.Errorf("%s: no request line: %w", file, err)
	}
	method, path, ok := strings.Cut(line, " ")
	if !ok {
		return c, fmt.Errorf("%s: bad request line %q", file, line)
	}
	c.method, c.path = method, path
	for {
		line, err = readLine()
		if err != nil && err != io.EOF {
			return c, err
		}
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return c, fmt.Errorf("%s: bad header %q", file, line)
		}
		c.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		if err == io.EOF {
			break
		}
	}
	if c.body == nil {
		rest, _ := io.ReadAll(r)
		c.body = nowPlaceholder.ReplaceAllFunc(rest, func(m []byte) []byte {
			d, err := time.ParseDuration(string(nowPlaceholder.FindSubmatch(m)[1]))
			if err != nil {
				return m
			}
			return []byte(now.Add(d).UTC().Format(time.RFC3339))
		})
	}
	if c.expect == 0 || c.why == "" {
		return c, fmt.Errorf("%s: expect and why are required", file)
	}
	return c, nil
}

// recordingSink keeps what the producer writes.
type recordingSink struct {
	mu   sync.Mutex
	data [][]byte
}

func (s *recordingSink) Put(_ context.Context, recs []spate.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.data = append(s.data, bytes.Clone(r.Data))
	}
	return nil
}

func (s *recordingSink) find(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.data {
		if bytes.Contains(d, []byte(`"event_id":"`+id+`"`)) {
			return d
		}
	}
	return nil
}

// TestBadInput replays every request of testdata/badinput against the
// ingest handler, each at the same time as a valid neighbour request: the
// bad one gets its documented status and a JSON error naming the field,
// never a 5xx; the neighbour's event is accepted and stored intact.
func TestBadInput(t *testing.T) {
	dir := filepath.Join(spatetest.RepoRoot(t), "testdata", "badinput")
	files, err := filepath.Glob(filepath.Join(dir, "*.http"))
	if err != nil || len(files) < 40 {
		t.Fatalf("corpus: %d files (%v)", len(files), err)
	}
	sink := &recordingSink{}
	prod := batch.NewProducer(sink, batch.Config{Policy: batch.Policy{Age: time.Millisecond}}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = prod.Close(context.Background()) })
	var logs bytes.Buffer
	var logMu sync.Mutex
	srv := ingest.New(registry.New(registry.Limits{}), prod, ingest.Config{}, slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, nil)))
	ts := httptest.NewServer(srv.Routes())
	t.Cleanup(ts.Close)

	for _, f := range files {
		c, err := loadBadCase(dir, filepath.Base(f), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		t.Run(c.name, func(t *testing.T) {
			id := uuid.NewString()
			neighbour := fmt.Sprintf(`{"type":"play_progress","event_id":%q,"anonymous_id":"n1","platform":"tv","content_id":"n-%s","position_ms":42,"attrs":{"why":%q}}`, id, c.name, c.why)
			var wg sync.WaitGroup
			var nStatus int
			var nErr error
			wg.Go(func() {
				resp, err := ts.Client().Post(ts.URL+"/v1/events", "application/json", strings.NewReader(neighbour))
				if err != nil {
					nErr = err
					return
				}
				resp.Body.Close()
				nStatus = resp.StatusCode
			})
			req, err := http.NewRequest(c.method, ts.URL+c.path, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = c.header
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c.why, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wg.Wait()

			if resp.StatusCode >= 500 {
				t.Fatalf("%s: status %d: %s", c.why, resp.StatusCode, body)
			}
			if resp.StatusCode != c.expect {
				t.Fatalf("%s: status %d, want %d: %s", c.why, resp.StatusCode, c.expect, truncate(body))
			}
			var answer struct {
				Error    string `json:"error"`
				Field    string `json:"field"`
				Accepted *int   `json:"accepted"`
				Rejected []struct {
					Index int    `json:"index"`
					Field string `json:"field"`
					Error string `json:"error"`
				} `json:"rejected"`
			}
			if err := json.Unmarshal(body, &answer); err != nil {
				t.Fatalf("%s: answer is not JSON: %v: %s", c.why, err, truncate(body))
			}
			if c.expect >= 400 && answer.Error == "" {
				t.Errorf("%s: no error message: %s", c.why, truncate(body))
			}
			if c.field != "" {
				named := answer.Field == c.field
				for _, rj := range answer.Rejected {
					named = named || rj.Field == c.field
				}
				if !named {
					t.Errorf("%s: error does not name field %q: %s", c.why, c.field, truncate(body))
				}
			}
			if c.accepted >= 0 && (answer.Accepted == nil || *answer.Accepted != c.accepted) {
				t.Errorf("%s: accepted %v, want %d: %s", c.why, answer.Accepted, c.accepted, truncate(body))
			}

			if c.rejected != nil {
				var got []int
				for _, rj := range answer.Rejected {
					got = append(got, rj.Index)
				}
				if !slices.Equal(got, c.rejected) {
					t.Errorf("%s: rejected indices %v, want %v: %s", c.why, got, c.rejected, truncate(body))
				}
			}

			if nErr != nil || nStatus != http.StatusAccepted {
				t.Fatalf("neighbour request: status %d, %v", nStatus, nErr)
			}
			stored := sink.find(id)
			if stored == nil {
				t.Fatal("neighbour event not stored")
			}
			var e spate.Event
			if err := json.Unmarshal(stored, &e); err != nil {
				t.Fatalf("neighbour event stored as invalid JSON: %v", err)
			}
			if p, ok := e.Prop("position_ms"); e.String("content_id") != "n-"+c.name || e.Attrs["why"] != c.why || !ok || p.Int != 42 {
				t.Fatalf("neighbour event altered: %s", stored)
			}
		})
	}
	logMu.Lock()
	defer logMu.Unlock()
	if bytes.Contains(logs.Bytes(), []byte("panic")) {
		t.Errorf("the handler logged a panic:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// badInputSection lists the corpus, with the status TestBadInput holds
// each request to, in the report.
func (w *world) badInputSection(t *testing.T) {
	dir := filepath.Join(spatetest.RepoRoot(t), "testdata", "badinput")
	files, err := filepath.Glob(filepath.Join(dir, "*.http"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Bad input\n\n`TestBadInput` replays each of the %d requests of `testdata/badinput/` against the ingest handler at the same time as a valid neighbour request. Each gets the status below and a JSON error naming the field where one is given, nothing answers 5xx or panics, and the neighbour's event is accepted and stored unchanged. Fuzz targets cover the decoders behind them (`make fuzz`).\n\n| request | status | field | why |\n|---|--:|---|---|\n", len(files))
	for _, f := range files {
		c, err := loadBadCase(dir, filepath.Base(f), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		field := c.field
		if field != "" {
			field = "`" + field + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %d | %s | %s |\n", c.name, c.expect, field, strings.ReplaceAll(c.why, "|", "\\|"))
	}
	w.report.section(b.String())
}
