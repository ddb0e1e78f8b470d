package registry

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/spate-dev/spate"
)

// slot holds one field's parsed value during Decode, indexed by field id:
// the compiled form of the schemas is a flat table of fields with typed
// slots, never a map[string]any walked per event.
type slot struct {
	seen  bool // the key appeared (duplicates are refused)
	set   bool
	str   string
	num   int64
	b     bool
	attrs map[string]string
}

// Decode parses one event's JSON, validates it against the newest schema
// of its type and normalises it: event_id assigned when missing, lower
// case; occurred_at defaulted to receivedAt; both timestamps UTC at
// millisecond precision. Errors are *spate.FieldError naming the field
// and the rule.
//
// Beyond the JSON Schema keywords, Decode applies the envelope's rules
// that JSON Schema cannot state (docs/events.md): null and "" count as
// absent; user_id or anonymous_id is required; occurred_at within the
// accepted window; integers in integer syntax (no fraction or exponent,
// which JSON Schema would allow) within int64; one event at most MaxEvent
// bytes of valid UTF-8 with no duplicate keys.
func (r *Registry) Decode(raw []byte, receivedAt time.Time) (*spate.Event, error) {
	if len(raw) > r.limits.MaxEvent {
		return nil, &spate.FieldError{Rule: fmt.Sprintf("event larger than %d bytes", r.limits.MaxEvent), Err: spate.ErrTooLarge}
	}
	if !utf8.Valid(raw) {
		return nil, invalid("", "invalid UTF-8")
	}
	sp := r.slots.Get().(*[]slot)
	slots := *sp
	defer func() {
		clear(slots)
		r.slots.Put(sp)
	}()
	if err := r.parse(raw, slots); err != nil {
		return nil, err
	}
	return r.validate(slots, receivedAt)
}

func (r *Registry) validate(slots []slot, receivedAt time.Time) (*spate.Event, error) {
	typ := &slots[r.typeID]
	if !typ.set {
		return nil, invalid("type", "required")
	}
	s, ok := r.schemas[typ.str]
	if !ok {
		return nil, &spate.FieldError{Field: "type", Rule: fmt.Sprintf("unknown type %q (known: %s)", truncate(typ.str, 40), strings.Join(r.types, ", ")), Err: spate.ErrUnknownType}
	}
	for _, f := range r.fields {
		if slots[f.id].set && s.col[f.id] < 0 {
			return nil, invalid(f.Name, "not allowed for type "+s.Type)
		}
	}
	nprops := 0
	for _, c := range s.Columns {
		v := &slots[c.id]
		if !v.set {
			if c.Required {
				return nil, invalid(c.Name, "required")
			}
			continue
		}
		if c.Name == "type" {
			continue
		}
		if err := check(c.Field, v); err != nil {
			return nil, err
		}
		if !c.Envelope {
			nprops++
		}
	}
	e := &spate.Event{Type: s.Type}
	if nprops > 0 {
		e.Props = make([]spate.Prop, 0, nprops)
	}
	for _, c := range s.Columns {
		v := &slots[c.id]
		if !v.set {
			continue
		}
		if c.Envelope {
			switch c.env {
			case envEventID:
				e.EventID = v.str
			case envUserID:
				e.UserID = v.str
			case envAnonymousID:
				e.AnonymousID = v.str
			case envSessionID:
				e.SessionID = v.str
			case envPlatform:
				e.Platform = v.str
			case envAppVersion:
				e.AppVersion = v.str
			case envAttrs:
				e.Attrs = v.attrs
			}
			continue
		}
		switch c.Kind {
		case Int64:
			e.Props = append(e.Props, spate.Int(c.Name, v.num))
		case Bool:
			e.Props = append(e.Props, spate.Bool(c.Name, v.b))
		default:
			e.Props = append(e.Props, spate.Str(c.Name, v.str))
		}
	}
	if e.UserID == "" && e.AnonymousID == "" {
		return nil, invalid("user_id", "user_id or anonymous_id required")
	}
	if e.EventID != "" {
		if strings.ContainsAny(e.EventID, "ABCDEF") {
			e.EventID = strings.ToLower(e.EventID)
		}
	} else {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("assign event_id: %w", err)
		}
		e.EventID = id.String()
	}
	e.ReceivedAt = receivedAt.UTC().Truncate(time.Millisecond)
	occ := &slots[r.occurredID]
	if !occ.set {
		e.OccurredAt = e.ReceivedAt
	} else {
		t, err := parseTime(occ.str)
		if err != nil {
			return nil, invalid("occurred_at", "must be an RFC 3339 timestamp with offset")
		}
		if t.After(receivedAt.Add(r.limits.MaxFuture)) {
			return nil, invalid("occurred_at", fmt.Sprintf("more than %s in the future", r.limits.MaxFuture))
		}
		if t.Before(receivedAt.Add(-r.limits.MaxPast)) {
			return nil, invalid("occurred_at", fmt.Sprintf("more than %s in the past", r.limits.MaxPast))
		}
		e.OccurredAt = t.UTC().Truncate(time.Millisecond)
	}
	return e, nil
}

