package lake

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
)

// Schema returns the Parquet schema of an event type's files: one optional
// column per registry field in registry order, typed as Firehose writes
// the Glue types — strings UTF8 (dictionary-encoded when the field is
// LowCardinality, plain otherwise), timestamps INT64 TIMESTAMP(MILLIS,
// UTC), bigint INT64, booleans, attrs a MAP of UTF8 to UTF8.
func Schema(s *registry.Schema) *parquet.Schema {
	t, err := newTable(s)
	if err != nil {
		panic(err) // newTable fails only for a field kind Schema does not know
	}
	return t.schema
}

// table is one event type's file layout: the schema and, per column, how
// to put an event's value into a row.
type table struct {
	typ    string
	schema *parquet.Schema
	cols   []column
}

type column struct {
	name  string
	kind  registry.Kind
	leaf  int                            // index of its (first) leaf column
	prop  bool                           // a type's own field, read from Event.Props
	pkind spate.PropKind                 // the Prop kind of its values (prop columns)
	str   func(e *spate.Event) string    // envelope strings
	ts    func(e *spate.Event) time.Time // envelope timestamps
}

func newTable(s *registry.Schema) (*table, error) {
	t := &table{typ: s.Table}
	var fields group
	leaf := 0
	for _, c := range s.Columns {
		col := column{name: c.Name, kind: c.Kind, leaf: leaf, prop: !c.Envelope}
		switch c.Kind {
		case registry.Int64:
			col.pkind = spate.PropInt
		case registry.Bool:
			col.pkind = spate.PropBool
		default:
			col.pkind = spate.PropString
		}
		var node parquet.Node
		switch c.Kind {
		case registry.String:
			enc := encoding.Encoding(&parquet.Plain)
			if c.LowCardinality {
				enc = &parquet.RLEDictionary
			}
			node = parquet.Encoded(parquet.String(), enc)
			if c.Envelope {
				col.str = stringField(c.Name)
			}
		case registry.Int64:
			node = parquet.Leaf(parquet.Int64Type)
		case registry.Bool:
			node = parquet.Leaf(parquet.BooleanType)
		case registry.Timestamp:
			node = parquet.Timestamp(parquet.Millisecond)
			col.ts = timeField(c.Name)
		case registry.StringMap:
			dict := func() parquet.Node { return parquet.Encoded(parquet.String(), &parquet.RLEDictionary) }
			node = parquet.Map(dict(), parquet.Optional(dict()))
			leaf++ // key and value
		default:
			return nil, fmt.Errorf("lake: field %s: unsupported kind %d", c.Name, c.Kind)
		}
		if c.Envelope && c.Kind != registry.StringMap && col.str == nil && col.ts == nil {
			return nil, fmt.Errorf("lake: field %s: no spate.Event field of its kind", c.Name)
		}
		fields = append(fields, groupField{Node: parquet.Optional(node), name: c.Name})
		t.cols = append(t.cols, col)
		leaf++
	}
	t.schema = parquet.NewSchema(s.Table, fields)
	return t, nil
}

// row appends ev's values to dst as one Parquet row, column by column.
// Byte array values point into ev's strings; the writer copies them. A
// field of the wrong kind for its column refuses the event, as Firehose's
// conversion does; a field that is no column is not stored, as Firehose's
// OpenX JSON SerDe ignores it.
func (t *table) row(dst parquet.Row, ev *event) (parquet.Row, error) {
	e := &ev.Event
	next := 0 // Props usually come in column order: try the next one first
	for i := range t.cols {
		c := &t.cols[i]
		if c.prop {
			var p *spate.Prop
			if next < len(e.Props) && e.Props[next].Name == c.name {
				p = &e.Props[next]
				next++
			} else {
				p = findProp(e, c.name)
			}
			switch {
			case p == nil:
				dst = append(dst, parquet.NullValue().Level(0, 0, c.leaf))
			case p.Kind != c.pkind:
				return dst, fmt.Errorf("field %s: wrong type for %s: %w", p.Name, t.typ, spate.ErrInvalid)
			default:
				dst = propAppend(dst, c, p)
			}
			continue
		}
		switch c.kind {
		case registry.String:
			if s := c.str(e); s != "" {
				dst = append(dst, parquet.ByteArrayValue(bytesOf(s)).Level(0, 1, c.leaf))
			} else {
				dst = append(dst, parquet.NullValue().Level(0, 0, c.leaf))
			}
		case registry.Timestamp:
			if ts := c.ts(e); !ts.IsZero() {
				dst = append(dst, parquet.Int64Value(ts.UnixMilli()).Level(0, 1, c.leaf))
			} else {
				dst = append(dst, parquet.NullValue().Level(0, 0, c.leaf))
			}
		case registry.StringMap:
			// attrs (optional, def 1) > key_value (repeated, rep 1, def 2)
			// > key (required) and value (optional, def 3).
			if len(ev.attrs) == 0 {
				dst = append(dst, parquet.NullValue().Level(0, 0, c.leaf), parquet.NullValue().Level(0, 0, c.leaf+1))
				continue
			}
			for j, a := range ev.attrs {
				dst = append(dst, parquet.ByteArrayValue(bytesOf(a.k)).Level(min(j, 1), 2, c.leaf))
			}
			for j, a := range ev.attrs {
				dst = append(dst, parquet.ByteArrayValue(bytesOf(a.v)).Level(min(j, 1), 3, c.leaf+1))
			}
		}
	}
	return dst, nil
}

