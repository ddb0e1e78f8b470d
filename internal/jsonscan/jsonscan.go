// Package jsonscan finds the extent of JSON values without decoding them:
// the ingest batch splitter and the event parser use it to step over
// values, checking their syntax, at a fraction of encoding/json's cost.
package jsonscan

import "errors"

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

// Skip returns the index just past the JSON value starting at b[i], or an
// error with the index of the offending byte.
func Skip(b []byte, i int) (int, error) {
	tooDeep := false
	end, ok := skip(b, i, 0, &tooDeep)
	switch {
	case tooDeep:
		return end, ErrTooDeep
	case !ok:
		return end, ErrSyntax
	}
	return end, nil
}

func skip(b []byte, i, depth int, tooDeep *bool) (int, bool) {
	if depth > MaxDepth {
		*tooDeep = true
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
		for {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			var ok bool
			if i, ok = String(b, i); !ok {
				return i, false
			}
			i = SkipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i, ok = skip(b, SkipWS(b, i+1), depth+1, tooDeep); !ok {
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
			if i, ok = skip(b, i, depth+1, tooDeep); !ok {
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
