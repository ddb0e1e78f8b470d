// Package fakekinesisctl is an in-process Kinesis Data Streams control
// plane for tests of capacity changes: kinesalite has no UpdateShardCount
// and no warm throughput. It speaks the AWS JSON 1.1 wire contract as
// Kinesis does (SigV4-signed POSTs with X-Amz-Target
// Kinesis_20131202.<Operation>, epoch-second timestamps, errors as
// {"__type", "message"} with status 400) for DescribeStreamSummary,
// UpdateShardCount and UpdateStreamWarmThroughput, and enforces the
// service's limits with its error types: LimitExceededException for more
// than 10 UpdateShardCount calls in a rolling 24 hours, for scaling past
// double or below half the open shards, past 10,000 shards or the account's
// shard quota; ResourceInUseException while a change runs;
// ResourceNotFoundException; ValidationException. Any error can be
// injected. Time is the test's: SetClock moves it, Settle completes a
// change, so no test sleeps.
package fakekinesisctl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	targetPrefix = "Kinesis_20131202."
	contentType  = "application/x-amz-json-1.1"
	account      = "123456789012"
	// UpdatesPerDay is UpdateShardCount's limit per stream in a rolling
	// 24 hours; MaxShardsPerStream its ceiling.
	UpdatesPerDay      = 10
	MaxShardsPerStream = 10000
	// MaxWarmMiBps is an on-demand stream's warm throughput ceiling.
	MaxWarmMiBps = 10240
)

// Config sets the account's side of the fake.
type Config struct {
	// ShardQuota is the account's shard quota in the region (default
	// 20,000).
	ShardQuota int
	// WarmThroughput says the account has MinimumThroughputBillingCommitment
	// and so may set warm throughput on on-demand streams.
	WarmThroughput bool
	// AutoSettle completes every change at once instead of leaving the
	// stream UPDATING until Settle.
	AutoSettle bool
}

// Stream is a stream's state.
type Stream struct {
	Name, ARN      string
	OnDemand       bool
	Status         string
	OpenShards     int
	PendingShards  int
	WarmCurrent    int
	WarmTarget     int
	ShardUpdates   []time.Time
	CreatedAt      time.Time
	pendingWarmSet bool
}

type injected struct {
	op, typ string
	status  int
	times   int
}

// Server is a fake Kinesis control plane; create it with New.
type Server struct {
	// URL is the endpoint to set as the client's BaseEndpoint.
	URL string
	srv *httptest.Server
	cfg Config

	mu      sync.Mutex
	now     func() time.Time
	streams map[string]*Stream
	calls   map[string]int
	inject  []*injected
}

