// Package rewarddemo is a reference reward receiver: the other end of the
// reward contract, small enough to read in one sitting. `spate local`
// serves it when no --reward-url is given, so a newcomer can watch the loop
// close: impressions and clicks go in, aggregates come out, rewards arrive
// here, and GET /v1/thumbnails/{content_id} starts preferring the variant
// people click.
//
// It is a demo of the contract, not a model server: totals live in memory,
// the chooser is plain Thompson sampling over Beta(clicks+1,
// impressions-clicks+1) per image variant with no context, and the
// idempotency keys it remembers are bounded. What a real reward API must
// copy is the contract: accept the JSON body, honour Idempotency-Key
// (a repeated key is acknowledged and not counted again), answer 2xx only
// once the reward is durable, 4xx for a request it will never accept, and
// 5xx or 429 for "try again".
package rewarddemo

import (
	"cmp"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/reward"
)

// Config holds the receiver's knobs; zero values take the defaults.
type Config struct {
	// Rand is the source of the chooser's samples (default: randomly
	// seeded). Tests inject a seeded one.
	Rand *rand.Rand
	// MaxKeys bounds the idempotency keys remembered (default 100,000,
	// oldest forgotten first).
	MaxKeys int
	// MaxBody bounds a request body (default 8 MiB).
	MaxBody int64
}

// Receiver accepts reward calls and keeps their totals in memory. It is
// safe for concurrent use.
type Receiver struct {
	cfg Config

	mu         sync.Mutex
	rnd        *rand.Rand
	keys       map[string]struct{}
	keyOrder   []string // FIFO of keys, for forgetting the oldest
	totals     map[Row]*Counts
	requests   int64
	duplicates int64
}

// Row identifies one total.
type Row struct {
	Model        string `json:"model"`
	ContentID    string `json:"content_id"`
	ImageVariant string `json:"image_variant"`
	Platform     string `json:"platform"`
}

// Counts are a row's totals.
type Counts struct {
	Impressions int64 `json:"impressions"`
	Clicks      int64 `json:"clicks"`
	PlayStarts  int64 `json:"play_starts"`
}

// Total is one row of Totals.
type Total struct {
	Row
	Counts
}

// Totals is what GET /v1/rewards/totals returns.
type Totals struct {
	// Requests counts accepted reward calls, Duplicates the repeats of an
	// idempotency key that were acknowledged without counting.
	Requests   int64   `json:"requests"`
	Duplicates int64   `json:"duplicates"`
	Rewards    []Total `json:"rewards"`
}

// New returns an empty receiver.
func New(cfg Config) *Receiver {
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 8 << 20
	}
	return &Receiver{
		cfg:    cfg,
		rnd:    cfg.Rand,
		keys:   make(map[string]struct{}),
		totals: make(map[Row]*Counts),
	}
}

// Register adds the receiver's routes to r:
//
//	POST /v1/rewards                   a reward call (Idempotency-Key required)
//	GET  /v1/rewards/totals            Totals
//	GET  /v1/thumbnails/{content_id}   the variant to show (?platform=, ?model=)
func (rc *Receiver) Register(r chi.Router) {
	r.Post("/v1/rewards", rc.postReward)
	r.Get("/v1/rewards/totals", rc.getTotals)
	r.Get("/v1/thumbnails/{content_id}", rc.getThumbnail)
}

// Routes returns a router serving only the receiver.
func (rc *Receiver) Routes() chi.Router {
	r := chi.NewRouter()
	rc.Register(r)
	return r
}

// Accept applies one reward call: it reports false, counting nothing,
// when key was seen before.
func (rc *Receiver) Accept(key string, req reward.Request) (bool, error) {
	if err := validate(key, req); err != nil {
		return false, err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, dup := rc.keys[key]; dup {
		rc.duplicates++
		return false, nil
	}
	rc.remember(key)
	rc.requests++
	for _, r := range req.Rewards {
		row := Row{Model: req.Model, ContentID: r.ContentID, ImageVariant: r.ImageVariant, Platform: r.Platform}
		c := rc.totals[row]
		if c == nil {
			c = new(Counts)
			rc.totals[row] = c
		}
		c.Impressions += r.Impressions
		c.Clicks += r.Clicks
		c.PlayStarts += r.PlayStarts
	}
	return true, nil
}

func (rc *Receiver) remember(key string) {
	if len(rc.keyOrder) >= rc.cfg.MaxKeys {
		delete(rc.keys, rc.keyOrder[0])
		rc.keyOrder = rc.keyOrder[1:]
	}
	rc.keys[key] = struct{}{}
	rc.keyOrder = append(rc.keyOrder, key)
}

func validate(key string, req reward.Request) error {
	switch {
	case key == "" || len(key) > 255:
		return errors.New("Idempotency-Key header required, at most 255 characters")
	case req.Model == "":
		return errors.New("model required")
	case !req.WindowEnd.After(req.WindowStart):
		return errors.New("window_end must be after window_start")
	}
	for _, r := range req.Rewards {
		if r.ContentID == "" || r.ImageVariant == "" {
			return errors.New("rewards need content_id and image_variant")
		}
		if r.Impressions < 0 || r.Clicks < 0 || r.PlayStarts < 0 {
			return errors.New("counts must not be negative")
		}
	}
	return nil
}

// Totals returns every total, sorted.
func (rc *Receiver) Totals() Totals {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := Totals{Requests: rc.requests, Duplicates: rc.duplicates, Rewards: make([]Total, 0, len(rc.totals))}
	for row, c := range rc.totals {
		out.Rewards = append(out.Rewards, Total{Row: row, Counts: *c})
	}
	slices.SortFunc(out.Rewards, func(a, b Total) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.ContentID, b.ContentID),
			cmp.Compare(a.ImageVariant, b.ImageVariant), cmp.Compare(a.Platform, b.Platform))
	})
	return out
}

