package lakeedit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// maxFailedLine bounds one record of a failed-events file: a Firehose
// error record holds up to 1,000 KiB of data, base64 in JSON.
const maxFailedLine = 4 << 20

// failedFile removes the records that mention a requested identifier from
// a failed-events file: JSON lines as the local lake keeps them (the event
// itself, or a dead letter with the record in base64 "data") or as
// Firehose's error output writes them (the record in base64 "rawData",
// possibly several events packed by the router, one per line). These
// records failed conversion, so no column can be trusted: an identifier
// anywhere in a record, as any JSON string, is a match.
func (fg *forgetter) failedFile(ctx context.Context, o Object) (bool, error) {
	if o.Noncurrent {
		fg.add(func(r *ForgetReport) { r.NoncurrentScanned++ })
	} else {
		fg.add(func(r *ForgetReport) { r.FailedFilesScanned++ })
	}
	f, err := fg.st.Open(ctx, o)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var out bytes.Buffer
	hits := map[int]int64{}
	var removed int64
	sc := bufio.NewScanner(io.NewSectionReader(f, 0, f.Size()))
	sc.Buffer(make([]byte, 64<<10), maxFailedLine)
	for sc.Scan() {
		line := sc.Bytes()
		kept, reqs, events := fg.filterRecord(line)
		for _, r := range reqs {
			hits[r]++
		}
		removed += int64(events)
		if kept == nil {
			continue
		}
		out.Write(kept)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", o.Key, err)
	}
	if len(hits) == 0 {
		return false, nil
	}
	gone := o.Noncurrent || out.Len() == 0
	if !fg.cfg.DryRun {
		if gone {
			err = fg.st.Delete(ctx, o)
		} else {
			err = fg.replace(ctx, o, out.Bytes())
		}
		if err != nil {
			return false, err
		}
	}
	for r, n := range hits {
		if o.Noncurrent {
			fg.per[r].noncurrent.Add(1)
		} else {
			fg.per[r].failed.Add(n)
		}
	}
	fg.add(func(r *ForgetReport) {
		if o.Noncurrent {
			r.NoncurrentDeleted++
			return
		}
		r.FailedFilesRewritten++
		r.FailedRecordsRemoved += removed
	})
	return gone, nil
}

func (fg *forgetter) replace(ctx context.Context, o Object, content []byte) error {
	up, err := fg.st.Create(ctx, o.Key)
	if err != nil {
		return err
	}
	defer up.Abort()
	if _, err := up.Write(content); err != nil {
		return fmt.Errorf("rewrite %s: %w", o.Key, err)
	}
	if _, err := up.Commit(ctx); err != nil {
		return err
	}
	return fg.dropReplaced(ctx, o)
}

// filterRecord returns line without the events that match a request (nil
// when nothing of it is left), the requests matched, and how many events
// it removed. A record whose base64 payload packs several events keeps the
// others.
func (fg *forgetter) filterRecord(line []byte) ([]byte, []int, int) {
	if reqs := fg.matchStrings(line, false); len(reqs) > 0 {
		return nil, reqs, 1
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) == nil {
		var all []int
		changed, events := false, 0
		for _, k := range []string{"rawData", "data"} {
			raw, ok := obj[k]
			var s string
			if !ok || json.Unmarshal(raw, &s) != nil {
				continue
			}
			data, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				continue
			}
			var kept [][]byte
			var reqs []int
			for ev := range bytes.SplitSeq(data, []byte{'\n'}) {
				if r := fg.matchStrings(ev, false); len(r) > 0 {
					reqs = append(reqs, r...)
					continue
				}
				kept = append(kept, ev)
			}
			if len(reqs) == 0 {
				continue
			}
			all = append(all, reqs...)
			events += len(reqs)
			joined := bytes.Join(kept, []byte{'\n'})
			if len(bytes.TrimSpace(joined)) == 0 {
				return nil, all, events
			}
			obj[k], _ = json.Marshal(base64.StdEncoding.EncodeToString(joined))
			changed = true
		}
		if changed {
			b, err := json.Marshal(obj)
			if err != nil {
				return nil, all, events + 1
			}
			if reqs := fg.matchStrings(b, true); len(reqs) > 0 {
				return nil, append(all, reqs...), events + 1
			}
			return b, all, events
		}
	}
	// Whatever the shape, base64 anywhere that hides an identifier takes
	// the whole record.
	if reqs := fg.matchStrings(line, true); len(reqs) > 0 {
		return nil, reqs, 1
	}
	return line, nil, 0
}

// matchStrings returns the requests whose value equals a JSON string in b
// (or, with decode, the base64 decoding of one, searched the same way).
// It scans rather than parses, so it works on records that are not valid
// JSON too: every quote is tried as the start of a string, so garbage
// before a string cannot hide it.
func (fg *forgetter) matchStrings(b []byte, decode bool) []int {
	var out []int
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		j, esc := i+1, false
		for ; j < len(b) && b[j] != '"'; j++ {
			if b[j] == '\\' {
				esc = true
				j++
			}
		}
		if j >= len(b) {
			break
		}
		tok := b[i+1 : j]
		if esc {
			var s string
			if json.Unmarshal(b[i:j+1], &s) == nil {
				tok = []byte(s)
			}
		}
		if !decode {
			out = append(out, fg.values[string(tok)]...)
			continue
		}
		if len(tok) < 8 {
			continue
		}
		if data, err := base64.StdEncoding.DecodeString(string(tok)); err == nil {
			out = append(out, fg.matchStrings(data, false)...)
		}
	}
	return out
}

// maxPayload bounds a dead-letter payload: a Kinesis record is at most
// 10 MiB.
const maxPayload = 16 << 20

// payloadFile deletes a dead letter's payload that mentions a requested
// identifier anywhere (as a JSON string, as it appears in an event and
// inside a KPL aggregate's records). A payload is one opaque record, so it
// goes whole: its queue message then points at nothing, and expires with
// the queue.
func (fg *forgetter) payloadFile(ctx context.Context, o Object) (bool, error) {
	if o.Noncurrent {
		fg.add(func(r *ForgetReport) { r.NoncurrentScanned++ })
	} else {
		fg.add(func(r *ForgetReport) { r.FailedFilesScanned++ })
	}
	if o.Size > maxPayload {
		return false, fmt.Errorf("read %s: %d bytes, more than a dead letter holds", o.Key, o.Size)
	}
	f, err := fg.st.Open(ctx, o)
	if err != nil {
		return false, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		return false, fmt.Errorf("read %s: %w", o.Key, err)
	}
	reqs := fg.matchStrings(data, false)
	if len(reqs) == 0 {
		return false, nil
	}
	if !fg.cfg.DryRun {
		if err := fg.st.Delete(ctx, o); err != nil {
			return false, err
		}
	}
	seen := map[int]bool{}
	for _, r := range reqs {
		if seen[r] {
			continue
		}
		seen[r] = true
		if o.Noncurrent {
			fg.per[r].noncurrent.Add(1)
		} else {
			fg.per[r].failed.Add(1)
		}
	}
	fg.add(func(r *ForgetReport) {
		if o.Noncurrent {
			r.NoncurrentDeleted++
			return
		}
		r.FailedFilesRewritten++
		r.FailedRecordsRemoved++
	})
	return true, nil
}
