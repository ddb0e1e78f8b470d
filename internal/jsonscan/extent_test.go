package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/jsonscan"
)

func TestExtent(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObj := strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000)
	valid := []string{`{}`, `[]`, `"a\"b\u00e9"`, `-0.5e+3`, `true`, `false`, `null`, `{"a":[1,{"b":null}],"c":"d"}`, `[ 1 , 2 ]`, `{ "a" : { } , "b" : [ ] }`, deep, deepObj, `[[1],[2,[3]],{}]`}
	for _, v := range valid {
		end, err := jsonscan.Extent([]byte(v+" x"), 0)
		if err != nil || end != len(v) {
			t.Errorf("Extent(%.40q) = %d, %v; want %d, nil", v, end, err, len(v))
		}
	}
	invalid := []string{``, `{`, `[1,]`, `{"a"}`, `"abc`, `-`, `1.`, `1e`, `tru`, `{"a":1,}`, `"\x"`, "\"\x01\"", `[1}`, `{"a":1]`, `[`, `{"a":[}`, `{1:2}`, `[,1]`, `{,}`, strings.Repeat("[", 70), "\f1"}
	for _, v := range invalid {
		if _, err := jsonscan.Extent([]byte(v), 0); err == nil {
			t.Errorf("Extent(%q) accepted", v)
		}
	}
}

// FuzzExtentAgreesWithStdlib holds Extent to encoding/json: what it accepts
// is valid JSON, and a valid JSON document is accepted whole.
func FuzzExtentAgreesWithStdlib(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `[1e5,-0,"\ud800"]`, `{"a":tru}`, `"\u00zz"`, `[[[[]]]]`, `{"a":{"b":[{}]}}`, `[1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := jsonscan.Extent(b, 0)
		if err == nil && !json.Valid(b[:end]) {
			t.Fatalf("Extent accepted invalid JSON %q", b[:end])
		}
		if len(b) > 0 && b[0] > ' ' && json.Valid(b) {
			if err != nil {
				t.Fatalf("Extent refused valid JSON %q: %v at %d", b, err, end)
			}
			if len(bytes.Trim(b[end:], " \t\r\n")) != 0 {
				t.Fatalf("Extent stopped at %d in %q", end, b)
			}
		}
	})
}