// Choice is the chooser's answer for one content.
type Choice struct {
	ContentID    string    `json:"content_id"`
	Model        string    `json:"model"`
	ImageVariant string    `json:"image_variant"`
	Variants     []Variant `json:"variants"`
}

// Variant is one candidate with the evidence and the draw that ranked it.
type Variant struct {
	ImageVariant string  `json:"image_variant"`
	Impressions  int64   `json:"impressions"`
	Clicks       int64   `json:"clicks"`
	Sample       float64 `json:"sample"`
}

// Choose picks the image variant to show for content by Thompson sampling:
// one draw from Beta(clicks+1, impressions-clicks+1) per variant, highest
// draw wins. An empty platform pools every platform; an empty model means
// the only model there is. It reports false when there are no rewards for
// content.
func (rc *Receiver) Choose(model, content, platform string) (Choice, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if model == "" {
		models := make(map[string]bool)
		for row := range rc.totals {
			models[row.Model] = true
		}
		if len(models) != 1 {
			return Choice{}, false
		}
		for m := range models {
			model = m
		}
	}
	byVariant := make(map[string]*Variant)
	for row, c := range rc.totals {
		if row.Model != model || row.ContentID != content || (platform != "" && row.Platform != platform) {
			continue
		}
		v := byVariant[row.ImageVariant]
		if v == nil {
			v = &Variant{ImageVariant: row.ImageVariant}
			byVariant[row.ImageVariant] = v
		}
		v.Impressions += c.Impressions
		v.Clicks += c.Clicks
	}
	if len(byVariant) == 0 {
		return Choice{}, false
	}
	ch := Choice{ContentID: content, Model: model}
	for _, v := range byVariant {
		ch.Variants = append(ch.Variants, *v)
	}
	// Draw in a fixed order, so a seeded source gives a reproducible choice.
	slices.SortFunc(ch.Variants, func(a, b Variant) int { return cmp.Compare(a.ImageVariant, b.ImageVariant) })
	best := -1.0
	for i := range ch.Variants {
		v := &ch.Variants[i]
		// Clicks without a counted impression (an impression in another
		// window or lost) must not make the second parameter below 1.
		misses := max(v.Impressions-v.Clicks, 0)
		v.Sample = betaSample(rc.rnd, float64(v.Clicks+1), float64(misses+1))
		if v.Sample > best {
			best, ch.ImageVariant = v.Sample, v.ImageVariant
		}
	}
	return ch, true
}

// betaSample draws from Beta(a, b), a, b ≥ 1, as X/(X+Y) with X ~ Gamma(a)
// and Y ~ Gamma(b).
func betaSample(r *rand.Rand, a, b float64) float64 {
	x := gammaSample(r, a)
	y := gammaSample(r, b)
	return x / (x + y)
}

// gammaSample draws from Gamma(shape, 1) for shape ≥ 1 with Marsaglia and
// Tsang's method ("A Simple Method for Generating Gamma Variables", 2000).
func gammaSample(r *rand.Rand, shape float64) float64 {
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x {
			return d * v
		}
		if math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (rc *Receiver) postReward(w http.ResponseWriter, r *http.Request) {
	var req reward.Request
	body := http.MaxBytesReader(w, r.Body, rc.cfg.MaxBody)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "body too large"})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "body is not a reward request: " + err.Error()})
		return
	}
	counted, err := rc.Accept(r.Header.Get("Idempotency-Key"), req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	status := "accepted"
	if !counted {
		status = "duplicate"
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": status})
}

func (rc *Receiver) getTotals(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, rc.Totals())
}

func (rc *Receiver) getThumbnail(w http.ResponseWriter, r *http.Request) {
	content := chi.URLParam(r, "content_id")
	ch, ok := rc.Choose(r.URL.Query().Get("model"), content, r.URL.Query().Get("platform"))
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no rewards for this content (or several models: pass ?model=)"})
		return
	}
	writeJSON(w, http.StatusOK, ch)
}
