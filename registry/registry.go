// Package registry is the single source of truth for spate's event types:
// which fields each type allows and requires, how each is validated, and the
// columns the lake (Parquet locally, Glue + Firehose in AWS) stores. The
// docs in docs/events.md and the Glue columns terraform reads are generated
// from it and tested to be current.
package registry

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/spate-dev/spate"
)

// Kind is a field's storage type.
type Kind int

// The kinds a field can have.
const (
	String Kind = iota
	Int64
	Bool
	Timestamp
	StringMap
)

// GlueType is the Glue/Hive column type Firehose converts the field to.
func (k Kind) GlueType() string {
	switch k {
	case Int64:
		return "bigint"
	case Bool:
		return "boolean"
	case Timestamp:
		return "timestamp"
	case StringMap:
		return "map<string,string>"
	default:
		return "string"
	}
}

func (k Kind) jsonName() string {
	switch k {
	case Int64:
		return "integer"
	case Bool:
		return "boolean"
	case Timestamp:
		return "RFC 3339 timestamp"
	case StringMap:
		return "object of strings"
	default:
		return "string"
	}
}

// Field describes one event field.
type Field struct {
	Name   string
	Kind   Kind
	Doc    string
	MaxLen int      // strings: bytes; StringMap: bytes per key and value
	Enum   []string // allowed values, when non-empty
	// LowCardinality marks strings worth dictionary encoding in Parquet.
	LowCardinality bool

	// Typed accessors; the one matching Kind is set. Validation uses them
	// directly: boxing every field into an interface cost an allocation
	// per field per event on the ingest hot path.
	str  func(e *spate.Event) string
	i64  func(e *spate.Event) *int64
	bool func(e *spate.Event) *bool
	time func(e *spate.Event) time.Time
	smap func(e *spate.Event) map[string]string
}

// IsSet reports whether the field is set in e.
func (f *Field) IsSet(e *spate.Event) bool {
	switch f.Kind {
	case Int64:
		return f.i64(e) != nil
	case Bool:
		return f.bool(e) != nil
	case Timestamp:
		return !f.time(e).IsZero()
	case StringMap:
		return len(f.smap(e)) > 0
	default:
		return f.str(e) != ""
	}
}

// Value returns the field's value in e, typed by Kind (string, int64, bool,
// time.Time, map[string]string), and whether it is set.
func (f *Field) Value(e *spate.Event) (any, bool) {
	if !f.IsSet(e) {
		return nil, false
	}
	switch f.Kind {
	case Int64:
		return *f.i64(e), true
	case Bool:
		return *f.bool(e), true
	case Timestamp:
		return f.time(e), true
	case StringMap:
		return f.smap(e), true
	default:
		return f.str(e), true
	}
}

// Column is a field as one event type uses it.
type Column struct {
	*Field
	// Required on input. Every lake column is nullable regardless, as
	// Firehose writes them from a Glue schema.
	Required bool
}

// Schema is one event type: the envelope columns, then its own.
type Schema struct {
	Type    string
	Doc     string
	Columns []Column
	allowed map[string]bool
}

// Limits bound what the registry accepts.
type Limits struct {
	MaxFuture time.Duration // occurred_at later than receipt + MaxFuture is rejected
	MaxPast   time.Duration // occurred_at earlier than receipt - MaxPast is rejected
	MaxAttrs  int
	MaxEvent  int // bytes of one event's JSON
}

// DefaultLimits are the documented defaults.
var DefaultLimits = Limits{
	MaxFuture: 24 * time.Hour,
	MaxPast:   30 * 24 * time.Hour,
	MaxAttrs:  20,
	MaxEvent:  32 << 10,
}

// Registry holds every event type's schema. It is immutable after New and
// safe for concurrent use.
type Registry struct {
	limits  Limits
	fields  []*Field // every field, in canonical order
	byName  map[string]*Field
	schemas map[string]*Schema
	types   []string
}

