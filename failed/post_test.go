package failed_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate/failed"
)

func TestPosterReadsWhichEventsIngestTook(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if r.URL.Query().Get("all") == "bad" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"no valid events"}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":2,"rejected":[{"index":1,"error":"x"}]}`))
	}))
	defer srv.Close()
	body := []byte(`{"events":[{},{},{}]}`)
	ok, err := failed.Poster(srv.Client(), srv.URL+"/v1/events")(context.Background(), body)
	if err != nil || len(ok) != 3 || !ok[0] || ok[1] || !ok[2] {
		t.Errorf("202: %v %v", ok, err)
	}
	ok, err = failed.Poster(srv.Client(), srv.URL+"/v1/events?all=bad")(context.Background(), body)
	if err != nil || len(ok) != 3 || ok[0] || ok[1] || ok[2] {
		t.Errorf("400: %v %v", ok, err)
	}
	if _, err := failed.Poster(srv.Client(), srv.URL+"/nowhere")(context.Background(), body); err == nil {
		t.Error("404 not an error")
	}
}

func TestLedgerSurvivesReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recovered.log")
	l, err := failed.OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Done()) != 0 {
		t.Fatal("new ledger not empty")
	}
	if err := l.Record([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	l, err = failed.OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if d := l.Done(); !d["a"] || !d["b"] || len(d) != 2 {
		t.Errorf("reopened ledger = %v", d)
	}
}
