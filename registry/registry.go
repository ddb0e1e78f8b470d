// Package registry compiles the event schemas (schemas/, JSON Schema files)
// into spate's single source of truth for event types:
// which fields each type allows and requires, how each is validated, and the
// columns the lake (Parquet locally, Glue + Firehose in AWS) stores. The
// docs in docs/events.md and the Glue columns terraform reads are generated
// from it and tested to be current.
package registry

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/schemas"
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

// Field describes one event field, compiled from its property schema.
type Field struct {
	Name   string
	Kind   Kind
	Doc    string
	Format string   // "uuid", "date-time" or ""
	MaxLen int      // strings: characters (maxLength); StringMap: per key and value
	Enum   []string // allowed values, when non-empty
	// Min and Max bound integers (minimum, maximum), when HasMin / HasMax.
	Min, Max       int64
	HasMin, HasMax bool
	MaxKeys        int // StringMap: maxProperties

	LowCardinality bool   // x-spate-dictionary: dictionary-encode in Parquet
	Personal       bool   // x-spate-personal: a personal identifier
	AggregateKey   string // x-spate-aggregate-key: the aggregate key part it fills
	Envelope       bool   // every type has it
	ServerSet      bool   // set by ingest, refused from clients (received_at)

	id  int // index in the registry's union of fields
	env int // which spate.Event envelope field it is (envelope only)
}

// The envelope fields, as Decode sets them on spate.Event.
const (
	envOther = iota
	envEventID
	envUserID
	envAnonymousID
	envSessionID
	envPlatform
	envAppVersion
	envAttrs
)

var envelopeSlots = map[string]int{"event_id": envEventID, "user_id": envUserID, "anonymous_id": envAnonymousID,
	"session_id": envSessionID, "platform": envPlatform, "app_version": envAppVersion, "attrs": envAttrs}

// Value returns the field's value in e, typed by Kind (string, int64, bool,
// time.Time, map[string]string), and whether it is set.
func (f *Field) Value(e *spate.Event) (any, bool) {
	if !f.Envelope {
		p, ok := e.Prop(f.Name)
		if !ok {
			return nil, false
		}
		switch p.Kind {
		case spate.PropInt:
			return p.Int, true
		case spate.PropBool:
			return p.Bool, true
		default:
			return p.Str, p.Str != ""
		}
	}
	var s string
	switch f.Name {
	case "occurred_at", "received_at":
		t := e.OccurredAt
		if f.Name == "received_at" {
			t = e.ReceivedAt
		}
		return t, !t.IsZero()
	case "attrs":
		return e.Attrs, len(e.Attrs) > 0
	case "type":
		s = e.Type
	case "event_id":
		s = e.EventID
	case "user_id":
		s = e.UserID
	case "anonymous_id":
		s = e.AnonymousID
	case "session_id":
		s = e.SessionID
	case "platform":
		s = e.Platform
	case "app_version":
		s = e.AppVersion
	}
	return s, s != ""
}

// Column is a field as one event type uses it.
type Column struct {
	*Field
	// Required on input. Every lake column is nullable regardless, as
	// Firehose writes them from a Glue schema.
	Required bool
}

// Schema is one version of an event type: the envelope columns, then its
// own. Registry.Schema returns a type's newest version, which ingest
// validates against and whose columns the lake table has.
type Schema struct {
	Type    string
	Doc     string
	Version Version
	ID      string // $id
	File    string // path in the schema directory
	// EnvelopeFile is the envelope schema it $refs.
	EnvelopeFile string
	Order        int // x-spate-order: documentation order
	// Table is the lake table (and Glue table, Firehose stream suffix):
	// the type's name for MODEL 1, <type>_v<MODEL> after a breaking change.
	Table string
	// Counts is the aggregate measure this type counts towards
	// (x-spate-aggregate-counts), or "".
	Counts string
	// LoadWeight is the type's share of generated load
	// (x-spate-load-weight); 0 generates none.
	LoadWeight int
	Columns    []Column
	// Versions lists every version of the type, oldest first (on the
	// newest only).
	Versions []*Schema
	col      []int // registry field id → index in Columns, or -1
}

