package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/jsonscan"
	"github.com/spate-dev/spate/registry"
)

func testDecoder() *decoder {
	d := &decoder{types: map[string]string{}}
	for _, t := range registry.New(registry.Limits{}).Types() {
		d.types[t] = t
	}
	return d
}

func TestDecode(t *testing.T) {
	pos := int64(3)
	canonical := (&spate.Event{Type: "click", EventID: "0190a3c4-1111-7000-8000-000000000001", Platform: "web",
		UserID: "u1", Props: []spate.Prop{spate.Str("content_id", "c1"), spate.Int("position", pos)}, OccurredAt: time.Unix(1700000000, 0), ReceivedAt: time.Unix(1700000001, 0),
		Attrs: map[string]string{"k": "line\nbreak"}}).AppendJSON(nil)
	tests := []struct {
		name     string
		in       string
		typ      string
		out      string // "" means the input itself
		err      error
		sameData bool
	}{
		{name: "canonical", in: string(canonical), typ: "click", sameData: true},
		{name: "other key order", in: `{"platform":"web","type":"page_view","page":"/"}`, typ: "page_view", out: `{"platform":"web","type":"page_view","page":"/"}`},
		{name: "whitespace and newlines compacted", in: "{\n  \"type\" : \"play_end\",\n  \"reason\": \"a b\"\n}\n", typ: "play_end", out: `{"type":"play_end","reason":"a b"}`},
		{name: "escaped type", in: `{"type":"cl\u0069ck"}`, typ: "click", out: `{"type":"cl\u0069ck"}`},
		{name: "duplicate type refused", in: `{"type":"click","type":"impression"}`, err: spate.ErrInvalid},
		{name: "duplicate slow path refused", in: `{"a":1,"type":"click","typ\u0065":"impression"}`, err: spate.ErrInvalid},
		{name: "nested duplicate refused", in: `{"type":"click","attrs":{"k":"1","k":"2"}}`, err: spate.ErrInvalid},
		{name: "unknown type", in: `{"type":"purchase"}`, err: spate.ErrUnknownType},
		{name: "unknown type slow path", in: `{"a":1,"type":"purchase"}`, err: spate.ErrUnknownType},
		{name: "empty type", in: `{"type":""}`, err: spate.ErrUnknownType},
		{name: "type not a string", in: `{"type":7}`, err: spate.ErrInvalid},
		{name: "no type", in: `{"event_id":"x"}`, err: spate.ErrInvalid},
		{name: "not an object", in: `["type","click"]`, err: spate.ErrInvalid},
		{name: "truncated", in: `{"type":"click","platform":"w`, err: spate.ErrInvalid},
		{name: "two objects", in: `{"type":"click"}{"type":"click"}`, err: spate.ErrInvalid},
		{name: "aws sample data", in: "Hello World", err: spate.ErrInvalid},
		{name: "empty", in: "", err: spate.ErrInvalid},
	}
	d := testDecoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, out, err := d.decode([]byte(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if typ != tc.typ {
				t.Errorf("type = %q, want %q", typ, tc.typ)
			}
			want := tc.out
			if tc.sameData {
				want = tc.in
			}
			if string(out) != want {
				t.Errorf("out = %s, want %s", out, want)
			}
		})
	}
}

func TestDecodeCanonicalDoesNotCopy(t *testing.T) {
	in := []byte(`{"type":"page_view","event_id":"e","platform":"web","page":"/"}`)
	_, out, err := testDecoder().decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &in[0] {
		t.Error("canonical input was copied")
	}
}

// FuzzDecode checks what packing relies on: whatever decode accepts is one
// compact JSON object without a newline, of a type the registry knows, and
// the same object as its input, and that input names no key twice.
func FuzzDecode(f *testing.F) {
	pos := int64(1)
	for _, e := range []*spate.Event{
		{Type: "impression", EventID: "0190a3c4-1111-7000-8000-000000000001", Platform: "tv", AnonymousID: "a", Props: []spate.Prop{spate.Str("content_id", "c"), spate.Str("image_variant", "v"), spate.Int("position", pos)}},
		{Type: "page_view", Platform: "web", UserID: "u", Props: []spate.Prop{spate.Str("page", "/\u2028\"x\"")}, Attrs: map[string]string{"a": "b"}},
	} {
		f.Add(e.AppendJSON(nil))
	}
	f.Add([]byte(`{"type":"click"}`))
	f.Add([]byte("{\"type\"\n:\"click\"}"))
	f.Add([]byte(`{"type":"cl\u0069ck"}`))
	f.Add([]byte(`{"type":"click","x":[1,{"y":null}]}`))
	f.Add([]byte(`Hello World`))
	f.Add([]byte(`{"type":"click","type":"impression"}`))
	d := testDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, out, err := d.decode(data)
		if err != nil {
			if !errors.Is(err, spate.ErrInvalid) && !errors.Is(err, spate.ErrUnknownType) {
				t.Fatalf("error %v is neither ErrInvalid nor ErrUnknownType", err)
			}
			return
		}
		if d.types[typ] != typ {
			t.Fatalf("type %q not in the registry", typ)
		}
		if jsonscan.Valid(data) != nil {
			t.Fatalf("accepted %q, which jsonscan refuses (duplicate keys or syntax)", data)
		}
		if !json.Valid(out) || bytes.IndexByte(out, '\n') >= 0 || len(out) == 0 || out[0] != '{' {
			t.Fatalf("output %q is not one compact object", out)
		}
		var a, b any
		if json.Unmarshal(data, &a) != nil || json.Unmarshal(out, &b) != nil {
			t.Fatal("output or input does not unmarshal")
		}
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if !bytes.Equal(aj, bj) {
			t.Fatalf("output %s is not the input %s", out, data)
		}
	})
}
