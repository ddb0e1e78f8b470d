// Package jsonscan finds the extent of JSON values without decoding them:
// the ingest batch splitter and the event parser use it to step over
// values, checking their syntax, at a fraction of encoding/json's cost.
//
// It also holds the pipeline's one rule for duplicate object keys: an
// object that names a key twice (after unescaping, at any depth) is
// refused by every reader of events. encoding/json would keep the last
// value and a hand-written scanner might keep the first; refusing is the
// only rule under which ingest, router, lake and aggregator cannot read one
// event two ways. SkipUnique and Valid apply it.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// MaxDepth bounds nesting; deeper input is refused rather than recursed on.
const MaxDepth = 64

// SkipWS returns the index of the first non-whitespace byte at or after i.
func SkipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// ErrTooDeep is returned for values nested deeper than MaxDepth.
var ErrTooDeep = errors.New("JSON nested too deeply")

// ErrSyntax is returned for invalid JSON.
var ErrSyntax = errors.New("malformed JSON")

// ErrDuplicateKey is returned by SkipUnique and Valid for an object that
// names a key twice.
var ErrDuplicateKey = errors.New("duplicate key in JSON object")

// Skip returns the index just past the JSON value starting at b[i], or an
// error with the index of the offending byte. Duplicate keys are not
// checked: the batch splitter leaves that to each event's reader, so a
// duplicate rejects one event, not its batch.
func Skip(b []byte, i int) (int, error) {
	var st state
	return st.run(b, i)
}

// SkipUnique is Skip that also refuses an object naming a key twice
// (ErrDuplicateKey, with the index of the second key).
func SkipUnique(b []byte, i int) (int, error) {
	st := state{unique: true}
	return st.run(b, i)
}

// Valid reports whether b is exactly one JSON value, surrounded only by
// JSON whitespace, with no duplicate keys: ErrSyntax, ErrTooDeep or
// ErrDuplicateKey otherwise.
func Valid(b []byte) error {
	end, err := SkipUnique(b, SkipWS(b, 0))
	if err != nil {
		return err
	}
	if SkipWS(b, end) != len(b) {
		return ErrSyntax
	}
	return nil
}

type state struct {
	unique, tooDeep, dup bool
}

func (st *state) run(b []byte, i int) (int, error) {
	end, ok := st.skip(b, i, 0)
	switch {
	case st.tooDeep:
		return end, ErrTooDeep
	case st.dup:
		return end, ErrDuplicateKey
	case !ok:
		return end, ErrSyntax
	}
	return end, nil
}

// KeySet holds an object's keys while it is scanned, for readers that walk
// objects themselves: a linear list for the small objects events are, a map
// once an object grows, so a hostile object of many keys costs linear time,
// not quadratic. The zero value is empty.
type KeySet struct {
	small [8][]byte
	n     int
	big   map[string]struct{}
}

const keySetLinear = 8

// Add reports whether raw (a key without its quotes, possibly escaped) was
// not yet in the set, and adds it. raw must stay unchanged while the set is
// in use.
func (ks *KeySet) Add(raw []byte) bool {
	key := Key(raw)
	if ks.big != nil {
		if _, ok := ks.big[string(key)]; ok {
			return false
		}
		ks.big[string(key)] = struct{}{}
		return true
	}
	for _, k := range ks.small[:ks.n] {
		if bytes.Equal(k, key) {
			return false
		}
	}
	if ks.n < keySetLinear {
		ks.small[ks.n] = key
		ks.n++
		return true
	}
	ks.big = make(map[string]struct{}, 2*keySetLinear)
	for _, k := range ks.small[:ks.n] {
		ks.big[string(k)] = struct{}{}
	}
	ks.big[string(key)] = struct{}{}
	return true
}

// Key returns the decoded form of a syntactically valid key (the bytes
// between its quotes) as encoding/json would compare it: raw itself when it
// has no escapes and is valid UTF-8, else the unescaped string with invalid
// bytes replaced by U+FFFD.
func Key(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return raw
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return raw // not reached for a key String accepted
	}
	return []byte(s)
}

func (st *state) skip(b []byte, i, depth int) (int, bool) {
	if depth > MaxDepth {
		st.tooDeep = true
		return i, false
	}
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return String(b, i)
	case c == '{':
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		var keys KeySet
		for {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			start := i
			var ok bool
			if i, ok = String(b, i); !ok {
				return i, false
			}
			if st.unique && !keys.Add(b[start+1:i-1]) {
				st.dup = true
				return start, false
			}
			i = SkipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i, ok = st.skip(b, SkipWS(b, i+1), depth+1); !ok {
				return i, false
			}
			i = SkipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = SkipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				return i + 1, true
			}
			return i, false
		}
	case c == '[':
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = st.skip(b, i, depth+1); !ok {
				return i, false
			}
			i = SkipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = SkipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == ']' {
				return i + 1, true
			}
			return i, false
		}
	case c == '-' || (c >= '0' && c <= '9'):
		end, _, ok := Number(b, i)
		return end, ok
	case c == 't':
		return word(b, i, "true")
	case c == 'f':
		return word(b, i, "false")
	case c == 'n':
		return word(b, i, "null")
	}
	return i, false
}

func word(b []byte, i int, w string) (int, bool) {
	if len(b)-i >= len(w) && string(b[i:i+len(w)]) == w {
		return i + len(w), true
	}
	return i, false
}

// String returns the index just past the JSON string starting at b[i].
func String(b []byte, i int) (int, bool) {
	i++
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 || !hex(b[i+1]) || !hex(b[i+2]) || !hex(b[i+3]) || !hex(b[i+4]) {
					return i, false
				}
				i += 5
			default:
				return i, false
			}
		default:
			i++
		}
	}
	return i, false
}

func hex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// Number returns the index just past the JSON number starting at b[i] and
// whether it is an integer (no fraction or exponent).
func Number(b []byte, i int) (end int, isInt, ok bool) {
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	isInt = true
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return i, false, false
	}
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if !digits() {
			return i, false, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return i, false, false
		}
	}
	return i, isInt, true
}
