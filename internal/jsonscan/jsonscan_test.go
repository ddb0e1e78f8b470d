package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/jsonscan"
)

func TestSkip(t *testing.T) {
	valid := []string{`{}`, `[]`, `"a\"b\u00e9"`, `-0.5e+3`, `true`, `null`, `{"a":[1,{"b":null}],"c":"d"}`, `[ 1 , 2 ]`}
	for _, v := range valid {
		end, err := jsonscan.Skip([]byte(v+" x"), 0)
		if err != nil || end != len(v) {
			t.Errorf("Skip(%q) = %d, %v; want %d, nil", v, end, err, len(v))
		}
	}
	invalid := []string{`{`, `[1,]`, `{"a"}`, `"abc`, `-`, `1.`, `1e`, `tru`, `{"a":1,}`, `"\x"`, "\"\x01\"", strings.Repeat("[", 70) + strings.Repeat("]", 70)}
	for _, v := range invalid {
		if _, err := jsonscan.Skip([]byte(v), 0); err == nil {
			t.Errorf("Skip(%q) accepted", v)
		}
	}
}

func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		in  string
		dup bool
	}{
		{`{"type":"click","type":"impression"}`, true},
		{`{"type":"click","typ\u0065":"impression"}`, true}, // same key once unescaped
		{`{"a":{"b":1,"b":2}}`, true},                       // at depth
		{`[{"a":1},{"a":1}]`, false},                        // the same key in sibling objects
		{`{"a":1,"A":2}`, false},                            // keys are case-sensitive
		{`{"a":{"a":1}}`, false},                            // nesting is not a duplicate
		{"{\"\xff\":1,\"\xfe\":2}", true},                   // both decode to U+FFFD, as encoding/json reads them
		{manyKeys(100, false), false},
		{manyKeys(100, true), true}, // found past the linear part of the key set
	} {
		_, skipErr := jsonscan.Skip([]byte(tc.in), 0)
		if skipErr != nil {
			t.Errorf("Skip(%.40q) = %v: Skip does not judge duplicates", tc.in, skipErr)
		}
		err := jsonscan.Valid([]byte(tc.in))
		if got := errors.Is(err, jsonscan.ErrDuplicateKey); got != tc.dup {
			t.Errorf("Valid(%.40q) = %v, want duplicate %v", tc.in, err, tc.dup)
		}
		if got := hasDuplicate(t, []byte(tc.in)); got != tc.dup {
			t.Errorf("reference says duplicate=%v for %.40q: the case is wrong", got, tc.in)
		}
	}
}

func manyKeys(n int, dupLast bool) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		k := i
		if dupLast && i == n-1 {
			k = n / 2
		}
		b.WriteString(`"k` + strings.Repeat("x", k%7) + string(rune('a'+k%26)) + string(rune('a'+k/26)) + `":1`)
	}
	b.WriteByte('}')
	return b.String()
}

func TestValidRefusesTrailingAndNonJSONWhitespace(t *testing.T) {
	for _, in := range []string{`{} x`, "\f{}", "{}\u00a0", `{}{}`, ``} {
		if err := jsonscan.Valid([]byte(in)); err == nil {
			t.Errorf("Valid(%q) accepted", in)
		}
	}
	if err := jsonscan.Valid([]byte(" \t\r\n{}\n")); err != nil {
		t.Errorf("JSON whitespace refused: %v", err)
	}
}

// frame is one open object or array of the reference tokenizer.
type frame struct {
	object bool
	keys   map[string]bool
	expect bool // the next token is a key (or the closing brace)
}

// hasDuplicate is the reference: encoding/json's own tokenizer, tracking
// the decoded keys of every open object. b must be valid JSON.
func hasDuplicate(t *testing.T, b []byte) bool {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers beyond float64 are valid JSON
	var stack []*frame
	valueDone := func() {
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expect = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			t.Fatalf("reference tokenizer: %v", err)
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expect {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k := tok.(string)
			if stack[n-1].keys[k] {
				return true
			}
			stack[n-1].keys[k] = true
			stack[n-1].expect = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expect: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// FuzzSkipAgreesWithStdlib holds Skip to encoding/json in both directions:
// it accepts exactly the values json.Valid accepts (up to MaxDepth), and
// SkipUnique additionally refuses exactly the objects the reference finds a
// duplicate key in.
func FuzzSkipAgreesWithStdlib(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `[1e5,-0,"\ud800"]`, `{"a":tru}`, `"\u00zz"`, `[[[[]]]]`,
		`{"a":1,"a":2}`, `{"a":{"b":1,"\u0062":2}}`, `{"x":[{"a":1},{"a":1}]}`, ` {} `, "\f1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		start := jsonscan.SkipWS(b, 0)
		end, err := jsonscan.Skip(b, start)
		whole := err == nil && jsonscan.SkipWS(b, end) == len(b)
		if err == nil && !json.Valid(b[start:end]) {
			t.Fatalf("Skip accepted invalid JSON %q", b[start:end])
		}
		if errors.Is(err, jsonscan.ErrTooDeep) {
			return // deeper than MaxDepth: refused by design, valid or not
		}
		if std := json.Valid(b); std != whole {
			t.Fatalf("Skip whole value = %v (err %v), json.Valid = %v for %q", whole, err, std, b)
		}
		verr := jsonscan.Valid(b)
		if !whole {
			if verr == nil {
				t.Fatalf("Valid accepted what Skip refused: %q", b)
			}
			return
		}
		if dup := hasDuplicate(t, b); dup != errors.Is(verr, jsonscan.ErrDuplicateKey) || (!dup && verr != nil) {
			t.Fatalf("Valid = %v, reference duplicate = %v for %q", verr, dup, b)
		}
	})
}
