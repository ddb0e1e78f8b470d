package failed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Row is one kept failed event, as read back from the failed-events table.
type Row struct {
	EventID    string
	ReceivedAt time.Time
	Reason     string
	Field      string
	SchemaID   string
	EventType  string
	Payload    []byte
	Truncated  bool
}

// row is the Parquet shape of the columns recovery reads; the others are
// skipped by name.
type row struct {
	EventID    *string `parquet:"event_id,optional"`
	ReceivedAt *int64  `parquet:"received_at,optional,timestamp(millisecond)"`
	Reason     *string `parquet:"reason,optional"`
	Field      *string `parquet:"field,optional"`
	SchemaID   *string `parquet:"schema_id,optional"`
	EventType  *string `parquet:"event_type,optional"`
	Payload    *string `parquet:"payload,optional"`
	Truncated  *bool   `parquet:"truncated,optional"`
}

// ReadFile reads the rows of one failed-events Parquet file.
func ReadFile(data []byte) ([]Row, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("failed events: %w", err)
	}
	r := parquet.NewGenericReader[row](f)
	defer r.Close()
	var out []Row
	buf := make([]row, 256)
	for {
		n, err := r.Read(buf)
		for _, x := range buf[:n] {
			out = append(out, Row{
				EventID: deref(x.EventID), Reason: deref(x.Reason), Field: deref(x.Field), SchemaID: deref(x.SchemaID),
				EventType: deref(x.EventType), Payload: []byte(deref(x.Payload)), Truncated: x.Truncated != nil && *x.Truncated,
				ReceivedAt: millis(x.ReceivedAt),
			})
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed events: %w", err)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func millis(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMilli(*v).UTC()
}

// Files lists the failed-events Parquet files under fsys (dt=/hour=
// partitions), oldest partition first, skipping hours wholly before since.
func Files(fsys fs.FS, since time.Time) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return nil
		}
		if h, ok := partitionHour(p); ok && !since.IsZero() && h.Add(time.Hour).Before(since) {
			return nil
		}
		out = append(out, p)
		return nil
	})
	slices.Sort(out)
	return out, err
}

// partitionHour reads dt=YYYY-MM-DD/hour=HH from a path.
func partitionHour(p string) (time.Time, bool) {
	var dt, hour string
	for _, part := range strings.Split(path.Dir(p), "/") {
		if v, ok := strings.CutPrefix(part, "dt="); ok {
			dt = v
		}
		if v, ok := strings.CutPrefix(part, "hour="); ok {
			hour = v
		}
	}
	t, err := time.Parse("2006-01-02 15", dt+" "+hour)
	return t, err == nil
}