// New returns the registry of spate's event types with the given limits;
// zero fields of limits take DefaultLimits.
func New(limits Limits) *Registry {
	if limits.MaxFuture == 0 {
		limits.MaxFuture = DefaultLimits.MaxFuture
	}
	if limits.MaxPast == 0 {
		limits.MaxPast = DefaultLimits.MaxPast
	}
	if limits.MaxAttrs == 0 {
		limits.MaxAttrs = DefaultLimits.MaxAttrs
	}
	if limits.MaxEvent == 0 {
		limits.MaxEvent = DefaultLimits.MaxEvent
	}
	r := &Registry{limits: limits, byName: map[string]*Field{}, schemas: map[string]*Schema{}}
	for _, f := range fieldDefs() {
		f := f
		r.fields = append(r.fields, &f)
		r.byName[f.Name] = r.fields[len(r.fields)-1]
	}
	for _, td := range typeDefs() {
		s := &Schema{Type: td.name, Doc: td.doc, allowed: map[string]bool{}}
		for _, name := range envelope {
			s.Columns = append(s.Columns, Column{Field: r.byName[name], Required: slices.Contains(envelopeRequired, name)})
		}
		for _, name := range td.required {
			s.Columns = append(s.Columns, Column{Field: r.byName[name], Required: true})
		}
		for _, name := range td.optional {
			s.Columns = append(s.Columns, Column{Field: r.byName[name]})
		}
		for _, c := range s.Columns {
			s.allowed[c.Name] = true
		}
		r.schemas[td.name] = s
		r.types = append(r.types, td.name)
	}
	return r
}

// Limits returns the limits in force.
func (r *Registry) Limits() Limits { return r.limits }

// Types lists the event types in documentation order.
func (r *Registry) Types() []string { return slices.Clone(r.types) }

// Schema returns the schema of typ.
func (r *Registry) Schema(typ string) (*Schema, bool) {
	s, ok := r.schemas[typ]
	return s, ok
}

// Fields lists every field of every type in canonical order.
func (r *Registry) Fields() []*Field { return slices.Clone(r.fields) }

// input mirrors the accepted JSON. Strings stay strings and timestamps stay
// text so every rule can name the field it checks.
type input struct {
	Type         string            `json:"type"`
	EventID      string            `json:"event_id"`
	OccurredAt   string            `json:"occurred_at"`
	UserID       string            `json:"user_id"`
	AnonymousID  string            `json:"anonymous_id"`
	SessionID    string            `json:"session_id"`
	Platform     string            `json:"platform"`
	AppVersion   string            `json:"app_version"`
	Attrs        map[string]string `json:"attrs"`
	Page         string            `json:"page"`
	Referrer     string            `json:"referrer"`
	ContentID    string            `json:"content_id"`
	ImageVariant string            `json:"image_variant"`
	ListID       string            `json:"list_id"`
	Position     *int64            `json:"position"`
	PositionMs   *int64            `json:"position_ms"`
	DurationMs   *int64            `json:"duration_ms"`
	Live         *bool             `json:"live"`
	Reason       string            `json:"reason"`
}

func invalid(field, rule string) error {
	return &spate.FieldError{Field: field, Rule: rule, Err: spate.ErrInvalid}
}

// Decode parses one event's JSON, validates it against its type's schema
// and normalises it: event_id assigned when missing, occurred_at defaulted
// to receivedAt, both timestamps UTC at millisecond precision. Errors are
// *spate.FieldError naming the field and the rule.
func (r *Registry) Decode(raw []byte, receivedAt time.Time) (*spate.Event, error) {
	if len(raw) > r.limits.MaxEvent {
		return nil, &spate.FieldError{Rule: fmt.Sprintf("event larger than %d bytes", r.limits.MaxEvent), Err: spate.ErrTooLarge}
	}
	if !utf8.Valid(raw) {
		return nil, invalid("", "invalid UTF-8")
	}
	var in input
	if err := parseInput(raw, &in); err != nil {
		return nil, err
	}
	e := &spate.Event{
		Type: in.Type, EventID: in.EventID, UserID: in.UserID, AnonymousID: in.AnonymousID,
		SessionID: in.SessionID, Platform: in.Platform, AppVersion: in.AppVersion, Attrs: in.Attrs,
		Page: in.Page, Referrer: in.Referrer, ContentID: in.ContentID, ImageVariant: in.ImageVariant,
		ListID: in.ListID, Position: in.Position, PositionMs: in.PositionMs, DurationMs: in.DurationMs,
		Live: in.Live, Reason: in.Reason,
	}
	if err := r.validate(e, in.OccurredAt, receivedAt); err != nil {
		return nil, err
	}
	return e, nil
}

