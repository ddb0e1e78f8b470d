package failed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Poster returns a RecoverConfig.Post that POSTs to an ingest events URL,
// retrying 5xx and connection errors three times.
func Poster(client *http.Client, endpoint string) func(context.Context, []byte) ([]bool, error) {
	return func(ctx context.Context, body []byte) ([]bool, error) { return postEvents(ctx, client, endpoint, body) }
}

// postEvents sends one batch and reads which events ingest accepted: all
// but the indexes in rejected[] on 202; none on 400.
func postEvents(ctx context.Context, client *http.Client, endpoint string, body []byte) ([]bool, error) {
	var n int
	var probe struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, err
	}
	n = len(probe.Events)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			if attempt < 3 {
				time.Sleep(time.Duration(attempt+1) * time.Second)
				continue
			}
			return nil, fmt.Errorf("recover: post: %w", err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var ans struct {
			Rejected []struct {
				Index int `json:"index"`
			} `json:"rejected"`
		}
		_ = json.Unmarshal(b, &ans)
		ok := make([]bool, n)
		switch {
		case resp.StatusCode == http.StatusAccepted:
			for i := range ok {
				ok[i] = true
			}
			for _, r := range ans.Rejected {
				if r.Index >= 0 && r.Index < n {
					ok[r.Index] = false
				}
			}
			return ok, nil
		case resp.StatusCode == http.StatusBadRequest:
			return ok, nil
		case resp.StatusCode >= 500 && attempt < 3:
			time.Sleep(time.Duration(attempt+1) * time.Second)
			continue
		}
		return nil, fmt.Errorf("recover: post: ingest answered %d", resp.StatusCode)
	}
}

// Ledger is the file of event_ids recovered so far, one a line: what makes
// a second recovery send nothing twice.
type Ledger struct {
	f    *os.File
	done map[string]bool
}

// OpenLedger reads the ledger at path (none yet is empty) and opens it
// for appending.
func OpenLedger(path string) (*Ledger, error) {
	done := map[string]bool{}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("ledger: %w", err)
	default:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if id := strings.TrimSpace(sc.Text()); id != "" {
				done[id] = true
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	w, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &Ledger{f: w, done: done}, nil
}

// Done returns the ids recovered by earlier runs.
func (l *Ledger) Done() map[string]bool { return l.done }

// Record appends ids and syncs, so an id is in the ledger once ingest has
// accepted it and before the next batch is sent.
func (l *Ledger) Record(ids []string) error {
	for _, id := range ids {
		if _, err := fmt.Fprintln(l.f, id); err != nil {
			return err
		}
	}
	return l.f.Sync()
}

// Close closes the ledger file.
func (l *Ledger) Close() error { return l.f.Close() }
