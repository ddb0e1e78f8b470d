package failed_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/failed"
	"github.com/spate-dev/spate/registry"
)

var at = time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)

type dest struct {
	mu   sync.Mutex
	recs [][]byte
	err  error
}

func (d *dest) PutBatch(_ context.Context, stream string, recs [][]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if stream != "failed" {
		return errors.New("wrong stream " + stream)
	}
	if d.err != nil {
		return d.err
	}
	for _, r := range recs {
		d.recs = append(d.recs, append([]byte(nil), r...))
	}
	return nil
}

func keepAll(t *testing.T, d *dest, raws []string) []spate.Event {
	t.Helper()
	reg := registry.New(registry.Limits{})
	k := failed.New(d, reg, failed.Config{Linger: time.Hour}, nil)
	done := make(chan struct{})
	go func() { k.Run(context.Background()); close(done) }()
	for _, raw := range raws {
		_, err := reg.Decode([]byte(raw), at)
		if err == nil {
			t.Fatalf("%s is valid", raw)
		}
		k.Keep([]byte(raw), err, at)
	}
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	var out []spate.Event
	for _, r := range d.recs {
		var e spate.Event
		if err := json.Unmarshal(r, &e); err != nil {
			t.Fatalf("record %s: %v", r, err)
		}
		out = append(out, e)
	}
	if st := k.Stats(); st.Kept != int64(len(raws)) || st.Dropped != 0 {
		t.Errorf("stats = %+v", st)
	}
	return out
}

func TestKeepRecordsTheFailure(t *testing.T) {
	raw := `{"type":"click","event_id":"6BA7B810-9DAD-11D1-80B4-00C04FD430C8","platform":"web","user_id":"u1","content_id":"c","colour":"red"}`
	got := keepAll(t, &dest{}, []string{raw})
	if len(got) != 1 {
		t.Fatalf("%d records", len(got))
	}
	e := got[0]
	if e.Type != "failed" || e.EventID != "6ba7b810-9dad-11d1-80b4-00c04fd430c8" || e.UserID != "u1" || e.Platform != "web" {
		t.Errorf("envelope = %+v", e)
	}
	if !e.ReceivedAt.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("received_at = %v", e.ReceivedAt)
	}
	want := map[string]string{"event_type": "click", "schema_id": "https://schemas.spate.dev/click/1-0-0.json", "field": "colour", "payload": raw}
	for k, v := range want {
		if e.String(k) != v {
			t.Errorf("%s = %q, want %q", k, e.String(k), v)
		}
	}
	if !strings.Contains(e.String("reason"), "unknown field") {
		t.Errorf("reason = %q", e.String("reason"))
	}
	if p, ok := e.Prop("truncated"); !ok || p.Bool {
		t.Errorf("truncated = %+v", p)
	}
}

func TestKeepBoundsThePayloadAndAssignsAnID(t *testing.T) {
	raw := `{"type":"page_view","platform":"web","user_id":"u","page":"` + strings.Repeat("p", 40<<10) + `"}`
	got := keepAll(t, &dest{}, []string{raw, `{"type":`})
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	if p := got[0].String("payload"); len(p) != failed.MaxPayload {
		t.Errorf("payload is %d bytes, want %d", len(p), failed.MaxPayload)
	}
	if p, _ := got[0].Prop("truncated"); !p.Bool {
		t.Error("truncated not set")
	}
	for _, e := range got {
		if len(e.EventID) != 36 || e.EventID[14] != '7' {
			t.Errorf("event_id %q is not an assigned UUIDv7", e.EventID)
		}
	}
	if got[1].String("payload") != `{"type":` || got[1].String("event_type") != "" {
		t.Errorf("malformed event kept as %+v", got[1])
	}
}

func TestKeepNeverBlocks(t *testing.T) {
	k := failed.New(&dest{}, registry.New(registry.Limits{}), failed.Config{Queue: 1}, nil)
	for range 3 {
		k.Keep([]byte(`{}`), errors.New("x"), at) // nothing drains the queue
	}
	if st := k.Stats(); st.Dropped != 2 {
		t.Errorf("dropped = %d, want 2", st.Dropped)
	}
}

