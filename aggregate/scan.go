package aggregate

import (
	"bytes"

	"github.com/spate-dev/spate/internal/jsonscan"
)

// scanEvent reads the fields the fold needs from one event's JSON object,
// stepping over everything else without decoding it: the fold's hot path,
// several times faster than encoding/json. Keys match exactly (the
// canonical JSON is lower case); an object naming a key twice, at any
// depth, is not an event (the pipeline's rule, internal/jsonscan); null is
// the empty string; a non-string value for one of the fields, or input
// that is not a JSON object, is not an event.
func scanEvent(b []byte, fields *keyFields) (event, bool) {
	var e event
	i := jsonscan.SkipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return e, false
	}
	i = jsonscan.SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return e, jsonscan.SkipWS(b, i+1) == len(b)
	}
	var keys jsonscan.KeySet
	for {
		if i >= len(b) || b[i] != '"' {
			return e, false
		}
		kend, ok := jsonscan.String(b, i)
		if !ok {
			return e, false
		}
		if !keys.Add(b[i+1 : kend-1]) {
			return e, false
		}
		key := jsonscan.Key(b[i+1 : kend-1])
		i = jsonscan.SkipWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return e, false
		}
		i = jsonscan.SkipWS(b, i+1)
		vend, err := jsonscan.SkipUnique(b, i)
		if err != nil {
			return e, false
		}
		var dst *string
		// Each string(key) == s compares in place, without allocating.
		switch {
		case string(key) == "type":
			dst = &e.Type
		case string(key) == fields[0]:
			dst = &e.ContentID
		case string(key) == fields[1]:
			dst = &e.ImageVariant
		case string(key) == fields[2]:
			dst = &e.Platform
		}
		if dst != nil {
			switch {
			case b[i] == '"':
				*dst = string(jsonscan.Key(b[i+1 : vend-1])) // a string's value decodes as a key's
			case bytes.Equal(b[i:vend], []byte("null")):
				*dst = ""
			default:
				return e, false
			}
		}
		i = jsonscan.SkipWS(b, vend)
		if i >= len(b) {
			return e, false
		}
		switch b[i] {
		case ',':
			i = jsonscan.SkipWS(b, i+1)
		case '}':
			return e, jsonscan.SkipWS(b, i+1) == len(b)
		default:
			return e, false
		}
	}
}
