package failed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/internal/jsonscan"
	"github.com/spate-dev/spate/registry"
)

// RecoverConfig wires a recovery run.
type RecoverConfig struct {
	// Registry is the current schemas events are re-validated against.
	Registry *registry.Registry
	// Post sends one {"events":[...]} body to ingest and reports, per
	// event, whether ingest accepted it. An error stops the run (what was
	// sent before it is in the ledger).
	Post func(ctx context.Context, body []byte) ([]bool, error)
	// Done holds the event_ids recovered by earlier runs (the ledger);
	// Record appends the ids of a batch ingest accepted to it.
	Done   map[string]bool
	Record func(ids []string) error
	// Since skips events received before it.
	Since time.Time
	// Now is the clock re-validation uses (nil: clock.Wall).
	Now func() time.Time
	// Batch is events per POST (default 100).
	Batch int
}

// RecoverResult counts a run.
type RecoverResult struct {
	Recovered int            // accepted by ingest now
	Already   int            // recovered by an earlier run (in the ledger)
	Failing   int            // still invalid against the current schemas, or rejected by ingest
	Reasons   map[string]int // why the failing ones fail, by rule
}

// Recover re-validates rows and posts the ones that now pass, with their
// event_id (the failed record's when the client sent none) and occurred_at
// (the original receipt when the client sent none), so a recovered event is
// the event the client meant, not a new one. Ids already in Done are
// skipped: a second run sends nothing twice.
func Recover(ctx context.Context, rows []Row, cfg RecoverConfig) (RecoverResult, error) {
	cfg.Now = clock.Or(cfg.Now)
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	res := RecoverResult{Reasons: map[string]int{}}
	fail := func(why string) {
		res.Failing++
		res.Reasons[why]++
	}
	var body []byte
	var ids []string
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		body = append(body, "]}"...)
		ok, err := cfg.Post(ctx, body)
		if err != nil {
			return err
		}
		var done []string
		for i, id := range ids {
			if i < len(ok) && ok[i] {
				done = append(done, id)
				res.Recovered++
			} else {
				fail("rejected by ingest")
			}
		}
		if err := cfg.Record(done); err != nil {
			return fmt.Errorf("recover: ledger: %w", err)
		}
		for _, id := range done {
			cfg.Done[id] = true
		}
		body, ids = body[:0], ids[:0]
		return nil
	}
	for _, r := range rows {
		if !cfg.Since.IsZero() && r.ReceivedAt.Before(cfg.Since) {
			continue
		}
		if r.Truncated {
			fail("payload truncated at 32 KiB")
			continue
		}
		ev, err := prepare(r)
		if err != nil {
			fail(err.Error())
			continue
		}
		e, err := cfg.Registry.Decode(ev, cfg.Now())
		if err != nil {
			fail(rule(err))
			continue
		}
		if cfg.Done[e.EventID] || contains(ids, e.EventID) {
			res.Already++
			continue
		}
		if len(ids) == 0 {
			body = append(body[:0], `{"events":[`...)
		} else {
			body = append(body, ',')
		}
		body = append(body, ev...)
		ids = append(ids, e.EventID)
		if len(ids) >= cfg.Batch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// rule is an error's rule without the value-specific detail, for counting.
func rule(err error) string {
	if fe, ok := err.(*spate.FieldError); ok {
		if fe.Field != "" {
			return fe.Field + ": " + fe.Rule
		}
		return fe.Rule
	}
	return err.Error()
}

// prepare gives r's payload the failed record's event_id and receipt time
// as occurred_at where the client sent none. A payload with a duplicate
// top-level key is left failing: rewriting it would pick a value for the
// client.
func prepare(r Row) ([]byte, error) {
	fields, err := objectFields(r.Payload)
	if err != nil {
		return nil, err
	}
	absent := func(k string) bool {
		v, ok := fields[k]
		return !ok || string(v) == "null" || string(v) == `""`
	}
	if absent("event_id") && r.EventID != "" {
		fields["event_id"], _ = json.Marshal(r.EventID)
	}
	if absent("occurred_at") && !r.ReceivedAt.IsZero() {
		fields["occurred_at"], _ = json.Marshal(r.ReceivedAt.UTC().Format(spate.TimeLayout))
	}
	return json.Marshal(fields)
}

// objectFields reads raw as one JSON object's top-level fields, refusing
// an object that names a key twice at any depth, as every reader of events
// does (internal/jsonscan): the keeper's envelope columns and recover then
// read a payload the same way.
func objectFields(raw []byte) (map[string]json.RawMessage, error) {
	switch err := jsonscan.Valid(raw); {
	case errors.Is(err, jsonscan.ErrDuplicateKey):
		return nil, errors.New("duplicate key")
	case err != nil:
		return nil, errors.New("malformed JSON")
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return nil, errors.New("not a JSON object")
	}
	return fields, nil
}
