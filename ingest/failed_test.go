package ingest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/batch"
	"github.com/spate-dev/spate/ingest"
)

type kept struct {
	mu    sync.Mutex
	raws  []string
	rules []string
}

func (k *kept) Keep(raw []byte, err error, _ time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.raws = append(k.raws, string(raw))
	k.rules = append(k.rules, err.Error())
}

// TestRejectedEventsAreKept: every rejected event, and an undecodable body,
// goes to the keeper, and the answers are what they are without one.
func TestRejectedEventsAreKept(t *testing.T) {
	bad := `{"type":"click","platform":"web","user_id":"u"}`
	good := `{"type":"click","platform":"web","user_id":"u","content_id":"c"}`
	bodies := []string{`{"events":[` + good + `,` + bad + `]}`, bad, `{"events":[{"type":`}
	var without []response
	h := newHarness(t, ingest.Config{}, batch.Config{})
	for _, b := range bodies {
		without = append(without, h.do(t, "POST", "application/json", b, nil))
	}
	k := &kept{}
	h = newHarness(t, ingest.Config{Failed: k}, batch.Config{})
	for i, b := range bodies {
		r := h.do(t, "POST", "application/json", b, nil)
		if r.status != without[i].status || r.body["field"] != without[i].body["field"] || r.body["error"] != without[i].body["error"] {
			t.Errorf("body %d answered %d %v with a keeper, %d %v without", i, r.status, r.body, without[i].status, without[i].body)
		}
	}
	if len(k.raws) != 3 || k.raws[0] != bad || k.raws[1] != bad || k.raws[2] != bodies[2] {
		t.Fatalf("kept %q", k.raws)
	}
	if k.rules[0] != "content_id: required" {
		t.Errorf("rule = %q", k.rules[0])
	}
}
