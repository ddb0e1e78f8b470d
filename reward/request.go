// Package reward turns aggregates into reward calls on the models that
// learn from them (contextual bandits choosing thumbnails, say): one
// request per aggregate and model, an Idempotency-Key that stays the same
// however often the call is retried, bounded retries with backoff, a
// circuit breaker per endpoint, and a dead letter for what an API refuses.
//
// It depends on aggregates only through their JSON contract, so whichever
// engine produced them (this repository's Lambda, a Flink job) the reward
// side stays the same. It calls APIs through its own Rewarder interface;
// rewardhttp implements it over HTTP.
package reward

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
)

// Reward is one content × image variant × platform's counts in a window.
type Reward struct {
	ContentID    string `json:"content_id"`
	ImageVariant string `json:"image_variant"`
	Platform     string `json:"platform"`
	Impressions  int64  `json:"impressions"`
	Clicks       int64  `json:"clicks"`
	PlayStarts   int64  `json:"play_starts"`
}

// Request is the body of a reward call.
type Request struct {
	Model       string
	WindowStart time.Time
	WindowEnd   time.Time
	Rewards     []Reward
}

type requestWire struct {
	Model       string   `json:"model"`
	WindowStart string   `json:"window_start"`
	WindowEnd   string   `json:"window_end"`
	Rewards     []Reward `json:"rewards"`
}

// MarshalJSON writes the reward contract:
// {"model","window_start","window_end","rewards":[…]}, timestamps in
// spate.TimeLayout.
func (r Request) MarshalJSON() ([]byte, error) {
	rewards := r.Rewards
	if rewards == nil {
		rewards = []Reward{}
	}
	return json.Marshal(requestWire{
		Model:       r.Model,
		WindowStart: r.WindowStart.UTC().Format(spate.TimeLayout),
		WindowEnd:   r.WindowEnd.UTC().Format(spate.TimeLayout),
		Rewards:     rewards,
	})
}

// UnmarshalJSON reads the reward contract (for receivers and tests); any
// RFC 3339 timestamp is accepted.
func (r *Request) UnmarshalJSON(data []byte) error {
	var w requestWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	start, ok := aggregate.ParseTime(w.WindowStart)
	if !ok {
		return fmt.Errorf("window_start %q: want an RFC 3339 timestamp", w.WindowStart)
	}
	end, ok := aggregate.ParseTime(w.WindowEnd)
	if !ok {
		return fmt.Errorf("window_end %q: want an RFC 3339 timestamp", w.WindowEnd)
	}
	*r = Request{Model: w.Model, WindowStart: start, WindowEnd: end, Rewards: w.Rewards}
	return nil
}

// NewRequest builds model's request for a.
func NewRequest(model string, a aggregate.Aggregate) Request {
	rewards := make([]Reward, len(a.Rows))
	for i, r := range a.Rows {
		rewards[i] = Reward(r)
	}
	return Request{Model: model, WindowStart: a.Window.Start, WindowEnd: a.Window.End, Rewards: rewards}
}

// IdempotencyKey is the key of aggregate aggregateID's call to model: the
// same on every retry, redelivery and re-emission of that aggregate, and
// different for every other aggregate or model.
func IdempotencyKey(aggregateID, model string) string {
	sum := sha256.Sum256([]byte("spate-reward/v1\x00" + aggregateID + "\x00" + model))
	return hex.EncodeToString(sum[:16])
}

// Rewarder calls one reward API. It returns nil once the API accepted the
// request, a *StatusError when the API answered with another status, and
// any other error (a timeout, a refused connection) when it could not tell.
// A Rewarder must send key so that the API can drop repeats.
type Rewarder interface {
	Reward(ctx context.Context, key string, req Request) error
}

// RewarderFunc adapts a function to Rewarder.
type RewarderFunc func(ctx context.Context, key string, req Request) error

// Reward calls f.
func (f RewarderFunc) Reward(ctx context.Context, key string, req Request) error {
	return f(ctx, key, req)
}

// StatusError is a reward API's answer other than 2xx.
type StatusError struct {
	Status int
	// Reason is the start of the response body, for the dead letter.
	Reason string
	// RetryAfter is the API's Retry-After, if it gave one.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("status %d", e.Status)
	}
	return fmt.Sprintf("status %d: %s", e.Status, e.Reason)
}

// Retryable reports whether a call that failed with err may succeed if
// repeated: server errors, 408 and 429, and failures without an answer
// (timeouts, connection errors). Any other 4xx means the API refused the
// request itself; repeating it would not help.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	se, ok := asStatus(err)
	if !ok {
		return true
	}
	return se.Status >= 500 || se.Status == http.StatusRequestTimeout || se.Status == http.StatusTooManyRequests
}
