package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/spate-dev/spate/internal/jsonscan"
)

func TestScanEvent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want event
		ok   bool
	}{
		{"canonical", string(ev("click", "c1", "v", "web")), event{"click", "c1", "v", "web"}, true},
		{"whitespace and order", " {\n\"platform\" : \"tv\" , \"type\":\"impression\",\"x\":{\"type\":\"nested\"},\"content_id\":\"c\",\"image_variant\":\"a\"}\t", event{"impression", "c", "a", "tv"}, true},
		{"escapes", `{"type":"click","content_id":"a\"b\u00e9\ud83d\ude00","image_variant":"x\/y"}`, event{"click", "a\"bé😀", "x/y", ""}, true},
		{"escaped key", `{"typ\u0065":"click"}`, event{Type: "click"}, true},
		{"null", `{"type":"click","image_variant":null}`, event{Type: "click"}, true},
		{"duplicate refused", `{"type":"click","type":"impression"}`, event{}, false},
		{"escaped duplicate refused", `{"type":"click","typ\u0065":"impression"}`, event{}, false},
		{"nested duplicate refused", `{"type":"click","attrs":{"a":"1","a":"2"}}`, event{}, false},
		{"case matters", `{"Type":"click"}`, event{}, true},
		{"empty object", `{}`, event{}, true},
		{"number for a field", `{"type":1}`, event{}, false},
		{"other values skipped", `{"a":[1,{"b":null}],"c":true,"d":-1.5e3,"type":"click"}`, event{Type: "click"}, true},
		{"not an object", `["type","click"]`, event{}, false},
		{"trailing garbage", `{"type":"click"}x`, event{}, false},
		{"truncated", `{"type":"cli`, event{}, false},
		{"missing colon", `{"type" "click"}`, event{}, false},
		{"trailing comma", `{"type":"click",}`, event{}, false},
		{"empty", ``, event{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := scanEvent([]byte(tt.in), &defaultFields)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("scanEvent = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzScanEvent checks the scanner against encoding/json: on valid JSON
// without duplicate keys it must read the same fields a map decode reads,
// exact keys; an object with a duplicate key anywhere is refused, as every
// reader of events refuses it (internal/jsonscan).
func FuzzScanEvent(f *testing.F) {
	f.Add(ev("impression", "c1", "a", "web"))
	f.Add([]byte(`{"type":"click","content_id":"a\"b\u00e9","image_variant":null,"x":[1,{"y":2}]}`))
	f.Add([]byte(`{"type":"click","type":5}`))
	f.Add([]byte("{\"type\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := scanEvent(data, &defaultFields)
		if !json.Valid(data) {
			return
		}
		if errors.Is(jsonscan.Valid(data), jsonscan.ErrDuplicateKey) {
			if ok {
				t.Fatalf("%q: duplicate keys scanned as %+v", data, got)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			if ok {
				t.Fatalf("scanned %+v from a non-object %q", got, data)
			}
			return
		}
		var want event
		wantOK := true
		for key, dst := range map[string]*string{"type": &want.Type, "content_id": &want.ContentID, "image_variant": &want.ImageVariant, "platform": &want.Platform} {
			switch v := m[key].(type) {
			case nil:
			case string:
				*dst = v
			default:
				wantOK = false
			}
		}
		if ok && (!wantOK || got != want) {
			t.Fatalf("%q: scanned %+v, json says %+v (ok %v)", data, got, want, wantOK)
		}
		// jsonscan refuses nesting deeper than it allows; json does not.
		deep := bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) > 64
		if !ok && wantOK && !deep {
			t.Fatalf("%q: scanner refused, json reads %+v", data, want)
		}
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// BenchmarkScanEvent compares the fold's field scanner with decoding the
// same fields with encoding/json.
func BenchmarkScanEvent(b *testing.B) {
	recs, avg := benchEvents(10_000)
	b.Run("jsonscan", func(b *testing.B) {
		b.SetBytes(int64(avg))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := scanEvent(recs[i%len(recs)].Data, &defaultFields); !ok {
				b.Fatal("not scanned")
			}
			i++
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(avg))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var e event
			if err := json.Unmarshal(recs[i%len(recs)].Data, &e); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

var defaultFields = keyFields{"content_id", "image_variant", "platform"}