// Column returns the column called name.
func (s *Schema) Column(name string) (Column, bool) {
	for _, c := range s.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Limits bound what the registry accepts.
type Limits struct {
	MaxFuture time.Duration // occurred_at later than receipt + MaxFuture is rejected
	MaxPast   time.Duration // occurred_at earlier than receipt - MaxPast is rejected
	MaxEvent  int           // bytes of one event's JSON
}

// DefaultLimits are the documented defaults.
var DefaultLimits = Limits{
	MaxFuture: 24 * time.Hour,
	MaxPast:   30 * 24 * time.Hour,
	MaxEvent:  32 << 10,
}

// Registry holds every event type's schema. It is immutable after Load
// and safe for concurrent use.
type Registry struct {
	limits  Limits
	fields  []*Field       // the union of every type's fields, in canonical order
	index   map[string]int // client-settable field name → id
	schemas map[string]*Schema
	types   []string
	slots   sync.Pool // []slot of len(fields), reused across Decode calls

	typeID, occurredID int // slots of type and occurred_at
	// byLen indexes the client-settable fields by name length: a key is
	// compared with the one to three names of its length, cheaper than
	// hashing it on the hot path.
	byLen [33][]int
}

// lookup returns the id of the client-settable field called key.
func (r *Registry) lookup(key []byte) (int, bool) {
	if len(key) >= len(r.byLen) {
		return 0, false
	}
	for _, id := range r.byLen[len(key)] {
		if string(key) == r.fields[id].Name {
			return id, true
		}
	}
	return 0, false
}

// New returns the registry of the default schemas (package schemas) with
// the given limits; zero fields of limits take DefaultLimits. The default
// schemas are tested to load, so a failure here is a build defect.
func New(limits Limits) *Registry {
	r, err := Load(schemas.FS, limits)
	if err != nil {
		panic(fmt.Sprintf("registry: default schemas: %v", err))
	}
	return r
}

// FromDir loads the schemas in dir, or the defaults when dir is "".
func FromDir(dir string, limits Limits) (*Registry, error) {
	if dir == "" {
		return Load(schemas.FS, limits)
	}
	return Load(os.DirFS(dir), limits)
}

func newRegistry(limits Limits) *Registry {
	if limits.MaxFuture == 0 {
		limits.MaxFuture = DefaultLimits.MaxFuture
	}
	if limits.MaxPast == 0 {
		limits.MaxPast = DefaultLimits.MaxPast
	}
	if limits.MaxEvent == 0 {
		limits.MaxEvent = DefaultLimits.MaxEvent
	}
	return &Registry{limits: limits, index: map[string]int{}, schemas: map[string]*Schema{}}
}

// add indexes the newest version of every type, in documentation order.
func (r *Registry) add(all []*Schema) error {
	byName := map[string]*Field{}
	keyed := map[string]string{}
	for _, s := range all {
		for _, v := range s.Versions {
			for _, c := range v.Columns {
				f, ok := byName[c.Name]
				if !ok {
					f = c.Field
					f.id = len(r.fields)
					r.fields = append(r.fields, f)
					byName[c.Name] = f
					if !f.ServerSet {
						r.index[f.Name] = f.id
					}
				} else if f.Kind != c.Kind {
					return &SchemaError{File: v.File, Pointer: "/properties/" + c.Name, Msg: fmt.Sprintf("%q is a %s here but a %s elsewhere: one field name has one type across all schemas", c.Name, c.Kind.jsonName(), f.Kind.jsonName())}
				}
				c.Field.id = f.id
				if c.AggregateKey != "" {
					if other, ok := keyed[c.AggregateKey]; ok && other != c.Name {
						return &SchemaError{File: v.File, Pointer: "/properties/" + c.Name + "/x-spate-aggregate-key", Msg: fmt.Sprintf("aggregate key part %q is already filled by %q", c.AggregateKey, other)}
					}
					keyed[c.AggregateKey] = c.Name
				}
			}
		}
	}
	for _, s := range all {
		s.col = make([]int, len(r.fields))
		for i := range s.col {
			s.col[i] = -1
		}
		for i, c := range s.Columns {
			s.col[c.id] = i
		}
		r.schemas[s.Type] = s
		r.types = append(r.types, s.Type)
	}
	r.typeID, r.occurredID = r.index["type"], r.index["occurred_at"]
	for name, id := range r.index {
		r.byLen[len(name)] = append(r.byLen[len(name)], id)
	}
	n := len(r.fields)
	r.slots.New = func() any { s := make([]slot, n); return &s }
	return nil
}

// Limits returns the limits in force.
func (r *Registry) Limits() Limits { return r.limits }

// Types lists the event types in documentation order.
func (r *Registry) Types() []string { return slices.Clone(r.types) }

// Schema returns the newest version of typ.
func (r *Registry) Schema(typ string) (*Schema, bool) {
	s, ok := r.schemas[typ]
	return s, ok
}

// Fields lists every field of every type in canonical order.
func (r *Registry) Fields() []*Field { return slices.Clone(r.fields) }

// Counted maps each type counted by the aggregates to its measure
// (x-spate-aggregate-counts).
func (r *Registry) Counted() map[string]string {
	out := map[string]string{}
	for _, t := range r.types {
		if c := r.schemas[t].Counts; c != "" {
			out[t] = c
		}
	}
	return out
}

// KeyFields maps each aggregate key part to the field that fills it
// (x-spate-aggregate-key).
func (r *Registry) KeyFields() map[string]string {
	out := map[string]string{}
	for _, f := range r.fields {
		if f.AggregateKey != "" {
			out[f.AggregateKey] = f.Name
		}
	}
	return out
}

func invalid(field, rule string) error {
	return &spate.FieldError{Field: field, Rule: rule, Err: spate.ErrInvalid}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
