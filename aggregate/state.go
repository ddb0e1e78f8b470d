package aggregate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spate-dev/spate"
)

// State is one source's counts for one window so far. It round-trips
// through map[string]string, the shape of Lambda's
// TimeWindowProperties.State, and knows its encoded size so the fold can
// emit before Lambda's 1 MB limit ends the window for it.
type State struct {
	Source string
	Window Window

	first, last string // sequence numbers of the first and last record folded
	records     int64  // records folded, counted or not
	// continued marks a state that carries on a window already partly
	// emitted: after a size-budget emission, a Lambda early termination,
	// or a record that arrived after its window was closed.
	continued bool

	rows map[Key]*Counts
	// size is the length of the encoded rows as a JSON object, braces and
	// commas included; the meta entry is bounded separately (metaBound).
	size int
}

// NewState returns an empty state for source's window w.
func NewState(source string, w Window) *State {
	return &State{Source: source, Window: w, rows: make(map[Key]*Counts), size: 2}
}

// Empty reports whether no record has been folded into s.
func (s *State) Empty() bool { return s.records == 0 }

// Rows returns how many keys s counts.
func (s *State) Rows() int { return len(s.rows) }

// Size returns an upper bound of len(json.Marshal(s.Encode())).
func (s *State) Size() int { return s.size + s.metaBound() }

// metaBound bounds the meta entry: a JSON document inside a JSON string, so
// each byte of the variable parts may take up to 12 bytes in the worst case.
func (s *State) metaBound() int {
	return 320 + 12*(len(s.Source)+len(s.first)+len(s.last))
}

// Get returns the counts of k.
func (s *State) Get(k Key) Counts {
	if c := s.rows[k]; c != nil {
		return *c
	}
	return Counts{}
}

// sizeAfter returns what s.size would be after one more count of k.
func (s *State) sizeAfter(k Key, kind int) int {
	c := s.rows[k]
	if c == nil {
		n := quotedLen(encodeKey(k)) + 1 + valueLen(countsWith(Counts{}, kind))
		if len(s.rows) > 0 {
			n++ // comma
		}
		return s.size + n
	}
	return s.size - valueLen(*c) + valueLen(countsWith(*c, kind))
}

// add counts one event of kind for k.
func (s *State) add(k Key, kind int) {
	s.size = s.sizeAfter(k, kind)
	c := s.rows[k]
	if c == nil {
		c = new(Counts)
		s.rows[k] = c
	}
	*c = countsWith(*c, kind)
}

// seen records that rec was folded into s.
func (s *State) seen(rec spate.Record) {
	if s.records == 0 {
		s.first = rec.SequenceNumber
	}
	s.last = rec.SequenceNumber
	s.records++
}

const (
	kindImpression = iota
	kindClick
	kindPlayStart
)

func countsWith(c Counts, kind int) Counts {
	switch kind {
	case kindImpression:
		c.Impressions++
	case kindClick:
		c.Clicks++
	case kindPlayStart:
		c.PlayStarts++
	}
	return c
}

// State map layout: one entry per row, keyed by the escaped key fields
// joined with '|' and holding "impressions,clicks,play_starts", plus the
// meta entry under metaKey, which no row key can equal (row keys always
// hold two '|').
const metaKey = "~"

type meta struct {
	V         int    `json:"v"`
	Source    string `json:"source"`
	Start     string `json:"start"`
	End       string `json:"end"`
	First     string `json:"first,omitempty"`
	Last      string `json:"last,omitempty"`
	Records   int64  `json:"records"`
	Continued bool   `json:"continued,omitempty"`
}

// Encode returns s as a string map. An empty state encodes as an empty
// (non-nil) map, which DecodeState reads back as no state.
func (s *State) Encode() map[string]string {
	m := make(map[string]string, len(s.rows)+1)
	if s.Empty() {
		return m
	}
	b, _ := json.Marshal(meta{
		V:         1,
		Source:    s.Source,
		Start:     s.Window.Start.UTC().Format(time.RFC3339Nano),
		End:       s.Window.End.UTC().Format(time.RFC3339Nano),
		First:     s.first,
		Last:      s.last,
		Records:   s.records,
		Continued: s.continued,
	})
	m[metaKey] = string(b)
	for k, c := range s.rows {
		m[encodeKey(k)] = encodeCounts(*c)
	}
	return m
}

