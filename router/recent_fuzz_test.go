package router

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzEventID holds eventID to encoding/json: for every valid UTF-8 JSON
// object without duplicate keys (the pipeline rejects those before
// routing), it finds the
// event_id encoding/json decodes, or none when that is not a string.
func FuzzEventID(f *testing.F) {
	for _, s := range []string{
		`{"type":"click","event_id":"0190a3c4-0000-7000-8000-000000000001","platform":"web"}`,
		`{"type":"click","event_id":"a\"b","platform":"web"}`,
		`{"type":"click","event_id":"\u0041","platform":"web"}`,
		`{"platform":"web","event_id":"x","type":"click"}`,
		`{"type":"click","event_id":7}`,
		`{"type":"click","event_id":null}`,
		`{"type":"click","attrs":{"event_id":"nested"}}`,
		`{"type":"click"}`,
		` {"type":"click","event_id":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var obj map[string]json.RawMessage
		// Invalid UTF-8 encoding/json turns into U+FFFD; ingest never lets it
		// through, and eventID keeps the bytes (distinct ids stay distinct).
		if !utf8.Valid(data) || json.Unmarshal(data, &obj) != nil || hasDuplicateKeys(data) {
			return
		}
		id, ok := eventID(data)
		var want string
		raw, present := obj["event_id"]
		wantOK := present && json.Unmarshal(raw, &want) == nil && raw[0] == '"'
		if ok != wantOK || ok && !bytes.Equal(id, []byte(want)) {
			t.Fatalf("eventID(%q) = %q, %v; encoding/json: %q, %v", data, id, ok, want, wantOK)
		}
	})
}

// hasDuplicateKeys reports a top-level key given twice; encoding/json
// matches keys exactly here, as the pipeline does.
func hasDuplicateKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return false
		}
		key, _ := k.(string)
		if seen[key] {
			return true
		}
		seen[key] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}
