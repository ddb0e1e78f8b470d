package spate

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Event is one user interaction, the union of every type's fields. The
// registry decides which fields a type allows and requires; unset optional
// fields are zero (strings) or nil (numbers, booleans) and leave the JSON.
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

	Page         string `json:"page,omitempty"`
	Referrer     string `json:"referrer,omitempty"`
	ContentID    string `json:"content_id,omitempty"`
	ImageVariant string `json:"image_variant,omitempty"`
	ListID       string `json:"list_id,omitempty"`
	Position     *int64 `json:"position,omitempty"`
	PositionMs   *int64 `json:"position_ms,omitempty"`
	DurationMs   *int64 `json:"duration_ms,omitempty"`
	Live         *bool  `json:"live,omitempty"`
	Reason       string `json:"reason,omitempty"`
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
	dst = appendOptString(dst, "page", e.Page)
	dst = appendOptString(dst, "referrer", e.Referrer)
	dst = appendOptString(dst, "content_id", e.ContentID)
	dst = appendOptString(dst, "image_variant", e.ImageVariant)
	dst = appendOptString(dst, "list_id", e.ListID)
	dst = appendOptInt(dst, "position", e.Position)
	dst = appendOptInt(dst, "position_ms", e.PositionMs)
	dst = appendOptInt(dst, "duration_ms", e.DurationMs)
	if e.Live != nil {
		dst = append(dst, `,"live":`...)
		dst = strconv.AppendBool(dst, *e.Live)
	}
	dst = appendOptString(dst, "reason", e.Reason)
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

func appendOptInt(dst []byte, name string, v *int64) []byte {
	if v == nil {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, *v, 10)
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
