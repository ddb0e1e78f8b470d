package lake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/jsonscan"
)

// kv is one attrs entry.
type kv struct{ k, v string }

// event is one decoded event. attrs holds Attrs as pairs in key order, so
// rows need no map; Event.Attrs stays nil. Props keeps its capacity across
// events.
type event struct {
	spate.Event
	attrs []kv
}

func (ev *event) reset() {
	attrs, props := ev.attrs[:0], ev.Props[:0]
	*ev = event{attrs: attrs}
	ev.Props = props
}

// parser decodes the events of a destination record: JSON objects one
// after another, usually newline-separated. Canonical JSON (what
// spate.Event.AppendJSON writes) takes a hand-written path that allocates
// nothing; anything else falls back to encoding/json, whose result the fast
// path matches exactly (FuzzParse checks).
//
// Strings of a parsed event point into the record or into the parser's
// scratch buffer, so they are valid until reset: the lake writes each
// batch's rows before it resets.
type parser struct {
	scratch []byte
}

func (p *parser) reset() { p.scratch = p.scratch[:0] }

var errSlow = errors.New("not canonical")

// next decodes the object at the start of data (after whitespace) into ev
// and returns the bytes consumed.
func (p *parser) next(data []byte, ev *event) (int, error) {
	ev.reset()
	mark := len(p.scratch)
	n, err := p.fast(data, ev)
	if err == nil {
		return n, nil
	}
	p.scratch = p.scratch[:mark]
	ev.reset()
	return slow(data, ev)
}

// slow decodes with spate.Event's own reader (encoding/json underneath),
// which refuses duplicate keys as every reader of events does
// (internal/jsonscan); the fast path falls back here on any.
func slow(data []byte, ev *event) (int, error) {
	start := jsonscan.SkipWS(data, 0)
	n, err := jsonscan.Skip(data, start)
	if err != nil {
		return 0, fmt.Errorf("malformed JSON: %w", spate.ErrInvalid)
	}
	if data[start] != '{' {
		return 0, fmt.Errorf("not a JSON object: %w", spate.ErrInvalid)
	}
	if err := json.Unmarshal(data[start:n], &ev.Event); err != nil {
		return 0, fmt.Errorf("event: %w (%w)", err, spate.ErrInvalid)
	}
	for k, v := range ev.Attrs {
		ev.attrs = append(ev.attrs, kv{k, v})
	}
	slices.SortFunc(ev.attrs, func(a, b kv) int {
		switch {
		case a.k < b.k:
			return -1
		case a.k > b.k:
			return 1
		}
		return 0
	})
	ev.Attrs = nil
	return n, nil
}

// field ids, for spotting duplicate keys.
const (
	fType = iota
	fEventID
	fOccurredAt
	fReceivedAt
	fUserID
	fAnonymousID
	fSessionID
	fPlatform
	fAppVersion
	fAttrs
	fProp // a type's own field: any other key
)

type scan struct {
	b []byte
	i int
}

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scan) expect(c byte) bool {
	s.ws()
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

func (p *parser) fast(data []byte, ev *event) (int, error) {
	s := &scan{b: data}
	if !s.expect('{') {
		return 0, errSlow
	}
	if s.expect('}') {
		return s.i, nil
	}
	var seen uint32
	for {
		s.ws()
		key, ok := s.plainString()
		if !ok || !s.expect(':') {
			return 0, errSlow
		}
		s.ws()
		id := fieldID(key)
		if id == fProp {
			name := unsafeString(key)
			if _, dup := ev.Prop(name); dup {
				return 0, errSlow
			}
			if !p.prop(s, name, ev) {
				return 0, errSlow
			}
		} else {
			if seen&(1<<id) != 0 {
				return 0, errSlow
			}
			seen |= 1 << id
			if !p.value(s, id, ev) {
				return 0, errSlow
			}
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			return s.i, nil
		}
		return 0, errSlow
	}
}

// prop reads a type's own field: a string, an integer or a boolean.
func (p *parser) prop(s *scan, name string, ev *event) bool {
	switch c := s.peek(); {
	case c == '"':
		v, ok := p.string(s)
		if ok {
			ev.Props = append(ev.Props, spate.Str(name, v))
		}
		return ok
	case c == 't' || c == 'f':
		v, ok := s.boolean()
		if ok {
			ev.Props = append(ev.Props, spate.Bool(name, v))
		}
		return ok
	default:
		v, ok := s.int()
		if ok {
			ev.Props = append(ev.Props, spate.Int(name, v))
		}
		return ok
	}
}

func fieldID(key []byte) int {
	switch string(key) {
	case "type":
		return fType
	case "event_id":
		return fEventID
	case "occurred_at":
		return fOccurredAt
	case "received_at":
		return fReceivedAt
	case "user_id":
		return fUserID
	case "anonymous_id":
		return fAnonymousID
	case "session_id":
		return fSessionID
	case "platform":
		return fPlatform
	case "app_version":
		return fAppVersion
	case "attrs":
		return fAttrs
	}
	return fProp
}

func (p *parser) value(s *scan, id int, ev *event) bool {
	e := &ev.Event
	var str *string
	var ts *time.Time
	switch id {
	case fType:
		str = &e.Type
	case fEventID:
		str = &e.EventID
	case fUserID:
		str = &e.UserID
	case fAnonymousID:
		str = &e.AnonymousID
	case fSessionID:
		str = &e.SessionID
	case fPlatform:
		str = &e.Platform
	case fAppVersion:
		str = &e.AppVersion
	case fOccurredAt:
		ts = &e.OccurredAt
	case fReceivedAt:
		ts = &e.ReceivedAt
	case fAttrs:
		return p.attrs(s, ev)
	}
	switch {
	case str != nil:
		v, ok := p.string(s)
		*str = v
		return ok
	default:
		raw, ok := s.plainString()
		if !ok {
			return false
		}
		t, ok := parseTime(raw)
		*ts = t
		return ok
	}
}

func (s *scan) boolean() (bool, bool) {
	switch {
	case bytes.HasPrefix(s.b[s.i:], []byte("true")):
		s.i += 4
		return true, true
	case bytes.HasPrefix(s.b[s.i:], []byte("false")):
		s.i += 5
		return false, true
	}
	return false, false
}

func (p *parser) attrs(s *scan, ev *event) bool {
	if !s.expect('{') {
		return false
	}
	if s.expect('}') {
		// encoding/json leaves an empty, non-nil map; the lake treats it as
		// absent either way.
		return true
	}
	for {
		s.ws()
		k, ok := p.string(s)
		if !ok || !s.expect(':') {
			return false
		}
		s.ws()
		v, ok := p.string(s)
		if !ok {
			return false
		}
		for _, a := range ev.attrs {
			if a.k == k {
				return false // duplicate: leave the merge rules to encoding/json
			}
		}
		ev.attrs = append(ev.attrs, kv{k, v})
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			slices.SortFunc(ev.attrs, func(a, b kv) int {
				switch {
				case a.k < b.k:
					return -1
				case a.k > b.k:
					return 1
				}
				return 0
			})
			return true
		}
		return false
	}
}