func TestKeepBoundsQueuedBytes(t *testing.T) {
	k := failed.New(&dest{}, registry.New(registry.Limits{}), failed.Config{QueueBytes: 100 << 10}, nil)
	big := make([]byte, 40<<10)
	for range 4 {
		k.Keep(big, errors.New("x"), at) // 32 KiB kept of each; the fourth passes 100 KiB
	}
	if st := k.Stats(); st.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", st.Dropped)
	}
}

func TestKeepCountsDestinationFailures(t *testing.T) {
	d := &dest{err: errors.New("firehose down")}
	k := failed.New(d, registry.New(registry.Limits{}), failed.Config{}, nil)
	done := make(chan struct{})
	go func() { k.Run(context.Background()); close(done) }()
	k.Keep([]byte(`{}`), errors.New("x"), at)
	_ = k.Close(context.Background())
	<-done
	if st := k.Stats(); st.Dropped != 1 || st.Kept != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRecoverKeepsIDsAndSendsNothingTwice(t *testing.T) {
	reg := registry.New(registry.Limits{})
	received := at.Add(-time.Hour).Truncate(time.Millisecond)
	rows := []failed.Row{
		{EventID: "0190a3c4-0000-7000-8000-000000000001", ReceivedAt: received, Payload: []byte(`{"type":"click","platform":"web","user_id":"u","content_id":"c"}`)},
		{EventID: "0190a3c4-0000-7000-8000-000000000002", ReceivedAt: received, Payload: []byte(`{"type":"click","platform":"web","user_id":"u"}`)},
		{EventID: "0190a3c4-0000-7000-8000-000000000003", ReceivedAt: received, Payload: []byte(`{"type":"click","platform":"web","user_id":"u","content_id":"c","content_id":"d"}`)},
		{EventID: "0190a3c4-0000-7000-8000-000000000004", ReceivedAt: received, Truncated: true, Payload: []byte(`{"type"`)},
		{EventID: "0190a3c4-0000-7000-8000-000000000005", ReceivedAt: at.Add(-48 * time.Hour), Payload: []byte(`{"type":"click","platform":"web","user_id":"u","content_id":"c"}`)},
	}
	var sent []string
	done := map[string]bool{}
	cfg := failed.RecoverConfig{
		Registry: reg, Done: done, Now: func() time.Time { return at }, Since: at.Add(-24 * time.Hour),
		Post: func(_ context.Context, body []byte) ([]bool, error) {
			var b struct{ Events []json.RawMessage }
			if err := json.Unmarshal(body, &b); err != nil {
				return nil, err
			}
			ok := make([]bool, len(b.Events))
			for i, e := range b.Events {
				sent = append(sent, string(e))
				ok[i] = true
			}
			return ok, nil
		},
		Record: func(ids []string) error { return nil },
	}
	res, err := failed.Recover(context.Background(), rows, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered != 1 || res.Failing != 3 || res.Already != 0 {
		t.Fatalf("first run = %+v", res)
	}
	if res.Reasons["content_id: required"] != 1 || res.Reasons["duplicate key"] != 1 || res.Reasons["payload truncated at 32 KiB"] != 1 {
		t.Errorf("reasons = %v", res.Reasons)
	}
	var e spate.Event
	if err := json.Unmarshal([]byte(sent[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e.EventID != rows[0].EventID || !e.OccurredAt.Equal(received) {
		t.Errorf("sent with event_id %s occurred_at %v, want %s %v", e.EventID, e.OccurredAt, rows[0].EventID, received)
	}
	res, err = failed.Recover(context.Background(), rows, cfg)
	if err != nil || res.Recovered != 0 || res.Already != 1 || len(sent) != 1 {
		t.Fatalf("second run = %+v (%v), %d sent in all", res, err, len(sent))
	}
}

// TestRecordReadsNoEnvelopeFromDuplicateKeys: a payload refused for naming
// a key twice gives no identifier columns (which of the two would be
// true?), as recover refuses it too; the payload itself is kept.
func TestRecordReadsNoEnvelopeFromDuplicateKeys(t *testing.T) {
	k := failed.New(&dest{}, registry.New(registry.Limits{}), failed.Config{}, nil)
	raw := `{"type":"click","user_id":"first","user_id":"second"}`
	var row map[string]any
	if err := json.Unmarshal(k.Record([]byte(raw), false, "duplicate key", "user_id", at), &row); err != nil {
		t.Fatal(err)
	}
	if row["user_id"] != nil || row["payload"] != raw {
		t.Errorf("row %v: want no user_id and the payload as sent", row)
	}
}
