package registry_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

func TestDecodeRejects(t *testing.T) {
	long := strings.Repeat("x", 129)
	attrs := map[string]string{}
	for i := range 21 {
		attrs[strings.Repeat("k", i+1)] = "v"
	}
	tooMany, _ := json.Marshal(attrs)
	tests := []struct {
		name, body, field, rule string
		sentinel                error
	}{
		{"malformed", `{"type":`, "", "malformed JSON", spate.ErrInvalid},
		{"not an object", `[1,2]`, "", "event must be a JSON object", spate.ErrInvalid},
		{"two values", `{"type":"click"} {}`, "", "more than one value", spate.ErrInvalid},
		{"invalid utf-8", "{\"type\":\"page_view\",\"page\":\"\xff\",\"platform\":\"web\",\"user_id\":\"u\"}", "", "invalid UTF-8", spate.ErrInvalid},
		{"missing type", `{"platform":"web","user_id":"u"}`, "type", "required", spate.ErrInvalid},
		{"unknown type", `{"type":"nope","platform":"web","user_id":"u"}`, "type", "unknown type", spate.ErrUnknownType},
		{"type not a string", `{"type":5}`, "type", "must be a string", spate.ErrInvalid},
		{"unknown field", `{"type":"click","content_id":"c","platform":"web","user_id":"u","colour":"red"}`, "colour", "unknown field", spate.ErrInvalid},
		{"duplicate type", `{"type":"click","type":"impression","content_id":"c","platform":"web","user_id":"u"}`, "type", "duplicate key", spate.ErrInvalid},
		{"duplicate escaped key", `{"type":"click","content_id":"c","platform":"web","user_id":"u","user_\u0069d":"v"}`, "user_id", "duplicate key", spate.ErrInvalid},
		{"duplicate attrs key", `{"type":"click","content_id":"c","platform":"web","user_id":"u","attrs":{"a":"1","a":"2"}}`, "attrs", "duplicate key", spate.ErrInvalid},
		{"field of another type", `{"type":"click","content_id":"c","platform":"web","user_id":"u","page":"/"}`, "page", "not allowed for type click", spate.ErrInvalid},
		{"received_at from client", `{"type":"click","content_id":"c","platform":"web","user_id":"u","received_at":"2026-01-01T00:00:00Z"}`, "received_at", "unknown field", spate.ErrInvalid},
		{"missing platform", `{"type":"click","content_id":"c","user_id":"u"}`, "platform", "required", spate.ErrInvalid},
		{"bad platform", `{"type":"click","content_id":"c","user_id":"u","platform":"fridge"}`, "platform", "must be one of", spate.ErrInvalid},
		{"no user", `{"type":"click","content_id":"c","platform":"web"}`, "user_id", "user_id or anonymous_id required", spate.ErrInvalid},
		{"bad event_id", `{"type":"click","content_id":"c","platform":"web","user_id":"u","event_id":"abc"}`, "event_id", "must be a UUID", spate.ErrInvalid},
		{"braced event_id", `{"type":"click","content_id":"c","platform":"web","user_id":"u","event_id":"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}"}`, "event_id", "must be a UUID", spate.ErrInvalid},
		{"occurred_at not RFC 3339", `{"type":"click","content_id":"c","platform":"web","user_id":"u","occurred_at":"yesterday"}`, "occurred_at", "RFC 3339", spate.ErrInvalid},
		{"occurred_at without offset", `{"type":"click","content_id":"c","platform":"web","user_id":"u","occurred_at":"2026-11-27T10:00:00"}`, "occurred_at", "RFC 3339", spate.ErrInvalid},
		{"occurred_at far future", `{"type":"click","content_id":"c","platform":"web","user_id":"u","occurred_at":"2026-11-28T12:00:01Z"}`, "occurred_at", "in the future", spate.ErrInvalid},
		{"occurred_at far past", `{"type":"click","content_id":"c","platform":"web","user_id":"u","occurred_at":"1970-01-01T00:00:00Z"}`, "occurred_at", "in the past", spate.ErrInvalid},
		{"user_id too long", `{"type":"click","content_id":"c","platform":"web","user_id":"` + long + `"}`, "user_id", "longer than 128 characters", spate.ErrInvalid},
		{"too many attrs", `{"type":"click","content_id":"c","platform":"web","user_id":"u","attrs":` + string(tooMany) + `}`, "attrs", "more than 20 keys", spate.ErrInvalid},
		{"attr not a string", `{"type":"click","content_id":"c","platform":"web","user_id":"u","attrs":{"a":1}}`, "attrs", "must be an object of strings", spate.ErrInvalid},
		{"nested attrs", `{"type":"click","content_id":"c","platform":"web","user_id":"u","attrs":{"a":{"b":"c"}}}`, "attrs", "must be", spate.ErrInvalid},
		{"attr value too long", `{"type":"click","content_id":"c","platform":"web","user_id":"u","attrs":{"a":"` + strings.Repeat("v", 257) + `"}}`, "attrs", "at most 256 characters", spate.ErrInvalid},
		{"negative position", `{"type":"click","content_id":"c","platform":"web","user_id":"u","position":-1}`, "position", "must not be negative", spate.ErrInvalid},
		{"fractional position", `{"type":"click","content_id":"c","platform":"web","user_id":"u","position":1.5}`, "position", "must be an integer", spate.ErrInvalid},
		{"huge number", `{"type":"play_progress","content_id":"c","platform":"web","user_id":"u","position_ms":99999999999999999999999}`, "position_ms", "int64 range", spate.ErrInvalid},
		{"string number", `{"type":"play_progress","content_id":"c","platform":"web","user_id":"u","position_ms":"5"}`, "position_ms", "must be an integer", spate.ErrInvalid},
		{"live not bool", `{"type":"play_start","content_id":"c","platform":"web","user_id":"u","live":"yes"}`, "live", "must be a boolean", spate.ErrInvalid},
		{"page_view without page", `{"type":"page_view","platform":"web","user_id":"u"}`, "page", "required", spate.ErrInvalid},
		{"impression without variant", `{"type":"impression","content_id":"c","platform":"web","user_id":"u"}`, "image_variant", "required", spate.ErrInvalid},
		{"click without content", `{"type":"click","platform":"web","user_id":"u"}`, "content_id", "required", spate.ErrInvalid},
		{"play_start without content", `{"type":"play_start","platform":"web","user_id":"u"}`, "content_id", "required", spate.ErrInvalid},
		{"play_progress without position", `{"type":"play_progress","content_id":"c","platform":"web","user_id":"u"}`, "position_ms", "required", spate.ErrInvalid},
		{"play_end without position", `{"type":"play_end","content_id":"c","platform":"web","user_id":"u"}`, "position_ms", "required", spate.ErrInvalid},
		{"too large", `{"type":"page_view","platform":"web","user_id":"u","page":"` + strings.Repeat("p", 33<<10) + `"}`, "", "larger than", spate.ErrTooLarge},
	}
	reg := registry.New(registry.Limits{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := reg.Decode([]byte(tt.body), now)
			if err == nil {
				t.Fatalf("accepted %+v", e)
			}
			var fe *spate.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.rule) {
				t.Errorf("error %q does not say %q", err, tt.rule)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v is not %v", err, tt.sentinel)
			}
		})
	}
}