func (r *Registry) validate(e *spate.Event, occurredAt string, receivedAt time.Time) error {
	if e.Type == "" {
		return invalid("type", "required")
	}
	s, ok := r.schemas[e.Type]
	if !ok {
		return &spate.FieldError{Field: "type", Rule: fmt.Sprintf("unknown type %q (known: %s)", truncate(e.Type, 40), strings.Join(r.types, ", ")), Err: spate.ErrUnknownType}
	}
	for _, f := range r.fields {
		if f.Name == "occurred_at" || f.Name == "received_at" {
			continue
		}
		if !s.allowed[f.Name] && f.IsSet(e) {
			return invalid(f.Name, "not allowed for type "+e.Type)
		}
	}
	for _, c := range s.Columns {
		if c.Name == "occurred_at" || c.Name == "received_at" || c.Name == "event_id" {
			continue
		}
		if !c.IsSet(e) {
			if c.Required {
				return invalid(c.Name, "required")
			}
			continue
		}
		if err := r.check(c.Field, e); err != nil {
			return err
		}
	}
	if e.UserID == "" && e.AnonymousID == "" {
		return invalid("user_id", "user_id or anonymous_id required")
	}
	if e.EventID != "" {
		id, err := uuid.Parse(e.EventID)
		if err != nil || len(e.EventID) != 36 {
			return invalid("event_id", "must be a UUID (8-4-4-4-12 hex)")
		}
		if strings.ContainsAny(e.EventID, "ABCDEF") {
			e.EventID = id.String()
		}
	} else {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("assign event_id: %w", err)
		}
		e.EventID = id.String()
	}
	e.ReceivedAt = receivedAt.UTC().Truncate(time.Millisecond)
	if occurredAt == "" {
		e.OccurredAt = e.ReceivedAt
	} else {
		t, err := time.Parse(time.RFC3339Nano, occurredAt)
		if err != nil {
			return invalid("occurred_at", "must be an RFC 3339 timestamp with offset")
		}
		if t.After(receivedAt.Add(r.limits.MaxFuture)) {
			return invalid("occurred_at", fmt.Sprintf("more than %s in the future", r.limits.MaxFuture))
		}
		if t.Before(receivedAt.Add(-r.limits.MaxPast)) {
			return invalid("occurred_at", fmt.Sprintf("more than %s in the past", r.limits.MaxPast))
		}
		e.OccurredAt = t.UTC().Truncate(time.Millisecond)
	}
	return nil
}

func (r *Registry) check(f *Field, e *spate.Event) error {
	switch f.Kind {
	case String:
		s := f.str(e)
		if f.MaxLen > 0 && len(s) > f.MaxLen {
			return invalid(f.Name, fmt.Sprintf("longer than %d bytes", f.MaxLen))
		}
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, s) {
			return invalid(f.Name, "must be one of "+strings.Join(f.Enum, ", "))
		}
	case Int64:
		if *f.i64(e) < 0 {
			return invalid(f.Name, "must not be negative")
		}
	case StringMap:
		m := f.smap(e)
		if len(m) > r.limits.MaxAttrs {
			return invalid(f.Name, fmt.Sprintf("more than %d keys", r.limits.MaxAttrs))
		}
		for k, val := range m {
			if k == "" || len(k) > f.MaxLen {
				return invalid(f.Name, fmt.Sprintf("keys must be 1 to %d bytes", f.MaxLen))
			}
			if len(val) > f.MaxLen {
				return invalid(f.Name, fmt.Sprintf("values must be at most %d bytes", f.MaxLen))
			}
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
