// Package plan turns a broadcast schedule into a capacity and cost plan for
// every stage of the pipeline (Fargate ingest, Kinesis, the router Lambda,
// the Firehose type streams, the SQS dead-letter queue, the load balancer)
// and into the actions that put that capacity in place ahead of each peak:
// ECS scheduled actions and Kinesis shard-count steps that respect the
// services' own limits. It is pure arithmetic: no AWS SDK, no clock.
package plan

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrSchedule marks a schedule that cannot be planned from.
var ErrSchedule = errors.New("invalid schedule")

// DefaultRequestsPerViewerMinute converts expected concurrent viewers into
// ingest requests: a player reports play_progress every 30 s, so two
// requests a minute per viewer, with page views, impressions and clicks
// folded into the same figure. Override it when the players report
// differently.
const DefaultRequestsPerViewerMinute = 2

// Broadcast is one scheduled programme and the traffic it brings.
type Broadcast struct {
	Title string
	Start time.Time
	End   time.Time
	// PeakRequestsPerMinute is the ingest traffic expected at the
	// broadcast's peak, everyday traffic included.
	PeakRequestsPerMinute float64
	// ConcurrentViewers is what the schedule gave when it gave viewers
	// instead of requests; PeakRequestsPerMinute is derived from it.
	ConcurrentViewers float64
}

// ScheduleOptions tune how a schedule is read.
type ScheduleOptions struct {
	// RequestsPerViewerMinute converts concurrent_viewers to requests per
	// minute; zero means DefaultRequestsPerViewerMinute.
	RequestsPerViewerMinute float64
}

type scheduleRow struct {
	Start                 string   `json:"start"`
	End                   string   `json:"end"`
	Title                 string   `json:"title"`
	PeakRequestsPerMinute *float64 `json:"peak_requests_per_minute,omitempty"`
	ConcurrentViewers     *float64 `json:"concurrent_viewers,omitempty"`
}

// ParseSchedule reads a broadcast schedule: CSV with the header
// start,end,title,peak_requests_per_minute (or concurrent_viewers in place
// of, or beside, the last column), or JSON, either an array of objects with
// the same fields or {"broadcasts": [...]}. Times are RFC 3339 and must carry
// their offset, so a local time in a DST change is never ambiguous. Each row
// gives exactly one of peak_requests_per_minute and concurrent_viewers. The
// broadcasts come back sorted by start.
func ParseSchedule(r io.Reader, opts ScheduleOptions) ([]Broadcast, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read schedule: %w", err)
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrSchedule)
	}
	var rows []scheduleRow
	var lines []int
	if trimmed[0] == '[' || trimmed[0] == '{' {
		rows, err = parseJSONRows(trimmed)
		for i := range rows {
			lines = append(lines, i+1)
		}
	} else {
		rows, lines, err = parseCSVRows(raw)
	}
	if err != nil {
		return nil, err
	}
	perViewer := opts.RequestsPerViewerMinute
	if perViewer == 0 {
		perViewer = DefaultRequestsPerViewerMinute
	}
	if perViewer < 0 || math.IsNaN(perViewer) || math.IsInf(perViewer, 0) {
		return nil, fmt.Errorf("%w: requests per viewer minute must be positive", ErrSchedule)
	}
	out := make([]Broadcast, 0, len(rows))
	for i, row := range rows {
		b, err := row.broadcast(perViewer)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrSchedule, lines[i], err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no broadcasts", ErrSchedule)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

func parseJSONRows(raw []byte) ([]scheduleRow, error) {
	var rows []scheduleRow
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if raw[0] == '{' {
		var doc struct {
			Broadcasts []scheduleRow `json:"broadcasts"`
		}
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%w: json: %v", ErrSchedule, err)
		}
		rows = doc.Broadcasts
	} else if err := dec.Decode(&rows); err != nil {
		return nil, fmt.Errorf("%w: json: %v", ErrSchedule, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: json: trailing data", ErrSchedule)
	}
	return rows, nil
}

func parseCSVRows(raw []byte) ([]scheduleRow, []int, error) {
	cr := csv.NewReader(bytes.NewReader(raw))
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: csv header: %v", ErrSchedule, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch h {
		case "start", "end", "title", "peak_requests_per_minute", "concurrent_viewers":
		default:
			return nil, nil, fmt.Errorf("%w: csv header: unknown column %q (want start,end,title,peak_requests_per_minute)", ErrSchedule, h)
		}
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("%w: csv header: column %q twice", ErrSchedule, h)
		}
		col[h] = i
	}
	for _, need := range []string{"start", "end", "title"} {
		if _, ok := col[need]; !ok {
			return nil, nil, fmt.Errorf("%w: csv header: missing column %q", ErrSchedule, need)
		}
	}
	_, hasPeak := col["peak_requests_per_minute"]
	_, hasViewers := col["concurrent_viewers"]
	if !hasPeak && !hasViewers {
		return nil, nil, fmt.Errorf("%w: csv header: need peak_requests_per_minute or concurrent_viewers", ErrSchedule)
	}
	var rows []scheduleRow
	var lines []int
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: csv: %v", ErrSchedule, err)
		}
		line, _ := cr.FieldPos(0)
		row := scheduleRow{Start: rec[col["start"]], End: rec[col["end"]], Title: rec[col["title"]]}
		for name, dst := range map[string]**float64{"peak_requests_per_minute": &row.PeakRequestsPerMinute, "concurrent_viewers": &row.ConcurrentViewers} {
			i, ok := col[name]
			if !ok || strings.TrimSpace(rec[i]) == "" {
				continue
			}
			v, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(rec[i]), "_", ""), 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: entry %d: %s: %v", ErrSchedule, line, name, err)
			}
			*dst = &v
		}
		rows = append(rows, row)
		lines = append(lines, line)
	}
	return rows, lines, nil
}