func TestDecodeNormalises(t *testing.T) {
	reg := registry.New(registry.Limits{})
	raw := `{"type":"play_start","event_id":"6BA7B810-9DAD-11D1-80B4-00C04FD430C8","occurred_at":"2026-11-27T14:00:00.123456+02:00",
		"user_id":"u1","session_id":"s1","platform":"tv","content_id":"c1","image_variant":"hero_a","position_ms":0,"live":false,"attrs":{"k":"v"},"app_version":null}`
	e, err := reg.Decode([]byte(raw), now)
	if err != nil {
		t.Fatal(err)
	}
	if e.EventID != "6ba7b810-9dad-11d1-80b4-00c04fd430c8" {
		t.Errorf("event_id = %s", e.EventID)
	}
	if want := time.Date(2026, 11, 27, 12, 0, 0, 123000000, time.UTC); !e.OccurredAt.Equal(want) || e.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at = %v, want %v", e.OccurredAt, want)
	}
	if want := now.Truncate(time.Millisecond); !e.ReceivedAt.Equal(want) {
		t.Errorf("received_at = %v, want %v", e.ReceivedAt, want)
	}
	if p, ok := e.Prop("position_ms"); !ok || p.Int != 0 {
		t.Errorf("zero value lost: position_ms %+v", p)
	}
	if p, ok := e.Prop("live"); !ok || p.Bool {
		t.Errorf("zero value lost: live %+v", p)
	}
	if e.PartitionKey() != "s1" {
		t.Errorf("partition key = %s", e.PartitionKey())
	}
	got := string(e.AppendJSON(nil))
	want := `{"type":"play_start","event_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","occurred_at":"2026-11-27T12:00:00.123Z","received_at":"2026-11-27T12:00:00.123Z","user_id":"u1","session_id":"s1","platform":"tv","attrs":{"k":"v"},"content_id":"c1","image_variant":"hero_a","position_ms":0,"live":false}`
	if got != want {
		t.Errorf("canonical JSON\n got %s\nwant %s", got, want)
	}
}

