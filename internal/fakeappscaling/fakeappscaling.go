// Package fakeappscaling is an in-process Application Auto Scaling
// endpoint for tests: no emulator exists. It speaks the service's AWS JSON
// 1.1 wire contract (SigV4-signed POSTs with X-Amz-Target
// AnyScaleFrontendService.<Operation>, epoch-second timestamps, errors as
// {"__type", "message"} with status 400) for the scheduled-action calls
// prescale makes, enforces the service's rules with its own error types
// (ObjectNotFoundException for an unregistered target or a missing action,
// ValidationException for a malformed request, LimitExceededException past
// 200 scheduled actions per scalable target), and lets a test inject any
// error, so the real aws-sdk-go-v2 client can be driven against it.
package fakeappscaling

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxScheduledActions is the service's per-target limit.
const MaxScheduledActions = 200

const (
	targetPrefix = "AnyScaleFrontendService."
	contentType  = "application/x-amz-json-1.1"
)

// Action is a stored scheduled action.
type Action struct {
	Name        string
	Namespace   string
	ResourceID  string
	Dimension   string
	Schedule    string
	Timezone    string
	MinCapacity *int32
	MaxCapacity *int32
	Created     time.Time
}

type targetKey struct{ ns, id, dim string }

type injected struct {
	op, typ, msg string
	status       int
	times        int
}

// Server is a fake Application Auto Scaling endpoint; create it with New.
type Server struct {
	// URL is the endpoint to set as the client's BaseEndpoint.
	URL string
	srv *httptest.Server

	mu      sync.Mutex
	now     func() time.Time
	targets map[targetKey]map[string]*Action
	calls   map[string]int
	inject  []*injected
}

