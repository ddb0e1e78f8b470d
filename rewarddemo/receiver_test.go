package rewarddemo

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/reward"
)

var w0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func req(model string, rs ...reward.Reward) reward.Request {
	return reward.Request{Model: model, WindowStart: w0, WindowEnd: w0.Add(time.Minute), Rewards: rs}
}

func post(t *testing.T, h http.Handler, key, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/rewards", strings.NewReader(body))
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func get(t *testing.T, h http.Handler, path string, v any) int {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if v != nil && w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, w.Body)
		}
	}
	return w.Code
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPostHonoursIdempotencyKey(t *testing.T) {
	rc := New(Config{})
	h := rc.Routes()
	body := mustJSON(t, req("thumbnails",
		reward.Reward{ContentID: "c1", ImageVariant: "a", Platform: "web", Impressions: 10, Clicks: 3, PlayStarts: 1},
		reward.Reward{ContentID: "c1", ImageVariant: "b", Platform: "tv", Impressions: 4}))
	if code, out := post(t, h, "k1", body); code != http.StatusOK || !strings.Contains(out, "accepted") {
		t.Fatalf("first post: %d %s", code, out)
	}
	if code, out := post(t, h, "k1", body); code != http.StatusOK || !strings.Contains(out, "duplicate") {
		t.Fatalf("repeat: %d %s", code, out)
	}
	if code, _ := post(t, h, "k2", body); code != http.StatusOK {
		t.Fatalf("second key: %d", code)
	}
	var tot Totals
	if code := get(t, h, "/v1/rewards/totals", &tot); code != http.StatusOK {
		t.Fatalf("totals: %d", code)
	}
	want := Totals{Requests: 2, Duplicates: 1, Rewards: []Total{
		{Row{"thumbnails", "c1", "a", "web"}, Counts{20, 6, 2}},
		{Row{"thumbnails", "c1", "b", "tv"}, Counts{Impressions: 8}},
	}}
	if mustJSON(t, tot) != mustJSON(t, want) {
		t.Errorf("totals\n got %+v\nwant %+v", tot, want)
	}
}

func TestPostRejectsBadRequests(t *testing.T) {
	h := New(Config{MaxBody: 1 << 10}).Routes()
	good := mustJSON(t, req("m", reward.Reward{ContentID: "c", ImageVariant: "v", Impressions: 1}))
	tests := []struct {
		name, key, body string
		want            int
	}{
		{"no key", "", good, http.StatusBadRequest},
		{"not json", "k", "{", http.StatusBadRequest},
		{"no model", "k", mustJSON(t, req("", reward.Reward{ContentID: "c", ImageVariant: "v"})), http.StatusBadRequest},
		{"no variant", "k", mustJSON(t, req("m", reward.Reward{ContentID: "c"})), http.StatusBadRequest},
		{"negative", "k", mustJSON(t, req("m", reward.Reward{ContentID: "c", ImageVariant: "v", Clicks: -1})), http.StatusBadRequest},
		{"window backwards", "k", `{"model":"m","window_start":"2026-11-27T12:01:00Z","window_end":"2026-11-27T12:00:00Z","rewards":[]}`, http.StatusBadRequest},
		{"too large", "k", `{"model":"` + strings.Repeat("m", 2<<10) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, out := post(t, h, tt.key, tt.body); code != tt.want {
				t.Errorf("status %d (%s), want %d", code, out, tt.want)
			}
		})
	}
	// A refused request does not burn its key.
	if code, _ := post(t, h, "k", good); code != http.StatusOK {
		t.Errorf("good request after refusals with the same key: %d", code)
	}
}

func TestForgetsOldestKeysBeyondMaxKeys(t *testing.T) {
	rc := New(Config{MaxKeys: 2})
	r := req("m", reward.Reward{ContentID: "c", ImageVariant: "v", Impressions: 1})
	for _, k := range []string{"k1", "k2", "k3", "k1"} {
		if _, err := rc.Accept(k, r); err != nil {
			t.Fatal(err)
		}
	}
	if got := rc.Totals(); got.Requests != 4 || got.Duplicates != 0 {
		t.Errorf("totals %+v: k1 should have been forgotten", got)
	}
	if ok, _ := rc.Accept("k3", r); ok {
		t.Error("recent key k3 counted twice")
	}
}

