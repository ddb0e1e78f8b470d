package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/jsonscan"
)

// canonicalPrefix is how spate.Event.AppendJSON starts every event: the type
// first, so routing a canonical record needs no full parse.
const canonicalPrefix = `{"type":"`

// decoder finds an event's type. types maps every known type name to itself,
// so lookups by a byte slice do not allocate and the returned name is shared.
type decoder struct {
	types map[string]string
}

// decode checks that data is exactly one JSON object, naming no key twice
// at any depth (the pipeline's rule, internal/jsonscan), whose "type" is a
// string the registry knows. It returns the type and the event's bytes
// to forward: data itself when it has no newline (as AppendJSON writes it),
// else a compacted copy, since packed records are newline-delimited.
// Errors wrap spate.ErrInvalid (undecodable) or spate.ErrUnknownType.
func (d *decoder) decode(data []byte) (string, []byte, error) {
	if rest, ok := bytes.CutPrefix(data, []byte(canonicalPrefix)); ok {
		if end := bytes.IndexByte(rest, '"'); end >= 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			if err := valid(data); err != nil {
				return "", nil, err
			}
			typ, ok := d.types[string(rest[:end])]
			if !ok {
				return "", nil, fmt.Errorf("type not in the registry: %w", spate.ErrUnknownType)
			}
			if bytes.IndexByte(data, '\n') >= 0 {
				return typ, compact(data), nil
			}
			return typ, data, nil
		}
	}
	return d.decodeSlow(data)
}

// decodeSlow handles JSON that is not in canonical form: other key order,
// whitespace, escapes in the type.
func (d *decoder) decodeSlow(data []byte) (string, []byte, error) {
	if err := valid(data); err != nil {
		return "", nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", nil, fmt.Errorf("not a JSON object: %w", spate.ErrInvalid)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", nil, fmt.Errorf("malformed JSON: %w", spate.ErrInvalid)
		}
		if key != "type" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", nil, fmt.Errorf("malformed JSON: %w", spate.ErrInvalid)
			}
			continue
		}
		val, err := dec.Token()
		if err != nil {
			return "", nil, fmt.Errorf("malformed JSON: %w", spate.ErrInvalid)
		}
		s, ok := val.(string)
		if !ok {
			return "", nil, fmt.Errorf("type is not a string: %w", spate.ErrInvalid)
		}
		typ, ok := d.types[s]
		if !ok {
			return "", nil, fmt.Errorf("type not in the registry: %w", spate.ErrUnknownType)
		}
		return typ, compact(data), nil
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return "", nil, fmt.Errorf("malformed JSON: %w", spate.ErrInvalid)
	}
	return "", nil, fmt.Errorf("no type: %w", spate.ErrInvalid)
}

// valid checks data's syntax and keys.
func valid(data []byte) error {
	switch err := jsonscan.Valid(data); {
	case errors.Is(err, jsonscan.ErrDuplicateKey):
		return fmt.Errorf("duplicate key: %w", spate.ErrInvalid)
	case err != nil:
		return fmt.Errorf("malformed JSON: %w", spate.ErrInvalid)
	}
	return nil
}

// compact returns valid JSON data without insignificant whitespace.
func compact(data []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(data))
	if err := json.Compact(&b, data); err != nil {
		panic(fmt.Sprintf("router: compact valid JSON: %v", err)) // callers checked json.Valid
	}
	return b.Bytes()
}
