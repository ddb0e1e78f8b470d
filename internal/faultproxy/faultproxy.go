// Package faultproxy is an HTTP proxy that sits in front of an AWS API
// emulator (kinesalite, local-aws-sqs, the Firehose fake) and injects the
// faults the real services produce: throttling of a whole call or of single
// records inside a 200, 5xx answers, calls that were applied but answered
// with an error, latency, calls that hang, and the endpoint going away.
// Tests switch faults at runtime while real SDK clients talk through it.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Rule is one fault. A call matches when its operation (the X-Amz-Target
// suffix, e.g. "PutRecords", "SendMessageBatch") is in Ops, or always when
// Ops is empty; the first matching rule applies, except that a rule whose
// Every skips this call passes it on to the next matching rule.
type Rule struct {
	Ops []string
	// Latency delays the call before it is forwarded.
	Latency time.Duration
	// Blackhole holds the call until the client gives up or the rules
	// change; nothing is forwarded.
	Blackhole bool
	// Status answers the call with this HTTP status and an AWS JSON error
	// of type ErrorType instead of forwarding it (defaults by status: 400
	// ProvisionedThroughputExceededException, 500 InternalFailure, 503
	// ServiceUnavailable). With AfterForward the call is forwarded first
	// and its real answer replaced: applied, but reported as failed.
	Status       int
	ErrorType    string
	AfterForward bool
	// Every applies Status to one call in Every (0 or 1: all).
	Every int
	// RecordFailure is the fraction of entries of PutRecords,
	// PutRecordBatch and SendMessageBatch refused inside a successful
	// answer; refused entries are not forwarded. RecordErrorCode is their
	// code (defaults: ProvisionedThroughputExceededException for Kinesis,
	// ServiceUnavailableException for Firehose, InternalError for SQS).
	RecordFailure   float64
	RecordErrorCode string
}

func (r Rule) matches(op string) bool {
	if len(r.Ops) == 0 {
		return true
	}
	for _, o := range r.Ops {
		if o == op {
			return true
		}
	}
	return false
}

// Stats counts what the proxy did, by operation.
type Stats struct {
	Calls          map[string]int // calls received
	Forwarded      map[string]int // calls passed to the target
	Injected       map[string]int // calls answered with an injected error
	RecordsRefused map[string]int // entries refused inside successful answers
	Refused        int            // connections refused or reset while down
}

// Proxy forwards HTTP calls to one target with faults applied.
type Proxy struct {
	target string
	client *http.Client
	addr   string

	mu      sync.Mutex
	rules   []Rule
	changed chan struct{} // closed when the rules change
	down    bool
	ln      net.Listener
	srv     *http.Server
	conns   map[net.Conn]struct{}
	counter map[string]int // calls per rule index, for Every
	rnd     *rand.Rand
	stats   Stats
	closed  bool
}

// New starts a proxy on 127.0.0.1 in front of target, a base URL such as
// "http://127.0.0.1:4567". seed makes record-level faults reproducible.
func New(target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy listen: %w", err)
	}
	p := &Proxy{
		target:  strings.TrimSuffix(target, "/"),
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		addr:    ln.Addr().String(),
		changed: make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
		counter: map[string]int{},
		rnd:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		stats:   Stats{Calls: map[string]int{}, Forwarded: map[string]int{}, Injected: map[string]int{}, RecordsRefused: map[string]int{}},
	}
	p.serve(ln)
	return p, nil
}

// URL is the proxy's base URL, to use as the client's endpoint.
func (p *Proxy) URL() string { return "http://" + p.addr }

func (p *Proxy) serve(ln net.Listener) {
	srv := &http.Server{
		Handler: http.HandlerFunc(p.handle),
		ConnState: func(c net.Conn, s http.ConnState) {
			p.mu.Lock()
			defer p.mu.Unlock()
			switch s {
			case http.StateNew:
				if p.down {
					p.stats.Refused++
					_ = c.Close()
					return
				}
				p.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(p.conns, c)
			}
		},
	}
	p.mu.Lock()
	p.ln, p.srv = ln, srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Set replaces the rules; calls held by a blackhole are released.
func (p *Proxy) Set(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
	p.counter = map[string]int{}
	close(p.changed)
	p.changed = make(chan struct{})
}

// Clear removes every rule.
func (p *Proxy) Clear() { p.Set() }

// Down makes the endpoint unreachable: the listener closes, so new
// connections are refused, and open ones are cut.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down || p.closed {
		return
	}
	p.down = true
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	close(p.changed)
	p.changed = make(chan struct{})
}