// maxPeakRequestsPerMinute bounds a broadcast's traffic to something a plan
// can be made for (a thousand times the largest peak on record).
const maxPeakRequestsPerMinute = 2.5e9

func (r scheduleRow) broadcast(perViewer float64) (Broadcast, error) {
	var b Broadcast
	b.Title = strings.TrimSpace(r.Title)
	if b.Title == "" {
		return b, errors.New("title is empty")
	}
	var err error
	if b.Start, err = parseTime(r.Start); err != nil {
		return b, fmt.Errorf("start: %v", err)
	}
	if b.End, err = parseTime(r.End); err != nil {
		return b, fmt.Errorf("end: %v", err)
	}
	if !b.End.After(b.Start) {
		return b, fmt.Errorf("end %s is not after start %s", r.End, r.Start)
	}
	if b.End.Sub(b.Start) > 7*24*time.Hour {
		return b, errors.New("broadcast longer than 7 days")
	}
	switch {
	case r.PeakRequestsPerMinute != nil && r.ConcurrentViewers != nil:
		return b, errors.New("give peak_requests_per_minute or concurrent_viewers, not both")
	case r.PeakRequestsPerMinute != nil:
		b.PeakRequestsPerMinute = *r.PeakRequestsPerMinute
	case r.ConcurrentViewers != nil:
		b.ConcurrentViewers = *r.ConcurrentViewers
		if !(b.ConcurrentViewers > 0) || math.IsInf(b.ConcurrentViewers, 0) {
			return b, fmt.Errorf("concurrent_viewers %v is not positive", b.ConcurrentViewers)
		}
		b.PeakRequestsPerMinute = b.ConcurrentViewers * perViewer
	default:
		return b, errors.New("no peak_requests_per_minute or concurrent_viewers")
	}
	if !(b.PeakRequestsPerMinute > 0) || b.PeakRequestsPerMinute > maxPeakRequestsPerMinute {
		return b, fmt.Errorf("peak requests per minute %v out of range (0, %g]", b.PeakRequestsPerMinute, maxPeakRequestsPerMinute)
	}
	return b, nil
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is not RFC 3339 with an offset (like 2027-04-18T19:00:00+03:00)", s)
	}
	if t.Year() < 2000 || t.Year() > 2200 {
		return t, fmt.Errorf("%q is out of range", s)
	}
	return t.UTC(), nil
}
