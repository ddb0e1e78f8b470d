// Package ingest is the HTTP front door of spate: it decodes and validates
// interaction events against the registry and answers 202 only once every
// accepted event is durable (in the stream or its dead-letter queue).
package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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
	// MaxInFlight bounds concurrent POSTs (and so request memory); beyond
	// it requests are shed with 503 (default 512).
	MaxInFlight int
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
}

// Server serves the ingest HTTP API.
type Server struct {
	reg      *registry.Registry
	producer Producer
	cfg      Config
	log      *slog.Logger
	stats    *Stats
	keys     map[[32]byte]string
	inflight chan struct{}
	draining atomic.Bool
	bufs     sync.Pool
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
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
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
		r.With(s.apiKey, s.limit).Post("/v1/events", s.postEvents)
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
				if allowed != "*" {
					h.Add("Vary", "Origin")
				}
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
				writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or unknown X-Api-Key", Field: "X-Api-Key"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limit sheds requests beyond MaxInFlight with 503 rather than queueing
// them: memory stays bounded under any overload.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inflight <- struct{}{}:
			defer func() { <-s.inflight }()
			next.ServeHTTP(w, r)
		default:
			s.stats.shed.Add(1)
			s.unavailable(w, "too many requests in flight")
		}
	})
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
		s.fail(w, herr)
		return
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 2*int(s.cfg.MaxBodyBytes) {
			s.bufs.Put(buf)
		}
	}()
	// The wire bytes are bounded too: a gzip body is never larger than
	// what it inflates to, short of pathological inputs.
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	if herr := readBody(body, gz, s.cfg.MaxBodyBytes, buf); herr != nil {
		s.fail(w, herr)
		return
	}
	raws, herr := splitEvents(buf.Bytes(), f, s.cfg.MaxEvents)
	if herr != nil {
		s.fail(w, herr)
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
