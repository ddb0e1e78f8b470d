package lakeedit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// FuzzFilterRecord: whatever a failed-events record holds, what filterRecord
// keeps mentions the forgotten identifier nowhere that encoding/json can
// see it — not as a string at any depth, not inside a base64 string — and
// a record that never mentioned it is kept unchanged.
func FuzzFilterRecord(f *testing.F) {
	const id = "user-42"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		`{"type":"click","user_id":"user-42","platform":"web"}`,
		`{"type":"click","user_id":"user-7","platform":"web"}`,
		`{"attemptsMade":1,"rawData":"` + b64(`{"user_id":"user-42"}`+"\n"+`{"user_id":"user-7"}`) + `"}`,
		`{"reason":"undecodable","data":"` + b64(`{"user_id":"user-42"`) + `"}`,
		`{"a":{"b":["user-\u0034\u0032"]}}`,
		`{"user_id":"user-42","user_id":"x"}`,
		`not json "user-42`,
	} {
		f.Add([]byte(s))
	}
	fg := &forgetter{values: map[string][]int{id: {0}}}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // one record per line
		}
		kept, reqs, _ := fg.filterRecord(line)
		if kept == nil {
			if len(reqs) == 0 {
				t.Fatalf("%q dropped without a match", line)
			}
			return
		}
		if len(reqs) == 0 && !bytes.Equal(kept, line) {
			t.Fatalf("%q changed to %q without a match", line, kept)
		}
		var v any
		if json.Unmarshal(kept, &v) == nil && mentions(v, id) {
			t.Fatalf("%q kept as %q, which still holds %s", line, kept, id)
		}
	})
}

// mentions reports id as a string anywhere in v, or inside a base64 string.
func mentions(v any, id string) bool {
	switch x := v.(type) {
	case string:
		if x == id {
			return true
		}
		if data, err := base64.StdEncoding.DecodeString(x); err == nil && len(x) >= 8 {
			for ev := range bytes.SplitSeq(data, []byte{'\n'}) {
				var inner any
				if json.Unmarshal(ev, &inner) == nil && mentions(inner, id) {
					return true
				}
			}
		}
	case []any:
		for _, e := range x {
			if mentions(e, id) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if k == id || mentions(e, id) {
				return true
			}
		}
	}
	return false
}