// plainString reads a JSON string without escapes or non-ASCII bytes and
// returns its content, pointing into the input.
func (s *scan) plainString() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// string reads a JSON string. Without escapes its value points into the
// input; with simple escapes it is decoded into the scratch buffer.
// Surrogate escapes and invalid UTF-8, which encoding/json replaces, are
// left to it.
func (p *parser) string(s *scan) (string, bool) {
	if s.peek() != '"' {
		return "", false
	}
	start := s.i + 1
	j := start
	ascii := true
	for ; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			return p.escaped(s, start)
		}
		if c < 0x20 {
			return "", false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if j == len(s.b) {
		return "", false
	}
	raw := s.b[start:j]
	if !ascii && !utf8.Valid(raw) {
		return "", false
	}
	s.i = j + 1
	return unsafeString(raw), true
}

func (p *parser) escaped(s *scan, start int) (string, bool) {
	mark := len(p.scratch)
	j := start
	for j < len(s.b) {
		c := s.b[j]
		switch {
		case c == '"':
			out := p.scratch[mark:]
			if !utf8.Valid(out) {
				return "", false
			}
			s.i = j + 1
			return unsafeString(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			p.scratch = append(p.scratch, c)
			j++
			continue
		}
		if j+1 >= len(s.b) {
			return "", false
		}
		switch e := s.b[j+1]; e {
		case '"', '\\', '/':
			p.scratch = append(p.scratch, e)
		case 'b':
			p.scratch = append(p.scratch, '\b')
		case 'f':
			p.scratch = append(p.scratch, '\f')
		case 'n':
			p.scratch = append(p.scratch, '\n')
		case 'r':
			p.scratch = append(p.scratch, '\r')
		case 't':
			p.scratch = append(p.scratch, '\t')
		case 'u':
			if j+6 > len(s.b) {
				return "", false
			}
			r, err := strconv.ParseUint(string(s.b[j+2:j+6]), 16, 32)
			if err != nil || (r >= 0xD800 && r <= 0xDFFF) {
				return "", false
			}
			p.scratch = utf8.AppendRune(p.scratch, rune(r))
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// unsafeString views b as a string without copying. The parser's contract
// (values valid until reset) is what makes this safe: nothing writes to b
// before the rows holding it are written.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// int reads a JSON integer in the int64 range; fractions and exponents,
// which encoding/json refuses for int64, are left to it.
func (s *scan) int() (int64, bool) {
	start := s.i
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	digits := j
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if j == digits || (s.b[digits] == '0' && j-digits > 1) {
		return 0, false
	}
	if j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(unsafeString(s.b[start:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	s.i = j
	return v, true
}

// parseTime reads spate.TimeLayout (UTC, milliseconds, Z) without the
// generality of time.Parse; other RFC 3339 forms take the slow path.
func parseTime(b []byte) (time.Time, bool) {
	// 2006-01-02T15:04:05.000Z
	if len(b) != 24 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != '.' || b[23] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	ms, ok7 := num(20, 23)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ms*int(time.Millisecond), time.UTC), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
