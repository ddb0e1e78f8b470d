package jsonscan_test

import (
	"encoding/json"
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

func FuzzSkipAgreesWithStdlib(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `[1e5,-0,"\ud800"]`, `{"a":tru}`, `"\u00zz"`, `[[[[]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := jsonscan.Skip(b, 0)
		if err != nil {
			return
		}
		if !json.Valid(b[:end]) {
			t.Fatalf("Skip accepted invalid JSON %q", b[:end])
		}
	})
}
