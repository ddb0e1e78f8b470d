package registry

import (
	"errors"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spate-dev/spate/internal/jsonscan"
)

// parser reads one event object. Events are flat objects of strings,
// integers and booleans plus one object of strings (attrs), so a small
// purpose-built parser is several times faster than encoding/json's
// reflection, which matters on the ingest hot path. FuzzDecodeMatchesStdlib
// holds it to encoding/json's behaviour.
type parser struct {
	b   []byte
	i   int
	err error
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

// parseInput fills in from raw, the whole of which must be one object.
func parseInput(raw []byte, in *input) error {
	p := &parser{b: raw}
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
		// Keys seen so far: events have a handful, so a linear scan of a
		// stack array beats a map.
		var seenBuf [24]string
		seen := seenBuf[:0]
		for p.err == nil {
			p.ws()
			if p.peek() != '"' {
				p.syntax()
				break
			}
			key, ok := p.str()
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
			if slices.Contains(seen, key) {
				// The pipeline's rule (internal/jsonscan): a key named twice
				// is refused, never resolved first- or last-wins.
				p.skipValue()
				p.fail(key, "duplicate key")
				break
			}
			seen = append(seen, key)
			p.field(key, in)
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

func (p *parser) field(key string, in *input) {
	switch key {
	case "type":
		p.strField(key, &in.Type)
	case "event_id":
		p.strField(key, &in.EventID)
	case "occurred_at":
		p.strField(key, &in.OccurredAt)
	case "user_id":
		p.strField(key, &in.UserID)
	case "anonymous_id":
		p.strField(key, &in.AnonymousID)
	case "session_id":
		p.strField(key, &in.SessionID)
	case "platform":
		p.strField(key, &in.Platform)
	case "app_version":
		p.strField(key, &in.AppVersion)
	case "page":
		p.strField(key, &in.Page)
	case "referrer":
		p.strField(key, &in.Referrer)
	case "content_id":
		p.strField(key, &in.ContentID)
	case "image_variant":
		p.strField(key, &in.ImageVariant)
	case "list_id":
		p.strField(key, &in.ListID)
	case "reason":
		p.strField(key, &in.Reason)
	case "position":
		p.intField(key, &in.Position)
	case "position_ms":
		p.intField(key, &in.PositionMs)
	case "duration_ms":
		p.intField(key, &in.DurationMs)
	case "live":
		p.boolField(key, &in.Live)
	case "attrs":
		p.attrs(in)
	default:
		p.skipValue()
		p.fail(key, "unknown field (free-form data goes in attrs)")
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

func (p *parser) strField(key string, dst *string) {
	switch p.peek() {
	case '"':
		if s, ok := p.str(); ok {
			*dst = s
		}
	case 'n':
		if !p.literal("null") {
			p.syntax()
			return
		}
		*dst = ""
	default:
		p.skipValue()
		p.fail(key, "must be a string")
	}
}

func (p *parser) intField(key string, dst **int64) {
	c := p.peek()
	switch {
	case c == '-' || (c >= '0' && c <= '9'):
		tok, isInt := p.number()
		if p.err != nil {
			return
		}
		n, err := strconv.ParseInt(tok, 10, 64)
		if !isInt || err != nil {
			p.fail(key, "must be an integer in the int64 range")
			return
		}
		*dst = &n
	case c == 'n':
		if !p.literal("null") {
			p.syntax()
			return
		}
		*dst = nil
	default:
		p.skipValue()
		p.fail(key, "must be an integer in the int64 range")
	}
}

func (p *parser) boolField(key string, dst **bool) {
	switch {
	case p.literal("true"):
		v := true
		*dst = &v
	case p.literal("false"):
		v := false
		*dst = &v
	case p.literal("null"):
		*dst = nil
	default:
		p.skipValue()
		p.fail(key, "must be a boolean")
	}
}

func (p *parser) attrs(in *input) {
	if p.literal("null") {
		in.Attrs = nil
		return
	}
	if p.peek() != '{' {
		p.skipValue()
		p.fail("attrs", "must be an object of strings")
		return
	}
	p.i++
	if in.Attrs == nil {
		in.Attrs = map[string]string{}
	}
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
		switch p.peek() {
		case '"':
			if v, ok := p.str(); ok {
				p.attr(in, k, v)
			}
		case 'n':
			// encoding/json leaves a map entry for null as the zero value.
			if !p.literal("null") {
				p.syntax()
				return
			}
			p.attr(in, k, "")
		default:
			p.skipValue()
			p.fail("attrs", "must be an object of strings")
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

// number consumes a JSON number and reports whether it is an integer.
func (p *parser) number() (string, bool) {
	start := p.i
	end, isInt, ok := jsonscan.Number(p.b, p.i)
	p.i = end
	if !ok {
		p.syntax()
		return "", false
	}
	return string(p.b[start:end]), isInt
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
			s := string(p.b[start:p.i])
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

// attr sets one attrs entry, refusing a key named twice.
func (p *parser) attr(in *input, k, v string) {
	if _, dup := in.Attrs[k]; dup {
		p.fail("attrs", "duplicate key")
		return
	}
	in.Attrs[k] = v
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