// findProp is e's field name, or nil.
func findProp(e *spate.Event, name string) *spate.Prop {
	for i := range e.Props {
		if e.Props[i].Name == name {
			return &e.Props[i]
		}
	}
	return nil
}

// propAppend appends p (row has matched its kind to c's).
func propAppend(dst parquet.Row, c *column, p *spate.Prop) parquet.Row {
	switch p.Kind {
	case spate.PropString:
		if p.Str != "" {
			return append(dst, parquet.ByteArrayValue(bytesOf(p.Str)).Level(0, 1, c.leaf))
		}
	case spate.PropInt:
		return append(dst, parquet.Int64Value(p.Int).Level(0, 1, c.leaf))
	case spate.PropBool:
		return append(dst, parquet.BooleanValue(p.Bool).Level(0, 1, c.leaf))
	}
	return append(dst, parquet.NullValue().Level(0, 0, c.leaf))
}

// bytesOf views s as bytes without copying; the Parquet writer only reads
// them.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// group is a Parquet group whose fields keep the order given (registry
// order), where parquet.Group sorts them by name.
type group []parquet.Field

func (g group) ID() int                                  { return 0 }
func (g group) String() string                           { return fmt.Sprintf("group(%d fields)", len(g)) }
func (g group) Type() parquet.Type                       { return parquet.Group{}.Type() }
func (g group) Optional() bool                           { return false }
func (g group) Repeated() bool                           { return false }
func (g group) Required() bool                           { return true }
func (g group) Leaf() bool                               { return false }
func (g group) Fields() []parquet.Field                  { return g }
func (g group) Encoding() encoding.Encoding              { return nil }
func (g group) Compression() compress.Codec              { return nil }
func (g group) GoType() reflect.Type                     { return goType(g) }
func (f groupField) Name() string                        { return f.name }
func (f groupField) Value(v reflect.Value) reflect.Value { return v.FieldByName(exported(f.name)) }

type groupField struct {
	parquet.Node
	name string
}

// goType is the struct a row of g would decode into, for parquet-go's
// reflection paths; spate writes rows directly and never uses it.
func goType(g group) reflect.Type {
	fields := make([]reflect.StructField, len(g))
	for i, f := range g {
		fields[i] = reflect.StructField{Name: exported(f.Name()), Type: f.GoType(), Tag: reflect.StructTag(`parquet:"` + f.Name() + `"`)}
	}
	return reflect.StructOf(fields)
}

func exported(name string) string {
	var b strings.Builder
	up := true
	for _, r := range name {
		if r == '_' {
			up = true
			continue
		}
		if up {
			r = []rune(strings.ToUpper(string(r)))[0]
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// The accessors below tie registry field names to spate.Event's fields
// without reflection or boxing on the write path; newTable fails, and the
// lake tests fail, if a registry field has none.

func stringField(name string) func(e *spate.Event) string {
	switch name {
	case "type":
		return func(e *spate.Event) string { return e.Type }
	case "event_id":
		return func(e *spate.Event) string { return e.EventID }
	case "user_id":
		return func(e *spate.Event) string { return e.UserID }
	case "anonymous_id":
		return func(e *spate.Event) string { return e.AnonymousID }
	case "session_id":
		return func(e *spate.Event) string { return e.SessionID }
	case "platform":
		return func(e *spate.Event) string { return e.Platform }
	case "app_version":
		return func(e *spate.Event) string { return e.AppVersion }
	}
	return nil
}

func timeField(name string) func(e *spate.Event) time.Time {
	switch name {
	case "occurred_at":
		return func(e *spate.Event) time.Time { return e.OccurredAt }
	case "received_at":
		return func(e *spate.Event) time.Time { return e.ReceivedAt }
	}
	return nil
}
