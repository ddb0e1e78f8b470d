package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spate-dev/spate/internal/jsonscan"
)

// decodeStd is the reference the hand-written parser is held to: the same
// input struct decoded by encoding/json with unknown fields disallowed.
func decodeStd(raw []byte) (input, error) {
	var in input
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return in, invalid("", "malformed JSON: more than one value")
	}
	return in, nil
}

// jsonError turns a decoding error into a FieldError naming the field.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if i := strings.IndexByte(field, '.'); i >= 0 {
			field = field[:i]
		}
		want := "a valid value"
		if te.Type != nil {
			switch te.Type.Kind().String() {
			case "int64":
				want = "an integer in the int64 range"
			case "string":
				want = "a string"
			case "bool":
				want = "a boolean"
			case "map":
				want = "an object of strings"
			case "struct":
				want = "an object"
			}
		}
		if field == "" {
			return invalid("", "event must be a JSON object")
		}
		return invalid(field, "must be "+want)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return invalid(strings.Trim(rest, `"`), "unknown field (free-form data goes in attrs)")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("", "malformed JSON: unexpected end")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalid("", fmt.Sprintf("malformed JSON at byte %d", se.Offset))
	}
	return invalid("", "malformed JSON")
}

// FuzzDecodeMatchesStdlib: whatever encoding/json rejects, the parser
// rejects; whatever the parser accepts, encoding/json accepts with the same
// values. (The parser may reject more: keys in another case, which
// encoding/json matches case-insensitively, and nesting beyond 64 levels.)
func FuzzDecodeMatchesStdlib(f *testing.F) {
	for _, s := range []string{
		`{"type":"click","content_id":"c","platform":"web","user_id":"u","position":3,"attrs":{"a":"b","n":null}}`,
		`{"type":"play_start","live":true,"position_ms":-0,"image_variant":"\u00e9\ud83c\udfac\ud800x"}`,
		`{"page":"a\"b\\c\/d\b\f\n\r\t","type":null,"position":1e2}`,
		`{"type":"x","attrs":{"a":1}}`, `{"type":"x","extra":[1,{"a":[true,false,null]}]}`, `[]`, `"x"`, `{}`, `{} {}`, `{"a" 1}`,
		`{"position":12345678901234567890}`, `{"type":"click","type":"impression"}`, `{"attrs":{"a":"1","\u0061":"2"}}`, `{"duration_ms":1.0}`, `{"Type":"click"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !utf8.Valid(raw) {
			return // Decode rejects invalid UTF-8 before either parser runs
		}
		var got input
		perr := parseInput(raw, &got)
		if errors.Is(jsonscan.Valid(raw), jsonscan.ErrDuplicateKey) {
			// encoding/json keeps the last of duplicate keys; the pipeline
			// refuses them (internal/jsonscan), naming the key.
			if perr == nil {
				t.Fatalf("parser accepted duplicate keys in %q", raw)
			}
			if _, serr := decodeStd(raw); serr == nil && !strings.Contains(perr.Error(), "duplicate key") {
				t.Fatalf("parser = %v for %q, want the duplicate key named", perr, raw)
			}
			return
		}
		want, serr := decodeStd(raw)
		if serr != nil && perr == nil {
			t.Fatalf("parser accepted what encoding/json rejects (%v): %q", serr, raw)
		}
		if perr != nil && serr == nil && !hasCaseVariantKey(raw) && !tooDeep(perr) {
			t.Fatalf("parser rejected (%v) what encoding/json accepts: %q", perr, raw)
		}
		if perr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("values differ for %q\n got %+v\nwant %+v", raw, got, want)
		}
		if perr != nil {
			var fe interface{ Unwrap() error }
			if !errors.As(perr, &fe) {
				t.Fatalf("parser error %v is not a FieldError", perr)
			}
		}
	})
}

func tooDeep(err error) bool { return strings.Contains(err.Error(), "nested too deeply") }

// hasCaseVariantKey reports a key that encoding/json would match to a field
// case-insensitively but the parser does not.
func hasCaseVariantKey(raw []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return true
	}
	for k := range m {
		if k != strings.ToLower(k) {
			return true
		}
		if strings.ContainsFunc(k, func(r rune) bool { return r == 'ſ' || r == 'K' }) {
			return true
		}
	}
	return false
}

var _ = fmt.Sprint
