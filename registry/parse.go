package registry

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spate-dev/spate/internal/jsonscan"
)

// parser reads one event object. Events are flat objects of strings,
// integers and booleans plus one object of strings (attrs), so a small
// purpose-built parser is several times faster than encoding/json's
// reflection, which matters on the ingest hot path. FuzzMatchesReference
// holds it to encoding/json's behaviour.
type parser struct {
	b []byte
	// src is b as one string: values without escapes are substrings of
	// it, one allocation per event instead of one per field.
	src   string
	i     int
	err   error
	r     *Registry
	slots []slot
}

func (p *parser) fail(field, rule string) {
	if p.err == nil {
		p.err = invalid(field, rule)
	}
}

func (p *parser) syntax() {
	if p.err == nil {
		if p.i >= len(p.b) {
			p.err = invalid("", "malformed JSON: unexpected end")
			return
		}
		p.err = invalid("", "malformed JSON at byte "+strconv.Itoa(p.i))
	}
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// parse fills slots from raw, the whole of which must be one object.
func (r *Registry) parse(raw []byte, slots []slot) error {
	p := &parser{b: raw, src: string(raw), r: r, slots: slots}
	p.ws()
	if p.peek() != '{' {
		if p.i < len(p.b) && validStart(p.b[p.i]) {
			p.skipValue()
			if p.err == nil {
				return invalid("", "event must be a JSON object")
			}
			return p.err
		}
		p.syntax()
		return p.err
	}
	p.i++
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for p.err == nil {
			p.ws()
			if p.peek() != '"' {
				p.syntax()
				break
			}
			key, ok := p.key()
			if !ok {
				break
			}
			p.ws()
			if p.peek() != ':' {
				p.syntax()
				break
			}
			p.i++
			p.ws()
			p.field(key)
			p.ws()
			if p.peek() == ',' {
				p.i++
				continue
			}
			if p.peek() == '}' {
				p.i++
				break
			}
			p.syntax()
		}
	}
	if p.err != nil {
		return p.err
	}
	p.ws()
	if p.i != len(p.b) {
		if validStart(p.b[p.i]) {
			return invalid("", "malformed JSON: more than one value")
		}
		p.syntax()
		return p.err
	}
	return nil
}

func validStart(c byte) bool {
	return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n'
}

// key reads an object key. A key without escapes, as every field name
// is, stays a view of the input: the field lookup then allocates nothing.
func (p *parser) key() ([]byte, bool) {
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c == '\\' || c < 0x20:
			s, ok := p.str()
			return []byte(s), ok
		}
	}
	p.syntax()
	return nil, false
}

func (p *parser) field(keyb []byte) {
	id, ok := p.r.lookup(keyb)
	if !ok {
		p.skipValue()
		p.fail(string(keyb), "unknown field (free-form data goes in attrs)")
		return
	}
	key := p.r.fields[id].Name
	v := &p.slots[id]
	if v.seen {
		p.skipValue()
		p.fail(key, "duplicate key")
		return
	}
	v.seen = true
	switch p.r.fields[id].Kind {
	case Int64:
		p.intField(key, v)
	case Bool:
		p.boolField(key, v)
	case StringMap:
		p.attrs(key, v)
	default:
		p.strField(key, v)
	}
}

