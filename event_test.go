package spate_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

func TestAppendJSONRoundTrips(t *testing.T) {
	pos := int64(42)
	live := true
	tricky := "quote\" backslash\\ nl\n tab\t ctl\x01 html<>& ls\u2028 ps\u2029 émoji🎬"
	e := spate.Event{
		Type: "play_start", EventID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("EET", 7200)),
		ReceivedAt: time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC),
		UserID:     tricky, Platform: "web", Attrs: map[string]string{"z": "1", "a": tricky, "m": ""},
		Props: []spate.Prop{spate.Str("content_id", "c"), spate.Str("image_variant", "v"), spate.Int("position_ms", pos), spate.Bool("live", live)},
	}
	out := e.AppendJSON(nil)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	var back spate.Event
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.UserID != tricky || back.Attrs["a"] != tricky || len(back.Attrs) != 3 {
		t.Errorf("strings changed: %q %q", back.UserID, back.Attrs["a"])
	}
	if !back.OccurredAt.Equal(e.OccurredAt) || back.OccurredAt.Location().String() != "UTC" {
		t.Errorf("occurred_at = %v, want %v in UTC", back.OccurredAt, e.OccurredAt)
	}
	if p, _ := back.Prop("position_ms"); p.Int != 42 || p.Kind != spate.PropInt {
		t.Errorf("numbers changed: %+v", back)
	}
	if p, _ := back.Prop("live"); !p.Bool {
		t.Errorf("numbers changed: %+v", back)
	}
	var raw map[string]any
	_ = json.Unmarshal(out, &raw)
	if raw["occurred_at"] != "2026-01-02T01:04:05.006Z" {
		t.Errorf("occurred_at leaves as %v, want UTC ms with Z", raw["occurred_at"])
	}
	for _, absent := range []string{"anonymous_id", "session_id", "page", "position", "duration_ms", "reason"} {
		if _, ok := raw[absent]; ok {
			t.Errorf("unset %s present in %s", absent, out)
		}
	}
}

func TestItemErrors(t *testing.T) {
	boom := errors.New("boom")
	if errs := spate.ItemErrors(nil, 2); errs[0] != nil || errs[1] != nil {
		t.Errorf("nil error gave %v", errs)
	}
	if errs := spate.ItemErrors(boom, 2); errs[0] != boom || errs[1] != boom {
		t.Errorf("whole-call error gave %v", errs)
	}
	be := spate.NewBatchError(3)
	be.Failed(1, boom)
	errs := spate.ItemErrors(be, 3)
	if errs[0] != nil || errs[1] != boom || errs[2] != nil {
		t.Errorf("batch error gave %v", errs)
	}
	if spate.NewBatchError(2).OrNil() != nil {
		t.Error("empty batch error is not nil")
	}
	if be.Count() != 1 {
		t.Errorf("count = %d", be.Count())
	}
}