// DecodeState reads a state written by Encode. An empty or nil map is no
// state: it returns nil and no error. Errors wrap spate.ErrInvalid.
func DecodeState(m map[string]string) (*State, error) {
	if len(m) == 0 {
		return nil, nil
	}
	raw, ok := m[metaKey]
	if !ok {
		return nil, fmt.Errorf("aggregate state: no meta entry: %w", spate.ErrInvalid)
	}
	var md meta
	if err := json.Unmarshal([]byte(raw), &md); err != nil {
		return nil, fmt.Errorf("aggregate state meta: %v: %w", err, spate.ErrInvalid)
	}
	if md.V != 1 {
		return nil, fmt.Errorf("aggregate state version %d: %w", md.V, spate.ErrInvalid)
	}
	start, ok1 := ParseTime(md.Start)
	end, ok2 := ParseTime(md.End)
	if !ok1 || !ok2 || !end.After(start) {
		return nil, fmt.Errorf("aggregate state window %q–%q: %w", md.Start, md.End, spate.ErrInvalid)
	}
	if md.Records <= 0 {
		return nil, fmt.Errorf("aggregate state: %d records: %w", md.Records, spate.ErrInvalid)
	}
	s := NewState(md.Source, Window{Start: start, End: end})
	s.first, s.last, s.records, s.continued = md.First, md.Last, md.Records, md.Continued
	for k, v := range m {
		if k == metaKey {
			continue
		}
		key, err := decodeKey(k)
		if err != nil {
			return nil, err
		}
		c, err := decodeCounts(v)
		if err != nil {
			return nil, fmt.Errorf("aggregate state row %q: %w", k, err)
		}
		if len(s.rows) > 0 {
			s.size++
		}
		s.size += quotedLen(encodeKey(key)) + 1 + valueLen(c)
		s.rows[key] = &c
	}
	return s, nil
}

func encodeKey(k Key) string {
	return escapeField(k.ContentID) + "|" + escapeField(k.ImageVariant) + "|" + escapeField(k.Platform)
}

func decodeKey(s string) (Key, error) {
	c, rest, ok1 := strings.Cut(s, "|")
	v, p, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 || strings.Contains(p, "|") {
		return Key{}, fmt.Errorf("aggregate state key %q: want 3 fields: %w", s, spate.ErrInvalid)
	}
	var f [3]string
	for i, part := range [3]string{c, v, p} {
		u, err := unescapeField(part)
		if err != nil {
			return Key{}, fmt.Errorf("aggregate state key %q: %w", s, err)
		}
		f[i] = u
	}
	if f[0] == "" || f[1] == "" {
		return Key{}, fmt.Errorf("aggregate state key %q: empty content or variant: %w", s, spate.ErrInvalid)
	}
	k := Key{ContentID: f[0], ImageVariant: f[1], Platform: f[2]}
	// Escapes have one spelling ("%7C", not "%7c"): one key, one entry.
	if strings.Contains(s, "%") && encodeKey(k) != s {
		return Key{}, fmt.Errorf("aggregate state key %q: not canonical: %w", s, spate.ErrInvalid)
	}
	return k, nil
}

// escapeField escapes the separator and the escape character.
func escapeField(s string) string {
	if !strings.ContainsAny(s, "%|") {
		return s
	}
	s = strings.ReplaceAll(s, "%", "%25")
	return strings.ReplaceAll(s, "|", "%7C")
}

func unescapeField(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "%25"):
			b.WriteByte('%')
		case strings.HasPrefix(s[i:], "%7C"):
			b.WriteByte('|')
		default:
			return "", fmt.Errorf("bad escape: %w", spate.ErrInvalid)
		}
		i += 2
	}
	return b.String(), nil
}