// literal consumes word if it is next.
func (p *parser) literal(word string) bool {
	if len(p.b)-p.i >= len(word) && string(p.b[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	return false
}

func (p *parser) strField(key string, v *slot) {
	switch p.peek() {
	case '"':
		if s, ok := p.str(); ok {
			v.str, v.set = s, s != ""
		}
	case 'n':
		if !p.literal("null") {
			p.syntax()
			return
		}
	default:
		p.skipValue()
		p.fail(key, "must be a string")
	}
}

func (p *parser) intField(key string, v *slot) {
	c := p.peek()
	switch {
	case c == '-' || (c >= '0' && c <= '9'):
		start, isInt := p.number()
		if p.err != nil {
			return
		}
		tok := p.src[start:p.i]
		// Integers are written as integers: JSON Schema would take 1.0
		// and 1e3, but spate has always refused them (docs/events.md).
		n, err := strconv.ParseInt(tok, 10, 64)
		if !isInt || err != nil {
			p.fail(key, "must be an integer in the int64 range")
			return
		}
		v.num, v.set = n, true
	case c == 'n':
		if !p.literal("null") {
			p.syntax()
			return
		}
	default:
		p.skipValue()
		p.fail(key, "must be an integer in the int64 range")
	}
}

func (p *parser) boolField(key string, v *slot) {
	switch {
	case p.literal("true"):
		v.b, v.set = true, true
	case p.literal("false"):
		v.b, v.set = false, true
	case p.literal("null"):
	default:
		p.skipValue()
		p.fail(key, "must be a boolean")
	}
}

func (p *parser) attrs(key string, v *slot) {
	if p.literal("null") {
		return
	}
	if p.peek() != '{' {
		p.skipValue()
		p.fail(key, "must be an object of strings")
		return
	}
	p.i++
	attrs := map[string]string{}
	defer func() { v.attrs, v.set = attrs, len(attrs) > 0 }()
	p.ws()
	if p.peek() == '}' {
		p.i++
		return
	}
	for p.err == nil {
		p.ws()
		if p.peek() != '"' {
			p.syntax()
			return
		}
		k, ok := p.str()
		if !ok {
			return
		}
		p.ws()
		if p.peek() != ':' {
			p.syntax()
			return
		}
		p.i++
		p.ws()
		if _, dup := attrs[k]; dup {
			p.fail(key, "duplicate key "+strconvQuote(k))
		}
		switch p.peek() {
		case '"':
			if s, ok := p.str(); ok {
				attrs[k] = s
			}
		case 'n':
			// null is the empty string, as encoding/json leaves it.
			if !p.literal("null") {
				p.syntax()
				return
			}
			attrs[k] = ""
		default:
			p.skipValue()
			p.fail(key, "must be an object of strings")
		}
		p.ws()
		if p.peek() == ',' {
			p.i++
			continue
		}
		if p.peek() == '}' {
			p.i++
			return
		}
		p.syntax()
	}
}

// number consumes a JSON number, src[start:p.i], and reports whether it is
// an integer.
func (p *parser) number() (start int, isInt bool) {
	start = p.i
	end, isInt, ok := jsonscan.Number(p.b, p.i)
	p.i = end
	if !ok {
		p.syntax()
		return start, false
	}
	return start, isInt
}

// str consumes a JSON string and returns its value. Invalid UTF-8 and lone
// surrogates become U+FFFD, as in encoding/json (Decode rejects invalid
// UTF-8 before parsing).
func (p *parser) str() (string, bool) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.src[start:p.i]
			p.i++
			return s, true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			p.syntax()
			return "", false
		}
		p.i++
	}
	buf := make([]byte, 0, p.i-start+16)
	buf = append(buf, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), true
		case c < 0x20:
			p.syntax()
			return "", false
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				p.syntax()
				return "", false
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					if v, ok := p.hex4(); ok {
						r2 = v
					} else {
						p.syntax()
						return "", false
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						buf = utf8.AppendRune(buf, dec)
						continue
					}
					p.i = save
				}
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.i--
			p.syntax()
			return "", false
		}
	}
	p.syntax()
	return "", false
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	p.i += 4
	return r, true
}

// skipValue consumes any JSON value, checking its syntax.
func (p *parser) skipValue() {
	end, err := jsonscan.Skip(p.b, p.i)
	p.i = end
	if errors.Is(err, jsonscan.ErrTooDeep) {
		p.fail("", "JSON nested too deeply")
	} else if err != nil {
		p.syntax()
	}
}

func strconvQuote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
