package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spate-dev/spate/reward"
	"github.com/spate-dev/spate/rewarddemo"
	"github.com/spate-dev/spate/rewardhttp"
)

// localModel is the model name of local mode's reward calls.
const localModel = "thumbnails"

// localRewarders returns a client per reward URL, or one for the demo
// receiver registered on mux. The demo is called in process, through the
// same HTTP client code, so the stop func can still deliver once the HTTP
// server has shut down.
func localRewarders(urls []string, mux chi.Router, now func() time.Time) ([]reward.Endpoint, error) {
	var out []reward.Endpoint
	for _, u := range urls {
		c, err := rewardhttp.New(u, rewardhttp.Config{Now: now})
		if err != nil {
			return nil, err
		}
		out = append(out, reward.Endpoint{Model: localModel, Name: u, Rewarder: c})
	}
	if len(out) > 0 {
		return out, nil
	}
	rc := rewarddemo.New(rewarddemo.Config{})
	rc.Register(mux)
	const demoURL = "http://spate-local/v1/rewards"
	c, err := rewardhttp.New(demoURL, rewardhttp.Config{HTTP: &http.Client{Transport: inProcess{rc.Routes()}}, Now: now})
	if err != nil {
		return nil, err
	}
	return []reward.Endpoint{{Model: localModel, Name: "demo", Rewarder: c}}, nil
}

// inProcess is an http.RoundTripper that serves requests with a handler.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	w := &memResponse{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: r,
	}, nil
}

type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *memResponse) Header() http.Header { return w.header }
func (w *memResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *memResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
