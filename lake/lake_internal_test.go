package lake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/jsonscan"
	"github.com/spate-dev/spate/registry"
)

func full(typ string) *spate.Event {
	at := time.Date(2026, 3, 1, 12, 0, 0, 5e6, time.UTC)
	e := &spate.Event{Type: typ, EventID: "0190a3c4-0000-7000-8000-000000000001", OccurredAt: at, ReceivedAt: at.Add(time.Second),
		UserID: "u", AnonymousID: "a", SessionID: "s", Platform: "ios", AppVersion: "1.2", Attrs: map[string]string{"k": "v"},
		Props: []spate.Prop{spate.Str("page", "/p"), spate.Str("referrer", "/r"), spate.Str("content_id", "c"), spate.Str("image_variant", "iv"),
			spate.Str("list_id", "l"), spate.Int("position", 1), spate.Int("position_ms", 2), spate.Int("duration_ms", 3),
			spate.Bool("live", true), spate.Str("reason", "completed")}}
	s, _ := registry.New(registry.Limits{}).Schema(typ)
	var own []spate.Prop
	for _, p := range e.Props {
		if _, ok := s.Column(p.Name); ok {
			own = append(own, p)
		}
	}
	e.Props = own
	return e
}

// TestAccessorsMatchRegistry keeps the lake's field accessors and the
// registry's in step: a field added to one only fails here.
func TestAccessorsMatchRegistry(t *testing.T) {
	reg := registry.New(registry.Limits{})
	for _, typ := range reg.Types() {
		s, _ := reg.Schema(typ)
		tb, err := newTable(s)
		if err != nil {
			t.Fatal(err)
		}
		e := full(typ)
		for i, c := range tb.cols {
			if c.prop {
				continue // read from Props by name; TestRoundTrip covers them
			}
			want, set := s.Columns[i].Value(e)
			if !set {
				t.Fatalf("%s: field %s not set in the test event", typ, c.name)
			}
			var got any
			switch c.kind {
			case registry.String:
				got = c.str(e)
			case registry.Timestamp:
				got = c.ts(e)
			case registry.StringMap:
				got = e.Attrs
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s.%s: accessor %v, registry %v", typ, c.name, got, want)
			}
		}
	}
}

func TestFlushByInterval(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l, err := Open(registry.New(registry.Limits{}), Config{Dir: t.TempDir(), FlushInterval: time.Hour, Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	if err := l.PutBatch(context.Background(), "click", [][]byte{append(full("click").AppendJSON(nil), '\n')}); err != nil {
		t.Fatal(err)
	}
	files := func() int {
		m, _ := filepath.Glob(filepath.Join(l.Dir(), "click", "*", "*", "*.parquet"))
		return len(m)
	}
	if err := l.flushDue(now.Add(time.Hour - time.Millisecond)); err != nil || files() != 0 {
		t.Fatalf("flushed before the interval: err %v, files %d", err, files())
	}
	if err := l.flushDue(now.Add(time.Hour)); err != nil || files() != 1 {
		t.Fatalf("not flushed at the interval: err %v, files %d", err, files())
	}
	if st := l.Stats(); st.Files != 1 || st.Rows != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// FuzzParse checks the hand-written decoder against encoding/json: for any
// single JSON object both accept, the events are the same.
func FuzzParse(f *testing.F) {
	for _, typ := range registry.New(registry.Limits{}).Types() {
		f.Add(full(typ).AppendJSON(nil))
	}
	f.Add([]byte(`{"type":"click","attrs":{"b":"1","a":"\u00e9\n"},"position":-0}`))
	f.Add([]byte(`{"type":"click","occurred_at":"2026-02-29T00:00:00.000Z"}`))
	f.Add([]byte(`{"type":"click","occurred_at":"2024-02-29T23:59:59.999Z","live":false}`))
	f.Add([]byte(`{"Type":"click","position":1e3,"extra":[1]}`))
	f.Add([]byte(`{"page":"\ud83d\ude00","referrer":"\u0000"}`))
	f.Add([]byte(` {"user_id" : "x" , "live":true } `))
	f.Add([]byte(`{"attrs":{"a":"1","a":"2"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p parser
		var ev event
		n, err := p.next(data, &ev)
		var want spate.Event
		jerr := json.Unmarshal(data, &want)
		trimmed := bytes.TrimSpace(data)
		isObject := len(trimmed) > 0 && trimmed[0] == '{'
		// The pipeline refuses duplicate keys where encoding/json keeps the
		// last (internal/jsonscan): the first object decides.
		_, uerr := jsonscan.SkipUnique(data, jsonscan.SkipWS(data, 0))
		if dup := errors.Is(uerr, jsonscan.ErrDuplicateKey); dup || (err != nil && errors.Is(err, jsonscan.ErrDuplicateKey)) {
			if !dup || err == nil {
				t.Fatalf("parse = %v, reference duplicate = %v", err, dup)
			}
			return
		}
		if err != nil {
			if jerr == nil && isObject {
				t.Fatalf("parse failed (%v) where encoding/json succeeded", err)
			}
			return
		}
		if jerr != nil {
			// The parser reads the first object only; trailing data is the
			// caller's next object.
			if rest := bytes.TrimSpace(data[n:]); len(rest) == 0 {
				t.Fatalf("parse accepted what encoding/json refuses (%v)", jerr)
			}
			return
		}
		got := ev.Event
		got.Attrs = nil
		for _, a := range ev.attrs {
			if got.Attrs == nil {
				got.Attrs = map[string]string{}
			}
			got.Attrs[a.k] = a.v
		}
		if len(want.Attrs) == 0 {
			want.Attrs = nil
		}
		if !got.OccurredAt.Equal(want.OccurredAt) || !got.ReceivedAt.Equal(want.ReceivedAt) {
			t.Fatalf("times %v %v, want %v %v", got.OccurredAt, got.ReceivedAt, want.OccurredAt, want.ReceivedAt)
		}
		got.OccurredAt, got.ReceivedAt, want.OccurredAt, want.ReceivedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parsed %+v, encoding/json %+v", got, want)
		}
	})
}

func TestParseConcatenatedObjects(t *testing.T) {
	rec := []byte("{\"type\":\"click\",\"user_id\":\"a\"}{\"type\":\"click\",\"user_id\":\"b\"} \n{\"user_id\":\"c\",\"type\":\"click\"}\n")
	tb, _ := newTable(mustSchema(t, "click"))
	tw := &tableWriter{t: tb}
	if err := tw.parse(rec); err != nil {
		t.Fatal(err)
	}
	if len(tw.rows) != 3 {
		t.Fatalf("rows = %d, want 3", len(tw.rows))
	}
	if err := tw.parse([]byte(`{"type":"click"} nope`)); err == nil {
		t.Error("trailing garbage accepted")
	}
}

func mustSchema(t *testing.T, typ string) *registry.Schema {
	s, ok := registry.New(registry.Limits{}).Schema(typ)
	if !ok {
		t.Fatal(typ)
	}
	return s
}
