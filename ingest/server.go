// Package ingest is the HTTP front door of spate: it decodes and validates
// interaction events against the registry and answers 202 only once every
// accepted event is durable (in the stream or its dead-letter queue).
package ingest

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/registry"
)

// Producer takes accepted records and resolves a ticket once they are
// durable (batch.Producer).
type Producer interface {
	Submit(recs []spate.Record) (*batch.Ticket, error)
}

// Config holds the service's knobs; zero values take the defaults.
type Config struct {
	MaxBodyBytes int64 // after decompression, default 1 MiB
	MaxEvents    int   // per request, default 500
	// MaxInFlight bounds the POSTs being decoded and waiting for their
	// events to be stored; beyond it requests are shed with 503 (default
	// 512). Bodies are read before a slot is taken: a slow client never
	// holds one.
	MaxInFlight int
	// BodyMemory bounds the bytes all request bodies hold at once, after
	// decompression and as they arrive (default 64 MiB; spate ingest sizes
	// it from the task's memory). A request that would exceed it is
	// answered 503 + Retry-After at once; the last eighth is kept for
	// bodies under 128 KiB, so large bodies cannot starve small ones.
	BodyMemory int64
	// BodyTimeout is how long a request's body may take to arrive once
	// its headers have (default 5 s, i.e. at least 200 KiB/s for a 1 MiB
	// body); slower bodies are answered 408 and their connection closed.
	BodyTimeout time.Duration
	// MaxConns bounds open connections on the listener from Listen
	// (default 4096); beyond it new connections wait in the kernel's
	// accept queue.
	MaxConns int
	// IdleTimeout closes keep-alive connections idle this long (default
	// 75 s). Behind an ALB it must exceed the ALB's idle timeout (60 s):
	// the ALB then always closes an idle connection first, and never
	// sends a request on one the task is closing (a 502 to the client).
	IdleTimeout time.Duration
	// AckTimeout bounds how long a request waits for its events to become
	// durable before it is answered 503 (default 10 s).
	AckTimeout time.Duration
	// RetryAfter is the Retry-After sent with 503s (default 1 s).
	RetryAfter time.Duration
	// AllowedOrigins for CORS; empty means "*" (beacons carry no
	// credentials).
	AllowedOrigins []string
	// APIKeys maps accepted X-Api-Key values to client app names; empty
	// disables the check.
	APIKeys map[string]string
	// Ready reports whether a sink can accept events; nil means always.
	Ready func() bool
	// Now stamps received_at and bounds occurred_at; nil is the wall clock
	// (internal/clock).
	Now func() time.Time
	// Failed keeps every rejected event and undecodable body
	// (failed.Keeper); nil keeps none. The answer does not wait for it.
	Failed Keeper
}

// Keeper keeps what ingest rejects, with the reason; it must not block.
type Keeper interface {
	Keep(raw []byte, err error, receivedAt time.Time)
}

// recordOverhead is what a record adds to its event's JSON: the fields the
// server sets and the record itself.
const recordOverhead = 128

// Server serves the ingest HTTP API.
type Server struct {
	reg      *registry.Registry
	producer Producer
	cfg      Config
	log      *slog.Logger
	stats    *Stats
	keys     map[[32]byte]string
	inflight chan struct{}
	mem      *budget
	conns    atomic.Int64
	draining atomic.Bool
	pools
}

// New returns a Server.
func New(reg *registry.Registry, producer Producer, cfg Config, log *slog.Logger) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 500
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 512
	}
	if cfg.BodyMemory <= 0 {
		cfg.BodyMemory = 64 << 20
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 5 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4096
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 75 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	cfg.Now = clock.Or(cfg.Now)
	s := &Server{
		reg: reg, producer: producer, cfg: cfg, log: log, stats: newStats(reg),
		inflight: make(chan struct{}, cfg.MaxInFlight),
		mem:      &budget{limit: cfg.BodyMemory, reserve: cfg.BodyMemory / 8},
	}
	s.stats.bodyBytes = s.mem.used.Load
	s.stats.conns = s.conns.Load
	if len(cfg.APIKeys) > 0 {
		// Keys are compared by hash: a map lookup on the hash leaks
		// nothing about a key's bytes through timing.
		s.keys = make(map[[32]byte]string, len(cfg.APIKeys))
		for k, app := range cfg.APIKeys {
			s.keys[sha256.Sum256([]byte(k))] = app
		}
	}
	return s
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return s.stats }

// Drain marks the server not ready, so the load balancer stops sending it
// traffic while in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

// Routes returns the HTTP routes.
func (s *Server) Routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not found"})
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Group(func(r chi.Router) {
		r.Use(s.cors)
		r.Options("/v1/events", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
		r.With(s.apiKey).Post("/v1/events", s.postEvents)
	})
	return r
}