// Up listens again on the same address after Down.
func (p *Proxy) Up() error {
	p.mu.Lock()
	if !p.down || p.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faultproxy relisten %s: %w", p.addr, err)
	}
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
	p.serve(ln)
	return nil
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	srv := p.srv
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	return srv.Close()
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return Stats{Calls: cp(p.stats.Calls), Forwarded: cp(p.stats.Forwarded), Injected: cp(p.stats.Injected),
		RecordsRefused: cp(p.stats.RecordsRefused), Refused: p.stats.Refused}
}

// operation returns "PutRecords" for "X-Amz-Target: Kinesis_20131202.PutRecords".
func operation(r *http.Request) string {
	t := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	if a := r.URL.Query().Get("Action"); a != "" { // SQS query protocol
		return a
	}
	return t
}

func (p *Proxy) handle(w http.ResponseWriter, r *http.Request) {
	op := operation(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.stats.Refused++
		p.mu.Unlock()
		cut(w)
		return
	}
	p.stats.Calls[op]++
	var ru Rule
	fire, found := false, false
	for i := range p.rules {
		if !p.rules[i].matches(op) {
			continue
		}
		key := fmt.Sprint(i)
		p.counter[key]++
		if r := p.rules[i]; r.Every <= 1 || p.counter[key]%r.Every == 0 {
			ru, fire = r, true
			break
		}
		if !found {
			// Skipped by Every: applies without its Status unless a
			// later rule fires.
			ru, found = p.rules[i], true
		}
	}
	changed := p.changed
	p.mu.Unlock()

	if ru.Latency > 0 {
		t := time.NewTimer(ru.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if ru.Blackhole {
		select {
		case <-r.Context().Done():
			return
		case <-changed:
			// Rules changed: the caller retries and meets the new ones.
			cut(w)
			return
		}
	}
	if ru.Status != 0 && fire && !ru.AfterForward {
		p.inject(w, r, op, ru)
		return
	}
	if ru.RecordFailure > 0 {
		if shape, ok := shapeOf(op); ok {
			p.partial(w, r, op, body, shape, ru)
			return
		}
	}
	status, hdr, resp, err := p.forward(r, op, body)
	if err != nil {
		cut(w)
		return
	}
	if ru.Status != 0 && fire && ru.AfterForward {
		p.inject(w, r, op, ru)
		return
	}
	copyHeader(w.Header(), hdr)
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

// cut drops the connection without an answer, as a crashed endpoint does.
func cut(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if strings.EqualFold(k, "Content-Length") {
			continue
		}
		dst[k] = vs
	}
}

func (p *Proxy) forward(r *http.Request, op string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Connection") {
			continue
		}
		req.Header[k] = vs
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	p.mu.Lock()
	p.stats.Forwarded[op]++
	p.mu.Unlock()
	return resp.StatusCode, resp.Header, out, nil
}

func defaultErrorType(status int) string {
	switch {
	case status == http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case status >= 500:
		return "InternalFailure"
	default:
		return "ProvisionedThroughputExceededException"
	}
}

// inject answers with an AWS JSON protocol error, as the services do.
func (p *Proxy) inject(w http.ResponseWriter, r *http.Request, op string, ru Rule) {
	p.mu.Lock()
	p.stats.Injected[op]++
	p.mu.Unlock()
	typ := ru.ErrorType
	if typ == "" {
		typ = defaultErrorType(ru.Status)
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/x-amz-json-1.1"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Amzn-ErrorType", typ)
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.") {
		// SQS JSON answers name the legacy query error too.
		w.Header().Set("X-Amzn-Query-Error", typ+";"+map[bool]string{true: "Sender", false: "Receiver"}[ru.Status < 500])
	}
	w.WriteHeader(ru.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": "injected by faultproxy"})
}

// shape says where a batch call keeps its entries and results.
type shape struct {
	entries     string // request array
	results     string // response array, aligned with entries (Kinesis, Firehose)
	failedCount string // response count of failed entries
	code        string // default error code of a refused entry
	sqs         bool   // results by Id in Successful/Failed instead
}

func shapeOf(op string) (shape, bool) {
	switch op {
	case "PutRecords":
		return shape{entries: "Records", results: "Records", failedCount: "FailedRecordCount", code: "ProvisionedThroughputExceededException"}, true
	case "PutRecordBatch":
		return shape{entries: "Records", results: "RequestResponses", failedCount: "FailedPutCount", code: "ServiceUnavailableException"}, true
	case "SendMessageBatch":
		return shape{entries: "Entries", code: "InternalError", sqs: true}, true
	}
	return shape{}, false
}

// partial refuses a random part of a batch call's entries, forwards the
// rest and merges both into one answer aligned with the request.
func (p *Proxy) partial(w http.ResponseWriter, r *http.Request, op string, body []byte, sh shape, ru Rule) {
	var req map[string]json.RawMessage
	var entries []json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || json.Unmarshal(req[sh.entries], &entries) != nil {
		status, hdr, resp, err := p.forward(r, op, body)
		if err != nil {
			cut(w)
			return
		}
		copyHeader(w.Header(), hdr)
		w.WriteHeader(status)
		_, _ = w.Write(resp)
		return
	}
	code := ru.RecordErrorCode
	if code == "" {
		code = sh.code
	}
	refused := make([]bool, len(entries))
	var pass []json.RawMessage
	p.mu.Lock()
	for i := range entries {
		refused[i] = p.rnd.Float64() < ru.RecordFailure
		if !refused[i] {
			pass = append(pass, entries[i])
		}
	}
	p.stats.RecordsRefused[op] += len(entries) - len(pass)
	p.mu.Unlock()

	var fwd map[string]json.RawMessage
	if len(pass) > 0 {
		req[sh.entries], _ = json.Marshal(pass)
		nb, _ := json.Marshal(req)
		status, hdr, resp, err := p.forward(r, op, nb)
		if err != nil {
			cut(w)
			return
		}
		if status != http.StatusOK || json.Unmarshal(resp, &fwd) != nil {
			copyHeader(w.Header(), hdr)
			w.WriteHeader(status)
			_, _ = w.Write(resp)
			return
		}
	} else {
		fwd = map[string]json.RawMessage{}
	}
	out, err := merge(sh, code, entries, refused, fwd)
	if err != nil {
		cut(w)
		return
	}
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func merge(sh shape, code string, entries []json.RawMessage, refused []bool, fwd map[string]json.RawMessage) ([]byte, error) {
	if sh.sqs {
		var ok, failed []json.RawMessage
		if err := unmarshalOpt(fwd["Successful"], &ok); err != nil {
			return nil, err
		}
		if err := unmarshalOpt(fwd["Failed"], &failed); err != nil {
			return nil, err
		}
		for i, e := range entries {
			if !refused[i] {
				continue
			}
			var id struct{ Id string }
			_ = json.Unmarshal(e, &id)
			f, _ := json.Marshal(map[string]any{"Id": id.Id, "Code": code, "Message": "injected by faultproxy", "SenderFault": false})
			failed = append(failed, f)
		}
		if ok == nil {
			ok = []json.RawMessage{}
		}
		fwd["Successful"], _ = json.Marshal(ok)
		fwd["Failed"], _ = json.Marshal(failed)
		return json.Marshal(fwd)
	}
	var got []json.RawMessage
	if err := unmarshalOpt(fwd[sh.results], &got); err != nil {
		return nil, err
	}
	var prevFailed int
	_ = unmarshalOpt(fwd[sh.failedCount], &prevFailed)
	results := make([]json.RawMessage, len(entries))
	j := 0
	for i := range entries {
		if refused[i] {
			results[i], _ = json.Marshal(map[string]string{"ErrorCode": code, "ErrorMessage": "injected by faultproxy"})
			prevFailed++
			continue
		}
		if j >= len(got) {
			return nil, errors.New("faultproxy: target answered fewer entries than sent")
		}
		results[i] = got[j]
		j++
	}
	fwd[sh.results], _ = json.Marshal(results)
	fwd[sh.failedCount], _ = json.Marshal(prevFailed)
	return json.Marshal(fwd)
}

func unmarshalOpt(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}
