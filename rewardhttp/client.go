// Package rewardhttp calls reward APIs over HTTP: a reward.Rewarder that
// POSTs the request as JSON with its Idempotency-Key header.
package rewardhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/reward"
)

// Config holds the client's knobs; zero values take the defaults.
type Config struct {
	// Timeout bounds one call, connection and response body included
	// (default 10 s). A call that times out is retried by the reward
	// Sender with the same key.
	Timeout time.Duration
	// Header is added to every request (an Authorization, say).
	Header http.Header
	// HTTP is the client to send with (default: a client of its own with
	// its own transport, so one slow API cannot exhaust another's
	// connections).
	HTTP *http.Client
	// Now reads a Retry-After given as an HTTP date; nil is the wall clock
	// (internal/clock).
	Now func() time.Time
}

// Client posts rewards to one URL.
type Client struct {
	url string
	cfg Config
}

var _ reward.Rewarder = (*Client)(nil)

// New returns a Client for rawURL, an http or https URL.
func New(rawURL string, cfg Config) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("reward url %q: want an http or https URL", rawURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	cfg.Now = clock.Or(cfg.Now)
	return &Client{url: rawURL, cfg: cfg}, nil
}

// URL returns the URL the client posts to.
func (c *Client) URL() string { return c.url }

// maxReason bounds how much of an error response is kept as the reason.
const maxReason = 256

// Reward POSTs req with the Idempotency-Key key. A 2xx is success; another
// status is a *reward.StatusError carrying the start of the body and any
// Retry-After.
func (c *Client) Reward(ctx context.Context, key string, req reward.Request) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("reward post %s: encode: %w", c.url, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("reward post %s: %w", c.url, err)
	}
	for k, vs := range c.cfg.Header {
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Idempotency-Key", key)
	resp, err := c.cfg.HTTP.Do(hreq)
	if err != nil {
		return fmt.Errorf("reward post %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain so the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxReason))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return fmt.Errorf("reward post %s: %w", c.url, &reward.StatusError{
		Status:     resp.StatusCode,
		Reason:     reason(head),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.cfg.Now()),
	})
}

// reason makes a response body safe to put in a log line or dead letter.
func reason(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, string(b))
	return strings.TrimSpace(s)
}

// retryAfter parses Retry-After: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