func (s *Server) ready() bool {
	return !s.draining.Load() && (s.cfg.Ready == nil || s.cfg.Ready())
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready() {
		status := "no sink can accept events"
		if s.draining.Load() {
			status = "draining"
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": status})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every answer here depends on Origin, allowed or not (with "*"
		// too: no Origin, no Access-Control-Allow-Origin), so a cache
		// must key on it.
		w.Header().Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin != "" {
			allowed := "*"
			if len(s.cfg.AllowedOrigins) > 0 {
				allowed = ""
				for _, o := range s.cfg.AllowedOrigins {
					if o == origin || o == "*" {
						allowed = o
						break
					}
				}
			}
			if allowed != "" {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", allowed)
				if r.Method == http.MethodOptions {
					h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
					h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, X-Api-Key")
					h.Set("Access-Control-Max-Age", "600")
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) apiKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.keys != nil {
			key := r.Header.Get("X-Api-Key")
			if _, ok := s.keys[sha256.Sum256([]byte(key))]; key == "" || !ok {
				s.stats.request(http.StatusUnauthorized)
				unread(w)
				writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or unknown X-Api-Key", Field: "X-Api-Key"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// unread is for answers given without reading the body: the connection
// closes after the answer, at once. Otherwise net/http would first try to
// read and discard up to 256 KiB of it, which a slow client stretches to
// the read deadline, and a client that sent Expect: 100-continue is never
// told to go on.
func unread(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	w.Header().Set("Connection", "close")
}

func (s *Server) unavailable(w http.ResponseWriter, msg string) {
	s.stats.request(http.StatusServiceUnavailable)
	w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg})
}

type errorBody struct {
	Error    string      `json:"error"`
	Field    string      `json:"field,omitempty"`
	Rejected []rejection `json:"rejected,omitempty"`
}

type rejection struct {
	Index int    `json:"index"`
	Field string `json:"field,omitempty"`
	Error string `json:"error"`
}

type accepted struct {
	Accepted int         `json:"accepted"`
	Rejected []rejection `json:"rejected"`
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	received := s.cfg.Now()
	f, gz, herr := contentFormat(r)
	if herr != nil {
		s.refuse(w, herr)
		return
	}
	// Refused before a byte of the body is read (and before any 100
	// Continue): a declared length over the limit. The wire bytes are
	// bounded too: a gzip body is never larger than what it inflates to,
	// short of pathological inputs.
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.refuse(w, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", s.cfg.MaxBodyBytes))
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	b, herr := s.readBody(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), gz, r.ContentLength)
	defer b.free()
	if herr != nil {
		s.refuse(w, herr)
		return
	}
	// Read in full: no deadline while the events are stored (the server's
	// own WriteTimeout bounds the answer).
	_ = rc.SetReadDeadline(time.Time{})

	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		s.stats.shed.Add(1)
		s.unavailable(w, "too many requests in flight")
		return
	}
	raws, herr := splitEvents(b.buf, f, s.cfg.MaxEvents)
	if herr != nil {
		if herr.status == http.StatusBadRequest && s.cfg.Failed != nil {
			s.cfg.Failed.Keep(b.buf, herr, received)
		}
		s.fail(w, herr)
		return
	}
	// The records are copies of the events: charged too until the
	// producer, which bounds its own buffer, has them.
	if !b.charge(int64(len(b.buf)) + recordOverhead*int64(len(raws))) {
		s.unavailable(w, s.overMemory().msg)
		return
	}

	recs := make([]spate.Record, 0, len(raws))
	rejected := []rejection{}
	for i, raw := range raws {
		e, err := s.reg.Decode(raw, received)
		if err != nil {
			rj := rejection{Index: i, Error: err.Error()}
			var fe *spate.FieldError
			if errors.As(err, &fe) {
				rj.Field = fe.Field
			}
			s.stats.reject(rj.Field, err)
			rejected = append(rejected, rj)
			if s.cfg.Failed != nil {
				s.cfg.Failed.Keep(raw, err, received)
			}
			continue
		}
		recs = append(recs, spate.Record{PartitionKey: e.PartitionKey(), Data: e.AppendJSON(make([]byte, 0, len(raw)+96))})
	}
	if len(recs) == 0 {
		s.stats.request(http.StatusBadRequest)
		msg := "no valid events"
		field := ""
		if len(raws) == 1 {
			msg, field = rejected[0].Error, rejected[0].Field
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: msg, Field: field, Rejected: rejected})
		return
	}

	ticket, err := s.producer.Submit(recs)
	b.free() // nothing refers to the body any more
	if err != nil {
		if errors.Is(err, spate.ErrOverloaded) {
			s.unavailable(w, "overloaded: buffer full, retry later")
		} else {
			s.unavailable(w, "not accepting events: "+err.Error())
		}
		return
	}
	if err := ticket.WaitFor(s.cfg.AckTimeout); err != nil {
		s.stats.unstored.Add(int64(len(recs)))
		s.log.Warn("events not stored", "events", len(recs), "err", err)
		s.unavailable(w, "events could not be stored, retry later")
		return
	}
	s.stats.accepted.Add(int64(len(recs)))
	s.stats.request(http.StatusAccepted)
	if len(rejected) == 0 {
		// The common answer, written without reflection.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		b := make([]byte, 0, 40)
		b = append(b, `{"accepted":`...)
		b = strconv.AppendInt(b, int64(len(recs)), 10)
		b = append(b, ",\"rejected\":[]}\n"...)
		_, _ = w.Write(b)
		return
	}
	writeJSON(w, http.StatusAccepted, accepted{Accepted: len(recs), Rejected: rejected})
}

// refuse answers herr with the body (partly) unread: the connection is
// closed after the answer.
func (s *Server) refuse(w http.ResponseWriter, herr *httpError) {
	unread(w)
	if herr.status == http.StatusServiceUnavailable {
		s.unavailable(w, herr.msg)
		return
	}
	s.fail(w, herr) // a late body's 408 is counted with the other statuses
}

func (s *Server) fail(w http.ResponseWriter, herr *httpError) {
	s.stats.request(herr.status)
	s.stats.reject("body", herr)
	writeJSON(w, herr.status, errorBody{Error: herr.msg, Field: herr.field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