// New starts a server with no scalable targets.
func New() *Server {
	s := &Server{now: time.Now, targets: map[targetKey]map[string]*Action{}, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// HTTPClient returns an HTTP client for this server alone, so tests do not
// share pooled connections with other servers.
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// SetClock replaces the server's clock (for CreationTime).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Register registers a scalable target, as RegisterScalableTarget would.
func (s *Server) Register(namespace, resourceID, dimension string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := targetKey{namespace, resourceID, dimension}
	if s.targets[k] == nil {
		s.targets[k] = map[string]*Action{}
	}
}

// Actions returns the target's scheduled actions sorted by name.
func (s *Server) Actions(namespace, resourceID, dimension string) []Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Action
	for _, a := range s.targets[targetKey{namespace, resourceID, dimension}] {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Calls returns how many requests op has received (failed ones too).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Fail makes the next times calls of op fail with the service error typ
// (for example "ConcurrentUpdateException", status 400, or
// "InternalServiceException", status 500).
func (s *Server) Fail(op, typ string, status, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject = append(s.inject, &injected{op: op, typ: typ, msg: "injected by test", status: status, times: times})
}

type apiError struct {
	status   int
	typ, msg string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func validation(format string, args ...any) *apiError {
	return &apiError{400, "ValidationException", fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeErr(w, &apiError{405, "UnknownOperationException", "method " + r.Method})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") || !strings.Contains(r.Header.Get("Authorization"), "/application-autoscaling/aws4_request") || r.Header.Get("X-Amz-Date") == "" {
		writeErr(w, &apiError{400, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != contentType {
		writeErr(w, &apiError{400, "SerializationException", "content type " + ct})
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if !ok {
		writeErr(w, &apiError{400, "UnknownOperationException", "target " + target})
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeErr(w, &apiError{400, "SerializationException", err.Error()})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	for _, inj := range s.inject {
		if inj.op == op && inj.times > 0 {
			inj.times--
			writeErr(w, &apiError{inj.status, inj.typ, inj.msg})
			return
		}
	}
	var out any
	var aerr *apiError
	switch op {
	case "RegisterScalableTarget":
		out, aerr = s.register(body)
	case "PutScheduledAction":
		out, aerr = s.put(body)
	case "DescribeScheduledActions":
		out, aerr = s.describe(body)
	case "DeleteScheduledAction":
		out, aerr = s.delete(body)
	default:
		aerr = &apiError{400, "UnknownOperationException", "operation " + op}
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
	w.Header().Set("X-Amzn-Errortype", e.typ)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

func decode(body []byte, v any) *apiError {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{400, "SerializationException", err.Error()}
	}
	return nil
}

var namespaces = map[string]bool{"ecs": true, "elasticmapreduce": true, "ec2": true, "appstream": true, "dynamodb": true, "rds": true, "sagemaker": true, "custom-resource": true, "comprehend": true, "lambda": true, "cassandra": true, "kafka": true, "elasticache": true, "neptune": true, "workspaces": true}

type targetFields struct {
	ServiceNamespace  string
	ResourceId        string
	ScalableDimension string
}

func (t targetFields) check(needDim bool) *apiError {
	if !namespaces[t.ServiceNamespace] {
		return validation("1 validation error detected: Value '%s' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set", t.ServiceNamespace)
	}
	if t.ResourceId == "" || len(t.ResourceId) > 1600 {
		return validation("1 validation error detected: Value at 'resourceId' failed to satisfy constraint: Member must have length between 1 and 1600")
	}
	if needDim && t.ScalableDimension == "" {
		return validation("1 validation error detected: Value null at 'scalableDimension' failed to satisfy constraint: Member must not be null")
	}
	if t.ServiceNamespace == "ecs" && t.ScalableDimension != "" && t.ScalableDimension != "ecs:service:DesiredCount" {
		return validation("Unsupported scalable dimension '%s' for service namespace 'ecs'", t.ScalableDimension)
	}
	if t.ServiceNamespace == "ecs" && !regexp.MustCompile(`^service/[^/]+/[^/]+$`).MatchString(t.ResourceId) {
		return validation("Unsupported resource ID '%s': want service/<cluster>/<service>", t.ResourceId)
	}
	return nil
}

func (s *Server) register(body []byte) (any, *apiError) {
	var in struct {
		targetFields
		MinCapacity, MaxCapacity *int32
		RoleARN                  string
		SuspendedState           json.RawMessage
		Tags                     map[string]string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(true); err != nil {
		return nil, err
	}
	k := targetKey{in.ServiceNamespace, in.ResourceId, in.ScalableDimension}
	if s.targets[k] == nil {
		s.targets[k] = map[string]*Action{}
	}
	return map[string]string{"ScalableTargetARN": "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/fake" + strconv.Itoa(len(s.targets))}, nil
}

// namePattern is the service's: no control characters, ':', '/' or '|'.
var namePattern = regexp.MustCompile(`^[^\x00-\x1f\x7f:/|]{1,256}$`)

var (
	atExpr   = regexp.MustCompile(`^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$`)
	rateExpr = regexp.MustCompile(`^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$`)
	cronExpr = regexp.MustCompile(`^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$`)
)

func (s *Server) put(body []byte) (any, *apiError) {
	var in struct {
		targetFields
		ScheduledActionName  string
		Schedule             *string
		Timezone             *string
		StartTime, EndTime   *float64
		ScalableTargetAction *struct{ MinCapacity, MaxCapacity *int32 }
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(true); err != nil {
		return nil, err
	}
	if !namePattern.MatchString(in.ScheduledActionName) || strings.TrimSpace(in.ScheduledActionName) != in.ScheduledActionName {
		return nil, validation("1 validation error detected: Value '%s' at 'scheduledActionName' failed to satisfy constraint", in.ScheduledActionName)
	}
	actions := s.targets[targetKey{in.ServiceNamespace, in.ResourceId, in.ScalableDimension}]
	if actions == nil {
		return nil, &apiError{400, "ObjectNotFoundException", fmt.Sprintf("No scalable target registered for service namespace: %s, resource ID: %s, scalable dimension: %s", in.ServiceNamespace, in.ResourceId, in.ScalableDimension)}
	}
	existing := actions[in.ScheduledActionName]
	if existing == nil && in.Schedule == nil {
		return nil, validation("Schedule is required when creating a scheduled action")
	}
	if in.Schedule != nil {
		sch := *in.Schedule
		if m := atExpr.FindStringSubmatch(sch); m != nil {
			if _, err := time.Parse("2006-01-02T15:04:05", m[1]); err != nil {
				return nil, validation("Invalid at expression: %s", sch)
			}
		} else if !rateExpr.MatchString(sch) && !cronExpr.MatchString(sch) {
			return nil, validation("Invalid schedule expression: %s", sch)
		}
	}
	if in.Timezone != nil {
		if _, err := time.LoadLocation(*in.Timezone); err != nil {
			return nil, validation("Invalid time zone: %s", *in.Timezone)
		}
	}
	if in.StartTime != nil && in.EndTime != nil && *in.EndTime <= *in.StartTime {
		return nil, validation("EndTime must be after StartTime")
	}
	var minC, maxC *int32
	if t := in.ScalableTargetAction; t != nil {
		minC, maxC = t.MinCapacity, t.MaxCapacity
		if minC != nil && *minC < 0 || maxC != nil && *maxC < 0 {
			return nil, validation("Capacity must not be negative")
		}
		if minC != nil && maxC != nil && *minC > *maxC {
			return nil, validation("Minimum capacity cannot be greater than maximum capacity")
		}
	}
	if existing == nil && len(actions) >= MaxScheduledActions {
		return nil, &apiError{400, "LimitExceededException", fmt.Sprintf("The maximum number of scheduled actions (%d) for this scalable target has been reached", MaxScheduledActions)}
	}
	if existing == nil {
		existing = &Action{Name: in.ScheduledActionName, Namespace: in.ServiceNamespace, ResourceID: in.ResourceId, Dimension: in.ScalableDimension, Created: s.now().UTC()}
		actions[in.ScheduledActionName] = existing
	}
	// PutScheduledAction replaces what it is given.
	if in.Schedule != nil {
		existing.Schedule = *in.Schedule
	}
	existing.Timezone = ""
	if in.Timezone != nil {
		existing.Timezone = *in.Timezone
	}
	if in.ScalableTargetAction != nil {
		existing.MinCapacity, existing.MaxCapacity = minC, maxC
	}
	return struct{}{}, nil
}

type wireAction struct {
	ScheduledActionName  string
	ScheduledActionARN   string
	ServiceNamespace     string
	Schedule             string
	Timezone             string `json:",omitempty"`
	ResourceId           string
	ScalableDimension    string
	ScalableTargetAction *struct {
		MinCapacity *int32 `json:",omitempty"`
		MaxCapacity *int32 `json:",omitempty"`
	} `json:",omitempty"`
	CreationTime float64
}

func (s *Server) describe(body []byte) (any, *apiError) {
	var in struct {
		targetFields
		ScheduledActionNames []string
		MaxResults           *int32
		NextToken            *string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(false); err != nil {
		return nil, err
	}
	if in.ScalableDimension != "" && in.ResourceId == "" {
		return nil, validation("ResourceId is required when ScalableDimension is given")
	}
	limit := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, validation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 50", *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	names := map[string]bool{}
	for _, n := range in.ScheduledActionNames {
		names[n] = true
	}
	var all []*Action
	for k, actions := range s.targets {
		if k.ns != in.ServiceNamespace || in.ResourceId != "" && k.id != in.ResourceId || in.ScalableDimension != "" && k.dim != in.ScalableDimension {
			continue
		}
		for _, a := range actions {
			if len(names) == 0 || names[a.Name] {
				all = append(all, a)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	start := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(*in.NextToken)
		if err != nil || n < 0 || n > len(all) {
			return nil, &apiError{400, "InvalidNextTokenException", "Invalid token"}
		}
		start = n
	}
	end := min(start+limit, len(all))
	out := struct {
		ScheduledActions []wireAction
		NextToken        *string `json:",omitempty"`
	}{ScheduledActions: []wireAction{}}
	for _, a := range all[start:end] {
		wa := wireAction{
			ScheduledActionName: a.Name,
			ScheduledActionARN:  "arn:aws:autoscaling:us-east-1:123456789012:scheduledAction:fake:resource/" + a.ResourceID + ":scheduledActionName/" + a.Name,
			ServiceNamespace:    a.Namespace,
			Schedule:            a.Schedule,
			Timezone:            a.Timezone,
			ResourceId:          a.ResourceID,
			ScalableDimension:   a.Dimension,
			CreationTime:        math.Round(float64(a.Created.UnixMilli())) / 1000,
		}
		if a.MinCapacity != nil || a.MaxCapacity != nil {
			wa.ScalableTargetAction = &struct {
				MinCapacity *int32 `json:",omitempty"`
				MaxCapacity *int32 `json:",omitempty"`
			}{a.MinCapacity, a.MaxCapacity}
		}
		out.ScheduledActions = append(out.ScheduledActions, wa)
	}
	if end < len(all) {
		tok := strconv.Itoa(end)
		out.NextToken = &tok
	}
	return out, nil
}

func (s *Server) delete(body []byte) (any, *apiError) {
	var in struct {
		targetFields
		ScheduledActionName string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(true); err != nil {
		return nil, err
	}
	actions := s.targets[targetKey{in.ServiceNamespace, in.ResourceId, in.ScalableDimension}]
	if actions[in.ScheduledActionName] == nil {
		return nil, &apiError{400, "ObjectNotFoundException", fmt.Sprintf("No scheduled action found for service namespace: %s, resource ID: %s, scalable dimension: %s, scheduled action name: %s", in.ServiceNamespace, in.ResourceId, in.ScalableDimension, in.ScheduledActionName)}
	}
	delete(actions, in.ScheduledActionName)
	return struct{}{}, nil
}
