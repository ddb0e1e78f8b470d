package ingest

import (
	"bytes"
	"testing"
)

func FuzzSplitEvents(f *testing.F) {
	f.Add([]byte(`{"events":[{"type":"click"},{"type":"impression"}]}`), false)
	f.Add([]byte(`{"type":"page_view","page":"events"}`), false)
	f.Add([]byte("{\"type\":\"a\"}\n{\"type\":\"b\"}\n"), true)
	f.Add([]byte(`{"events":[1,"x",null]} {}`), false)
	f.Add([]byte(`{"events":[`), false)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		format := formatJSON
		if ndjson {
			format = formatNDJSON
		}
		events, herr := splitEvents(body, format, 500)
		if herr != nil {
			if herr.status < 400 || herr.status > 499 {
				t.Fatalf("status %d for bad input", herr.status)
			}
			return
		}
		if len(events) == 0 || len(events) > 500 {
			t.Fatalf("%d events", len(events))
		}
		for _, e := range events {
			if len(e) == 0 || !bytes.Contains(body, bytes.TrimSpace(e)) && format == formatNDJSON {
				t.Fatalf("event %q not from the body", e)
			}
		}
	})
}