func TestDecodeAssignsDefaults(t *testing.T) {
	reg := registry.New(registry.Limits{})
	e, err := reg.Decode([]byte(`{"type":"page_view","page":"/","platform":"web","anonymous_id":"a"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.EventID) != 36 || e.EventID[14] != '7' {
		t.Errorf("assigned event_id %q is not a UUIDv7", e.EventID)
	}
	if !e.OccurredAt.Equal(e.ReceivedAt) {
		t.Errorf("occurred_at %v should default to received_at %v", e.OccurredAt, e.ReceivedAt)
	}
	if e.PartitionKey() != e.EventID {
		t.Errorf("partition key without session or user = %q, want the event id", e.PartitionKey())
	}
}

func TestEveryTypeAcceptsItsFields(t *testing.T) {
	reg := registry.New(registry.Limits{})
	values := map[registry.Kind]string{registry.String: `"x"`, registry.Int64: `7`, registry.Bool: `true`, registry.StringMap: `{"a":"b"}`, registry.Timestamp: `"2026-11-27T11:00:00Z"`}
	for _, typ := range reg.Types() {
		s, _ := reg.Schema(typ)
		var parts []string
		for _, c := range s.Columns {
			v := values[c.Kind]
			switch c.Name {
			case "received_at":
				continue
			case "type":
				v = `"` + typ + `"`
			case "platform":
				v = `"ios"`
			case "event_id":
				v = `"6ba7b810-9dad-11d1-80b4-00c04fd430c8"`
			}
			parts = append(parts, `"`+c.Name+`":`+v)
		}
		e, err := reg.Decode([]byte("{"+strings.Join(parts, ",")+"}"), now)
		if err != nil {
			t.Errorf("%s with every field: %v", typ, err)
			continue
		}
		for _, c := range s.Columns {
			if _, set := c.Value(e); !set {
				t.Errorf("%s: %s not set after decode", typ, c.Name)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"impression","content_id":"c","image_variant":"a","platform":"web","user_id":"u","position":3,"attrs":{"a":"b"}}`))
	f.Add([]byte(`{"type":"play_end","content_id":"c","position_ms":1,"platform":"tv","anonymous_id":"a","occurred_at":"2026-11-27T11:00:00+02:00","reason":"completed"}`))
	f.Add([]byte(`{"type":"page_view","page":"\u2028\"\\","platform":"web","user_id":"u"}`))
	f.Add([]byte("{\"type\":\"x\xff\"}"))
	f.Add([]byte(`[[[[[[[[[[{}]]]]]]]]]]`))
	reg := registry.New(registry.Limits{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := reg.Decode(raw, now)
		if err != nil {
			var fe *spate.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		// What the registry accepts must leave as valid JSON that decodes
		// back to the same event and is accepted again.
		out := e.AppendJSON(nil)
		var back spate.Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("canonical JSON %s does not decode: %v", out, err)
		}
		if again := back.AppendJSON(nil); string(again) != string(out) {
			t.Fatalf("round trip changed\n%s\n%s", out, again)
		}
	})
}