func TestThumbnailPrefersTheClickedVariant(t *testing.T) {
	rc := New(Config{Rand: rand.New(rand.NewPCG(1, 2))})
	_, err := rc.Accept("k1", req("thumbnails",
		reward.Reward{ContentID: "c1", ImageVariant: "a", Platform: "web", Impressions: 100, Clicks: 30},
		reward.Reward{ContentID: "c1", ImageVariant: "b", Platform: "web", Impressions: 100, Clicks: 5},
		reward.Reward{ContentID: "c1", ImageVariant: "b", Platform: "tv", Impressions: 100, Clicks: 60},
	))
	if err != nil {
		t.Fatal(err)
	}
	h := rc.Routes()
	count := func(query string) map[string]int {
		picks := make(map[string]int)
		for range 200 {
			var ch Choice
			if code := get(t, h, "/v1/thumbnails/c1"+query, &ch); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			picks[ch.ImageVariant]++
		}
		return picks
	}
	// On the web, a (30%) beats b (5%); on tv only b has evidence.
	if web := count("?platform=web"); web["a"] < 195 {
		t.Errorf("web picks %v: want a nearly always", web)
	}
	if tv := count("?platform=tv"); tv["b"] != 200 {
		t.Errorf("tv picks %v: want b only", tv)
	}
	// Pooled: b has 65/200 against a's 30/100: both get shown.
	if all := count(""); all["a"] == 0 || all["b"] == 0 {
		t.Errorf("pooled picks %v: want both explored", all)
	}
	var ch Choice
	get(t, h, "/v1/thumbnails/c1?platform=web", &ch)
	if len(ch.Variants) != 2 || ch.Variants[0].Impressions != 100 || ch.Variants[0].Clicks != 30 || ch.Model != "thumbnails" {
		t.Errorf("choice %+v", ch)
	}
	if code := get(t, h, "/v1/thumbnails/unknown", nil); code != http.StatusNotFound {
		t.Errorf("unknown content: %d, want 404", code)
	}
}

func TestThumbnailNeedsModelWhenSeveral(t *testing.T) {
	rc := New(Config{Rand: rand.New(rand.NewPCG(1, 2))})
	r := reward.Reward{ContentID: "c1", ImageVariant: "a", Impressions: 1}
	rc.Accept("k1", req("m1", r))
	rc.Accept("k2", req("m2", r))
	if _, ok := rc.Choose("", "c1", ""); ok {
		t.Error("chose without a model among several")
	}
	if ch, ok := rc.Choose("m2", "c1", ""); !ok || ch.ImageVariant != "a" {
		t.Errorf("Choose(m2) = %+v, %v", ch, ok)
	}
}

func TestChooseIsReproducibleWithASeed(t *testing.T) {
	picks := func() string {
		rc := New(Config{Rand: rand.New(rand.NewPCG(7, 7))})
		rc.Accept("k", req("m",
			reward.Reward{ContentID: "c", ImageVariant: "a", Impressions: 10, Clicks: 2},
			reward.Reward{ContentID: "c", ImageVariant: "b", Impressions: 10, Clicks: 3}))
		var b strings.Builder
		for range 50 {
			ch, ok := rc.Choose("m", "c", "")
			if !ok || (ch.ImageVariant != "a" && ch.ImageVariant != "b") {
				t.Fatalf("Choose = %+v, %v; want one of the two variants", ch, ok)
			}
			b.WriteString(ch.ImageVariant)
		}
		return b.String()
	}
	if a, b := picks(), picks(); a != b {
		t.Errorf("same seed, different choices:\n%s\n%s", a, b)
	}
}

func TestBetaSampleMoments(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range []struct{ a, b float64 }{{1, 1}, {3, 7}, {31, 71}, {1, 1000}, {5000, 20000}} {
		const n = 20000
		var sum, sq float64
		for range n {
			x := betaSample(r, p.a, p.b)
			if x < 0 || x > 1 || math.IsNaN(x) {
				t.Fatalf("Beta(%v,%v) sample %v", p.a, p.b, x)
			}
			sum += x
			sq += x * x
		}
		mean := sum / n
		variance := sq/n - mean*mean
		wantMean := p.a / (p.a + p.b)
		wantVar := p.a * p.b / ((p.a + p.b) * (p.a + p.b) * (p.a + p.b + 1))
		// Five standard errors of the mean; the variance within 10%.
		if se := math.Sqrt(wantVar / n); math.Abs(mean-wantMean) > 5*se {
			t.Errorf("Beta(%v,%v) mean %.5f, want %.5f ± %.5f", p.a, p.b, mean, wantMean, 5*se)
		}
		if math.Abs(variance-wantVar) > 0.1*wantVar {
			t.Errorf("Beta(%v,%v) variance %.3g, want %.3g", p.a, p.b, variance, wantVar)
		}
	}
}