func encodeCounts(c Counts) string {
	b := make([]byte, 0, 24)
	b = strconv.AppendInt(b, c.Impressions, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, c.Clicks, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, c.PlayStarts, 10)
	return string(b)
}

func decodeCounts(v string) (Counts, error) {
	var n [3]int64
	for i := range n {
		var p string
		if i < 2 {
			var ok bool
			if p, v, ok = strings.Cut(v, ","); !ok {
				return Counts{}, fmt.Errorf("want 3 counts: %w", spate.ErrInvalid)
			}
		} else {
			p = v
		}
		// Digits only, no sign, no leading zero: one count, one spelling.
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.TrimLeft(p, "0123456789") != "" {
			return Counts{}, fmt.Errorf("count %q: %w", p, spate.ErrInvalid)
		}
		x, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return Counts{}, fmt.Errorf("count %q: %w", p, spate.ErrInvalid)
		}
		n[i] = x
	}
	return Counts{Impressions: n[0], Clicks: n[1], PlayStarts: n[2]}, nil
}

// valueLen is the quoted length of encodeCounts(c): digits only, so no
// escaping.
func valueLen(c Counts) int {
	return 2 + 2 + digits(c.Impressions) + digits(c.Clicks) + digits(c.PlayStarts)
}

func digits(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// quotedLen is the length of s as a JSON string the way encoding/json
// writes it (HTML characters escaped too), which is how the Lambda runtime
// returns the state.
func quotedLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// emit turns s into aggregates of at most chunkBytes each (a single row
// larger than that still makes one chunk). partial marks an emission
// before the window's normal close.
func (s *State) emit(chunkBytes int, partial bool) []Aggregate {
	if len(s.rows) == 0 {
		return nil
	}
	rows := make([]Row, 0, len(s.rows))
	for k, c := range s.rows {
		rows = append(rows, Row{
			ContentID: k.ContentID, ImageVariant: k.ImageVariant, Platform: k.Platform,
			Impressions: c.Impressions, Clicks: c.Clicks, PlayStarts: c.PlayStarts,
		})
	}
	slices.SortFunc(rows, func(a, b Row) int {
		if c := strings.Compare(a.ContentID, b.ContentID); c != 0 {
			return c
		}
		if c := strings.Compare(a.ImageVariant, b.ImageVariant); c != 0 {
			return c
		}
		return strings.Compare(a.Platform, b.Platform)
	})
	envelope := 512 + 2*(len(s.Source)+len(s.first)+len(s.last))
	var chunks [][]Row
	start, size := 0, envelope
	for i, r := range rows {
		n := rowLen(r)
		if i > start && size+n > chunkBytes {
			chunks = append(chunks, rows[start:i])
			start, size = i, envelope
		}
		size += n
	}
	chunks = append(chunks, rows[start:])
	out := make([]Aggregate, len(chunks))
	for i, c := range chunks {
		out[i] = Aggregate{
			ID:            aggregateID(s.Source, s.Window, s.first, i),
			Source:        s.Source,
			Window:        s.Window,
			FirstSequence: s.first,
			LastSequence:  s.last,
			Partial:       partial || s.continued,
			Chunk:         i,
			Chunks:        len(chunks),
			Rows:          c,
		}
	}
	return out
}

func rowLen(r Row) int {
	// {"content_id":"","image_variant":"","platform":"","impressions":,"clicks":,"play_starts":},
	return 89 + quotedLen(r.ContentID) + quotedLen(r.ImageVariant) + quotedLen(r.Platform) +
		digits(r.Impressions) + digits(r.Clicks) + digits(r.PlayStarts)
}

// aggregateID names what an aggregate covers: the source, the window, the
// first record folded and the chunk. Folding the same records again, as a
// retried invocation does, gives the same ID.
func aggregateID(source string, w Window, first string, chunk int) string {
	h := sha256.New()
	fmt.Fprintf(h, "spate-aggregate/v1\x00%s\x00%d\x00%d\x00%s\x00%d", source, w.Start.UnixNano(), w.End.UnixNano(), first, chunk)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