// New starts a server with no streams.
func New(cfg Config) *Server {
	if cfg.ShardQuota <= 0 {
		cfg.ShardQuota = 20000
	}
	s := &Server{cfg: cfg, now: time.Now, streams: map[string]*Stream{}, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// HTTPClient returns an HTTP client for this server alone.
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// SetClock replaces the server's clock.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddStream adds an ACTIVE provisioned stream with shards open shards.
func (s *Server) AddStream(name string, shards int) {
	s.add(name, false, shards)
}

// AddOnDemandStream adds an ACTIVE on-demand stream.
func (s *Server) AddOnDemandStream(name string) {
	s.add(name, true, 4)
}

func (s *Server) add(name string, onDemand bool, shards int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[name] = &Stream{Name: name, ARN: "arn:aws:kinesis:us-east-1:" + account + ":stream/" + name, OnDemand: onDemand, Status: "ACTIVE", OpenShards: shards, CreatedAt: s.now().UTC()}
}

// Settle completes the stream's running change, as Kinesis does after a
// few minutes.
func (s *Server) Settle(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[name]; st != nil {
		settle(st)
	}
}

func settle(st *Stream) {
	if st.Status != "UPDATING" {
		return
	}
	if st.PendingShards > 0 {
		st.OpenShards, st.PendingShards = st.PendingShards, 0
	}
	if st.pendingWarmSet {
		st.WarmCurrent, st.pendingWarmSet = st.WarmTarget, false
	}
	st.Status = "ACTIVE"
}

// Stream returns a copy of the stream's state.
func (s *Server) Stream(name string) Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := *s.streams[name]
	st.ShardUpdates = append([]time.Time(nil), st.ShardUpdates...)
	return st
}

// Calls returns how many requests op has received (failed ones too).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Fail makes the next times calls of op fail with the error typ.
func (s *Server) Fail(op, typ string, status, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject = append(s.inject, &injected{op: op, typ: typ, status: status, times: times})
}

type apiError struct {
	status   int
	typ, msg string
}

func errf(typ, format string, args ...any) *apiError {
	return &apiError{400, typ, fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if r.Method != http.MethodPost || !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/kinesis/aws4_request") || r.Header.Get("X-Amz-Date") == "" {
		writeErr(w, &apiError{400, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != contentType {
		writeErr(w, errf("SerializationException", "content type %s", ct))
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok {
		writeErr(w, errf("UnknownOperationException", "target %s", r.Header.Get("X-Amz-Target")))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeErr(w, errf("SerializationException", "%v", err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	for _, inj := range s.inject {
		if inj.op == op && inj.times > 0 {
			inj.times--
			writeErr(w, &apiError{inj.status, inj.typ, "injected by test"})
			return
		}
	}
	var out any
	var aerr *apiError
	switch op {
	case "DescribeStreamSummary":
		out, aerr = s.describe(body)
	case "UpdateShardCount":
		out, aerr = s.updateShardCount(body)
	case "UpdateStreamWarmThroughput":
		out, aerr = s.updateWarm(body)
	default:
		aerr = errf("UnknownOperationException", "operation %s", op)
	}
	if aerr != nil {
		writeErr(w, aerr)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", strconv.Itoa(s.calls[op]))
	_ = json.NewEncoder(w).Encode(out)
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

type ident struct {
	StreamName *string
	StreamARN  *string
	StreamId   *string
}

func (s *Server) lookup(id ident) (*Stream, *apiError) {
	if id.StreamName == nil && id.StreamARN == nil {
		return nil, errf("InvalidArgumentException", "Either StreamName or StreamARN should be provided.")
	}
	for _, st := range s.streams {
		if id.StreamName != nil && *id.StreamName != st.Name || id.StreamARN != nil && *id.StreamARN != st.ARN {
			continue
		}
		return st, nil
	}
	name := ""
	if id.StreamName != nil {
		name = *id.StreamName
	} else {
		name = *id.StreamARN
	}
	return nil, errf("ResourceNotFoundException", "Stream %s under account %s not found.", name, account)
}

func decode(body []byte, v any) *apiError {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errf("SerializationException", "%v", err)
	}
	return nil
}

func mode(st *Stream) string {
	if st.OnDemand {
		return "ON_DEMAND"
	}
	return "PROVISIONED"
}

func (s *Server) describe(body []byte) (any, *apiError) {
	var in ident
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, aerr := s.lookup(in)
	if aerr != nil {
		return nil, aerr
	}
	sum := map[string]any{
		"StreamName":              st.Name,
		"StreamARN":               st.ARN,
		"StreamStatus":            st.Status,
		"StreamModeDetails":       map[string]string{"StreamMode": mode(st)},
		"RetentionPeriodHours":    24,
		"StreamCreationTimestamp": float64(st.CreatedAt.Unix()),
		"EnhancedMonitoring":      []map[string]any{{"ShardLevelMetrics": []string{}}},
		"EncryptionType":          "NONE",
		"OpenShardCount":          st.OpenShards,
		"ConsumerCount":           0,
	}
	if st.OnDemand && (st.WarmTarget > 0 || st.WarmCurrent > 0) {
		sum["WarmThroughput"] = map[string]int{"TargetMiBps": st.WarmTarget, "CurrentMiBps": st.WarmCurrent}
	}
	return map[string]any{"StreamDescriptionSummary": sum}, nil
}

func (s *Server) openShards() int {
	n := 0
	for _, st := range s.streams {
		n += max(st.OpenShards, st.PendingShards)
	}
	return n
}

func (s *Server) updateShardCount(body []byte) (any, *apiError) {
	var in struct {
		ident
		TargetShardCount *int
		ScalingType      string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ScalingType != "UNIFORM_SCALING" {
		return nil, errf("ValidationException", "1 validation error detected: Value '%s' at 'scalingType' failed to satisfy constraint: Member must satisfy enum value set: [UNIFORM_SCALING]", in.ScalingType)
	}
	if in.TargetShardCount == nil || *in.TargetShardCount < 1 {
		return nil, errf("ValidationException", "1 validation error detected: Value at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1")
	}
	st, aerr := s.lookup(in.ident)
	if aerr != nil {
		return nil, aerr
	}
	target := *in.TargetShardCount
	now := s.now().UTC()
	switch {
	case st.OnDemand:
		return nil, errf("ValidationException", "UpdateShardCount is not supported for stream %s in ON_DEMAND capacity mode.", st.Name)
	case st.Status != "ACTIVE":
		return nil, errf("ResourceInUseException", "Stream %s under account %s not ACTIVE, instead in state %s", st.Name, account, st.Status)
	case target > 2*st.OpenShards:
		return nil, errf("LimitExceededException", "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: %d Target shard count: %d", st.OpenShards, target)
	case 2*target < st.OpenShards:
		return nil, errf("LimitExceededException", "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: %d Target shard count: %d", st.OpenShards, target)
	case target > MaxShardsPerStream:
		return nil, errf("LimitExceededException", "UpdateShardCount cannot scale up to over %d shards in a stream.", MaxShardsPerStream)
	case s.openShards()+target > s.cfg.ShardQuota:
		// Splits and merges keep parent shards open while they run.
		return nil, errf("LimitExceededException", "This request would exceed the shard limit for the account %s in us-east-1. Current limit: %d.", account, s.cfg.ShardQuota)
	}
	recent := st.ShardUpdates[:0:0]
	for _, t := range st.ShardUpdates {
		if now.Sub(t) < 24*time.Hour {
			recent = append(recent, t)
		}
	}
	if len(recent) >= UpdatesPerDay {
		return nil, errf("LimitExceededException", "Stream %s under account %s has exceeded its limit of %d UpdateShardCount calls in a rolling 24-hour period.", st.Name, account, UpdatesPerDay)
	}
	st.ShardUpdates = append(recent, now)
	cur := st.OpenShards
	st.PendingShards, st.Status = target, "UPDATING"
	if s.cfg.AutoSettle {
		settle(st)
	}
	return map[string]any{"StreamName": st.Name, "StreamARN": st.ARN, "CurrentShardCount": cur, "TargetShardCount": target}, nil
}

func (s *Server) updateWarm(body []byte) (any, *apiError) {
	var in struct {
		ident
		WarmThroughputMiBps *int
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.WarmThroughputMiBps == nil || *in.WarmThroughputMiBps < 0 {
		return nil, errf("ValidationException", "1 validation error detected: Value at 'warmThroughputMiBps' failed to satisfy constraint: Member must have value greater than or equal to 0")
	}
	st, aerr := s.lookup(in.ident)
	if aerr != nil {
		return nil, aerr
	}
	v := *in.WarmThroughputMiBps
	switch {
	case !st.OnDemand:
		return nil, errf("ValidationException", "Warm throughput is only supported for streams in ON_DEMAND capacity mode.")
	case !s.cfg.WarmThroughput:
		return nil, errf("ValidationException", "Warm throughput requires MinimumThroughputBillingCommitment to be enabled for the account.")
	case v > MaxWarmMiBps:
		return nil, errf("LimitExceededException", "Warm throughput cannot exceed %d MiBps.", MaxWarmMiBps)
	case st.Status != "ACTIVE":
		return nil, errf("ResourceInUseException", "Stream %s under account %s not ACTIVE, instead in state %s", st.Name, account, st.Status)
	}
	st.WarmTarget, st.pendingWarmSet, st.Status = v, true, "UPDATING"
	if s.cfg.AutoSettle {
		settle(st)
	}
	return map[string]any{"StreamName": st.Name, "StreamARN": st.ARN, "WarmThroughput": map[string]int{"TargetMiBps": st.WarmTarget, "CurrentMiBps": st.WarmCurrent}}, nil
}
