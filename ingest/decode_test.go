package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/jsonscan"
)

func FuzzSplitEvents(f *testing.F) {
	f.Add([]byte(`{"events":[{"type":"click"},{"type":"impression"}]}`), false)
	f.Add([]byte(`{"type":"page_view","page":"events"}`), false)
	f.Add([]byte("{\"type\":\"a\"}\n{\"type\":\"b\"}\n"), true)
	f.Add([]byte(`{"events":[1,"x",null]} {}`), false)
	f.Add([]byte(`{"events":[`), false)
	f.Add([]byte(`{"events":[{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}`), false)
	f.Add([]byte(`{"\u0065vents":[{},{}]}`), false)
	f.Add([]byte("\f{\"type\":\"a\"}"), false)
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
		// Differentially, against encoding/json: a body that is one JSON
		// object without duplicate keys splits as encoding/json reads it.
		if format != formatJSON || jsonscan.Valid(body) != nil {
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil {
			return
		}
		want := 1
		if raw, ok := top["events"]; ok && len(top) == 1 {
			var elems []json.RawMessage
			if json.Unmarshal(raw, &elems) != nil {
				t.Fatalf("split a batch whose events is not an array: %q", body)
			}
			want = len(elems)
		}
		if len(events) != want {
			t.Fatalf("%d events, encoding/json reads %d: %q", len(events), want, body)
		}
	})
}

func TestSplitEventsBoundsBytesNotDepth(t *testing.T) {
	ev := `{"type":"click"}`
	deep := `{"attrs":{"k":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}}`
	cases := []struct {
		name   string
		body   string
		ndjson bool
		events int    // >0: split into this many
		status int    // else: refused with this status
		field  string // naming this field
	}{
		{"deep element is an element", `{"events":[` + ev + `,` + ev + `,` + deep + `]}`, false, 3, 0, ""},
		{"very deep element", `{"events":[` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `]}`, false, 1, 0, ""},
		{"deep value beside events", `{"events":[` + ev + `],"x":` + deep + `}`, false, 0, 400, "events"},
		{"duplicate events", `{"events":[` + ev + `],"events":[` + ev + `]}`, false, 0, 400, "events"},
		{"escaped duplicate events", `{"\u0065vents":[` + ev + `],"events":[` + ev + `]}`, false, 0, 400, "events"},
		{"escaped events is a batch", `{"\u0065vents":[` + ev + `,` + ev + `]}`, false, 2, 0, ""},
		{"JSON whitespace", " \t\r\n" + ev + "\r\n", false, 1, 0, ""},
		{"form feed is not whitespace", "\f" + `{"events":[` + ev + `]}`, false, 0, 400, ""},
		{"NBSP after a batch", `{"events":[` + ev + `]}` + "\u00a0", false, 0, 400, ""},
		{"NEL is not blank in NDJSON", ev + "\n\u0085\n" + ev, true, 3, 0, ""},
		{"CRLF NDJSON", ev + "\r\n" + ev + "\r\n", true, 2, 0, ""},
		{"too many stops early", `{"events":[` + strings.Repeat(ev+",", 600) + ev + `]}`, false, 0, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := formatJSON
			if c.ndjson {
				f = formatNDJSON
			}
			events, herr := splitEvents([]byte(c.body), f, 500)
			if c.events > 0 {
				if herr != nil || len(events) != c.events {
					t.Fatalf("got %d events, %v; want %d", len(events), herr, c.events)
				}
				return
			}
			if herr == nil || herr.status != c.status || herr.field != c.field {
				t.Fatalf("got %d events, %+v; want status %d field %q", len(events), herr, c.status, c.field)
			}
		})
	}
}

func TestMayEscapeEvents(t *testing.T) {
	for in, want := range map[string]bool{
		`{"\u0065vents":[]}`:          true,
		`{"ev\u0045nts":[]}`:          false, // E is not e
		`{"even\u0074s":[]}`:          true,
		`{"even\u0054s":[]}`:          false,
		`{"\u006Eame":"x"}`:           true,  // n, upper-case hex: may be
		`{"page":"k\u00e4ytt\u00f6"}`: false, // Finnish ä and ö: no second walk
		`{"a":"\u00`:                  false,
		`no escapes`:                  false,
	} {
		if got := mayEscapeEvents([]byte(in)); got != want {
			t.Errorf("mayEscapeEvents(%s) = %v, want %v", in, got, want)
		}
	}
}
