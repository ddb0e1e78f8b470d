package spate

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Event is one user interaction: the envelope every type shares (the
// fields of schemas/envelope, which spate's own code reads: identity,
// partition key, time) and the type's own fields as Props, in the order of
// its schema's columns. Which fields a type has, and their rules, come from
// the schema files (package registry); nothing here names a type's field.
type Event struct {
	Type        string            `json:"type"`
	EventID     string            `json:"event_id"`
	OccurredAt  time.Time         `json:"occurred_at"`
	ReceivedAt  time.Time         `json:"received_at"`
	UserID      string            `json:"user_id,omitempty"`
	AnonymousID string            `json:"anonymous_id,omitempty"`
	SessionID   string            `json:"session_id,omitempty"`
	Platform    string            `json:"platform"`
	AppVersion  string            `json:"app_version,omitempty"`
	Attrs       map[string]string `json:"attrs,omitempty"`

	// Props are the type's own fields that are set; unset ones are absent.
	Props []Prop `json:"-"`
}

// PropKind is the JSON kind of a Prop's value.
type PropKind uint8

// The kinds a type's own field can have.
const (
	PropString PropKind = iota + 1
	PropInt
	PropBool
)

// Prop is one of a type's own fields. Name and the value matching Kind
// are set.
type Prop struct {
	Name string
	Kind PropKind
	Str  string
	Int  int64
	Bool bool
}

// Str returns a string Prop.
func Str(name, v string) Prop { return Prop{Name: name, Kind: PropString, Str: v} }

// Int returns an integer Prop.
func Int(name string, v int64) Prop { return Prop{Name: name, Kind: PropInt, Int: v} }

// Bool returns a boolean Prop.
func Bool(name string, v bool) Prop { return Prop{Name: name, Kind: PropBool, Bool: v} }

// Prop returns the Prop called name, if set.
func (e *Event) Prop(name string) (Prop, bool) {
	for _, p := range e.Props {
		if p.Name == name {
			return p, true
		}
	}
	return Prop{}, false
}

// String returns the string Prop called name, or "" when it is unset or
// not a string.
func (e *Event) String(name string) string {
	if p, ok := e.Prop(name); ok && p.Kind == PropString {
		return p.Str
	}
	return ""
}

// TimeLayout is how timestamps leave spate: UTC, millisecond precision and a
// literal Z, which Firehose's OpenX JSON SerDe parses into Parquet TIMESTAMP.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// PartitionKey picks the Kinesis shard: the session keeps one viewing
// session's events in order, else the user, else the event itself.
func (e *Event) PartitionKey() string {
	switch {
	case e.SessionID != "":
		return e.SessionID
	case e.UserID != "":
		return e.UserID
	default:
		return e.EventID
	}
}

// AppendJSON appends the canonical JSON of e to dst: fixed field order,
// timestamps in TimeLayout, unset fields left out. It is the hot path of
// ingest, hence hand-written rather than reflection-based; the round-trip
// test against encoding/json keeps it honest.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":`...)
	dst = AppendJSONString(dst, e.Type)
	dst = append(dst, `,"event_id":`...)
	dst = AppendJSONString(dst, e.EventID)
	dst = append(dst, `,"occurred_at":"`...)
	dst = e.OccurredAt.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, `","received_at":"`...)
	dst = e.ReceivedAt.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, '"')
	dst = appendOptString(dst, "user_id", e.UserID)
	dst = appendOptString(dst, "anonymous_id", e.AnonymousID)
	dst = appendOptString(dst, "session_id", e.SessionID)
	dst = append(dst, `,"platform":`...)
	dst = AppendJSONString(dst, e.Platform)
	dst = appendOptString(dst, "app_version", e.AppVersion)
	if len(e.Attrs) > 0 {
		dst = append(dst, `,"attrs":{`...)
		first := true
		for _, k := range sortedKeys(e.Attrs) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = AppendJSONString(dst, k)
			dst = append(dst, ':')
			dst = AppendJSONString(dst, e.Attrs[k])
		}
		dst = append(dst, '}')
	}
	for i := range e.Props {
		if p := &e.Props[i]; p.Kind != PropString || p.Str != "" {
			dst = appendProp(dst, p)
		}
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (e *Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

func appendOptString(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return AppendJSONString(dst, v)
}

func appendProp(dst []byte, p *Prop) []byte {
	dst = append(dst, ',')
	dst = AppendJSONString(dst, p.Name)
	dst = append(dst, ':')
	switch p.Kind {
	case PropInt:
		return strconv.AppendInt(dst, p.Int, 10)
	case PropBool:
		return strconv.AppendBool(dst, p.Bool)
	default:
		return AppendJSONString(dst, p.Str)
	}
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does; the registry rejects it before it gets here.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Insertion sort: attrs hold at most 20 keys.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// Set replaces the Prop called p.Name, or adds p.
func (e *Event) Set(p Prop) {
	for i := range e.Props {
		if e.Props[i].Name == p.Name {
			e.Props[i] = p
			return
		}
	}
	e.Props = append(e.Props, p)
}