// check applies a field's JSON Schema keywords to a set value. Lengths
// count characters (code points), as JSON Schema's maxLength does.
func check(f *Field, v *slot) error {
	switch f.Kind {
	case String, Timestamp:
		if f.MaxLen > 0 && len(v.str) > f.MaxLen && utf8.RuneCountInString(v.str) > f.MaxLen {
			return invalid(f.Name, fmt.Sprintf("longer than %d characters", f.MaxLen))
		}
		if len(f.Enum) > 0 && !contains(f.Enum, v.str) {
			return invalid(f.Name, "must be one of "+strings.Join(f.Enum, ", "))
		}
		switch f.Format {
		case "uuid":
			if !isUUID(v.str) {
				return invalid(f.Name, "must be a UUID (8-4-4-4-12 hex)")
			}
		case "date-time":
			if !isDateTime(v.str) {
				return invalid(f.Name, "must be an RFC 3339 timestamp with offset")
			}
		}
	case Int64:
		if f.HasMin && v.num < f.Min {
			if f.Min == 0 {
				return invalid(f.Name, "must not be negative")
			}
			return invalid(f.Name, fmt.Sprintf("must be at least %d", f.Min))
		}
		if f.HasMax && v.num > f.Max {
			return invalid(f.Name, fmt.Sprintf("must be at most %d", f.Max))
		}
	case StringMap:
		if f.MaxKeys > 0 && len(v.attrs) > f.MaxKeys {
			return invalid(f.Name, fmt.Sprintf("more than %d keys", f.MaxKeys))
		}
		for k, val := range v.attrs {
			if k == "" || (len(k) > f.MaxLen && utf8.RuneCountInString(k) > f.MaxLen) {
				return invalid(f.Name, fmt.Sprintf("keys must be 1 to %d characters", f.MaxLen))
			}
			if len(val) > f.MaxLen && utf8.RuneCountInString(val) > f.MaxLen {
				return invalid(f.Name, fmt.Sprintf("values must be at most %d characters", f.MaxLen))
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// isUUID is JSON Schema's uuid format: 8-4-4-4-12 hex digits, either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// isDateTime is RFC 3339's date-time production (JSON Schema's date-time
// format): full-date "T" full-time, with a leap second allowed only at
// 23:59 UTC.
func isDateTime(s string) bool {
	if len(s) < 20 || (s[10] != 'T' && s[10] != 't') {
		return false
	}
	if !isDate(s[:10]) {
		return false
	}
	t := s[11:]
	if t[2] != ':' || t[5] != ':' {
		return false
	}
	h, ok1 := digits2(t[0:2])
	m, ok2 := digits2(t[3:5])
	sec, ok3 := digits2(t[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return false
	}
	t = t[8:]
	if len(t) > 0 && t[0] == '.' {
		n := 1
		for n < len(t) && t[n] >= '0' && t[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		t = t[n:]
	}
	if t != "Z" && t != "z" {
		if len(t) != 6 || (t[0] != '+' && t[0] != '-') || t[3] != ':' {
			return false
		}
		zh, ok1 := digits2(t[1:3])
		zm, ok2 := digits2(t[4:6])
		if !ok1 || !ok2 || zh > 23 || zm > 59 {
			return false
		}
		sign := 1
		if t[0] == '+' {
			sign = -1
		}
		hm := h*60 + m + sign*(zh*60+zm)
		if hm < 0 {
			hm += 24 * 60
		}
		h, m = hm/60%24, hm%60
	}
	return sec < 60 || (h == 23 && m == 59)
}

// digits2 reads two decimal digits.
func digits2(s string) (int, bool) {
	if s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// parseTime parses what isDateTime accepted.
func parseTime(s string) (time.Time, error) {
	if s[10] == 't' || s[len(s)-1] == 'z' {
		s = strings.ToUpper(s)
	}
	return time.Parse(time.RFC3339Nano, s)
}

// isDate is RFC 3339's full-date: YYYY-MM-DD, a real day of that month.
func isDate(s string) bool {
	if s[4] != '-' || s[7] != '-' {
		return false
	}
	y1, ok1 := digits2(s[0:2])
	y2, ok2 := digits2(s[2:4])
	m, ok3 := digits2(s[5:7])
	d, ok4 := digits2(s[8:10])
	if !ok1 || !ok2 || !ok3 || !ok4 || m < 1 || m > 12 || d < 1 {
		return false
	}
	y := y1*100 + y2
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}
