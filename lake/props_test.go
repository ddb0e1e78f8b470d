package lake

import (
	"context"
	"testing"
	"time"

	"github.com/spate-dev/spate/registry"
)

// TestPropsAreCheckedAgainstTheColumns: a type's own field of the wrong
// kind is a conversion error, as Firehose's would be; a field that is no
// column is not stored, as Firehose's JSON SerDe ignores it.
func TestPropsAreCheckedAgainstTheColumns(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l, err := Open(registry.New(registry.Limits{}), Config{Dir: t.TempDir(), FlushInterval: time.Hour, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	recs := [][]byte{
		[]byte(`{"type":"click","event_id":"0190a3c4-0000-7000-8000-000000000001","platform":"web","content_id":"c","position":"7"}` + "\n"),
		[]byte(`{"type":"click","event_id":"0190a3c4-0000-7000-8000-000000000002","platform":"web","content_id":"c","shelf":"x"}` + "\n"),
		[]byte(`{"type":"click","event_id":"0190a3c4-0000-7000-8000-000000000003","platform":"web","content_id":"c","position":7,"live":true}` + "\n"),
	}
	if err := l.PutBatch(context.Background(), "click", recs); err != nil {
		t.Fatal(err)
	}
	tw := l.tables["click"]
	tw.mu.Lock()
	rows := len(tw.rows)
	tw.mu.Unlock()
	if st := l.Stats(); st.ConversionErrors != 1 {
		t.Errorf("conversion errors = %d, want 1 (the string position)", st.ConversionErrors)
	}
	if st := l.Stats(); st.Rows+int64(rows) != 2 {
		t.Errorf("rows = %d written + %d buffered, want 2", st.Rows, rows)
	}
}
