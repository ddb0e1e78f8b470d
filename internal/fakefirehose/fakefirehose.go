// Package fakefirehose is an in-process Amazon Data Firehose endpoint for
// tests: no Firehose emulator exists. It speaks PutRecordBatch's wire
// contract as AWS does — a SigV4-signed POST with X-Amz-Target
// Firehose_20150804.PutRecordBatch and an application/x-amz-json-1.1 body
// carrying base64 data — enforces the service's limits with the service's
// error types, and answers per-record failures inside a 200 the way AWS
// does, so the real aws-sdk-go-v2 client can be driven against it.
package fakefirehose

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Firehose's PutRecordBatch limits.
const (
	MaxRecords     = 500
	MaxRecordBytes = 1_000 << 10 // before base64
	MaxCallBytes   = 4 << 20     // the records' data summed
)

const (
	target      = "Firehose_20150804.PutRecordBatch"
	contentType = "application/x-amz-json-1.1"
)

// streamName is Firehose's DeliveryStreamName pattern and length.
var streamName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Server is a fake Firehose endpoint. Its zero value is not usable; call New.
type Server struct {
	// URL is the endpoint to set as the client's BaseEndpoint.
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	streams  map[string][][]byte // accepted records per stream
	calls    map[string]int      // PutRecordBatch calls per stream
	throttle int                 // calls still to refuse whole
	fail     func(stream string, data []byte) string
	next     int  // record id counter
	discard  bool // count accepted records without keeping them
	accepted map[string]int
}

// New starts a server with the named delivery streams.
func New(streams ...string) *Server {
	s := &Server{streams: map[string][][]byte{}, calls: map[string]int{}, accepted: map[string]int{}}
	for _, name := range streams {
		s.streams[name] = nil
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Records returns copies of the records stream accepted, in order.
func (s *Server) Records(stream string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.streams[stream]))
	for i, r := range s.streams[stream] {
		out[i] = slices.Clone(r)
	}
	return out
}

// Accepted returns how many records stream accepted.
func (s *Server) Accepted(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted[stream]
}

// Discard stops keeping accepted records (they are still counted), for
// benchmarks.
func (s *Server) Discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discard = true
}

// Calls returns how many PutRecordBatch calls named stream, refused ones
// included.
func (s *Server) Calls(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[stream]
}

// Throttle makes the next n calls fail whole with
// ServiceUnavailableException, as Firehose does past a stream's throughput.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// FailRecords injects per-record failures: f returns the ErrorCode for a
// record ("ServiceUnavailableException" or "InternalFailure", as AWS
// documents) or "" to accept it. Nil accepts every record.
func (s *Server) FailRecords(f func(stream string, data []byte) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

type request struct {
	DeliveryStreamName string
	Records            []struct {
		Data []byte // base64 on the wire; encoding/json decodes it
	}
}

type entry struct {
	RecordId     string `json:",omitempty"`
	ErrorCode    string `json:",omitempty"`
	ErrorMessage string `json:",omitempty"`
}

type response struct {
	Encrypted        bool
	FailedPutCount   int
	RequestResponses []entry
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", "fake-request-id")
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeError(w, http.StatusNotFound, "UnknownOperationException", "")
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") ||
		!strings.Contains(r.Header.Get("Authorization"), "/firehose/aws4_request"):
		writeError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	case r.Header.Get("X-Amz-Target") != target:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	case r.Header.Get("Content-Type") != contentType:
		writeError(w, http.StatusBadRequest, "SerializationException", "Unexpected content type")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "Could not parse request body")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[req.DeliveryStreamName]++
	if !streamName.MatchString(req.DeliveryStreamName) {
		writeError(w, http.StatusBadRequest, "InvalidArgumentException", "Invalid DeliveryStreamName")
		return
	}
	if n := len(req.Records); n == 0 || n > MaxRecords {
		writeError(w, http.StatusBadRequest, "InvalidArgumentException",
			fmt.Sprintf("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and %d (was %d)", MaxRecords, n))
		return
	}
	total := 0
	for _, rec := range req.Records {
		if len(rec.Data) > MaxRecordBytes {
			writeError(w, http.StatusBadRequest, "InvalidArgumentException",
				fmt.Sprintf("Record size (%d bytes) exceeds the %d bytes limit", len(rec.Data), MaxRecordBytes))
			return
		}
		total += len(rec.Data)
	}
	if total > MaxCallBytes {
		writeError(w, http.StatusBadRequest, "InvalidArgumentException",
			fmt.Sprintf("Records size (%d bytes) exceeds the %d bytes limit for a PutRecordBatch request", total, MaxCallBytes))
		return
	}
	accepted, ok := s.streams[req.DeliveryStreamName]
	if !ok {
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException",
			fmt.Sprintf("Firehose %s under account 123456789012 not found.", req.DeliveryStreamName))
		return
	}
	if s.throttle > 0 {
		s.throttle--
		writeError(w, http.StatusInternalServerError, "ServiceUnavailableException", "Slow down.")
		return
	}
	out := response{RequestResponses: make([]entry, len(req.Records))}
	for i, rec := range req.Records {
		if s.fail != nil {
			if code := s.fail(req.DeliveryStreamName, rec.Data); code != "" {
				out.RequestResponses[i] = entry{ErrorCode: code, ErrorMessage: "Injected failure."}
				out.FailedPutCount++
				continue
			}
		}
		s.next++
		out.RequestResponses[i] = entry{RecordId: fmt.Sprintf("%056x", s.next)}
		s.accepted[req.DeliveryStreamName]++
		if !s.discard {
			accepted = append(accepted, rec.Data)
		}
	}
	s.streams[req.DeliveryStreamName] = accepted
	w.Header().Set("Content-Type", contentType)
	_ = json.NewEncoder(w).Encode(out)
}

// writeError answers as AWS JSON 1.1 services do: the error type in
// __type and the X-Amzn-ErrorType header, the text in message.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
