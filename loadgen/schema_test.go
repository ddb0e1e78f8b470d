package loadgen_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/spate-dev/spate/loadgen"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/schemas"
)

const quality = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.test/quality_change/1-0-0.json",
  "$ref": "https://schemas.spate.dev/envelope/1-0-0.json",
  "type": "object",
  "properties": {
    "type": {"const": "quality_change"},
    "content_id": {"type": "string", "maxLength": 128},
    "bitrate_kbps": {"type": "integer", "minimum": 100, "maximum": 50000},
    "rendition": {"type": "string", "enum": ["sd", "hd", "uhd"]},
    "auto": {"type": "boolean"},
    "note": {"type": "string", "maxLength": 3}
  },
  "required": ["content_id", "bitrate_kbps", "rendition"],
  "unevaluatedProperties": false,
  "x-spate-load-weight": 10
}`

// TestTrafficWritesANewTypeFromItsSchema: a type added as a schema file
// with a load weight appears in the generated traffic, and every event the
// generator writes is one the registry accepts.
func TestTrafficWritesANewTypeFromItsSchema(t *testing.T) {
	m := fstest.MapFS{"quality_change/1-0-0.json": {Data: []byte(quality)}}
	_ = fs.WalkDir(schemas.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(schemas.FS, p)
			m[p] = &fstest.MapFile{Data: b}
		}
		return err
	})
	reg, err := registry.Load(m, registry.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, per := range []int{0, 20} {
		tr := loadgen.NewTraffic(reg, 7, loadgen.TrafficConfig{EventsPerRequest: per})
		seen := map[string]int{}
		for range 2000 {
			req := tr.Next(now)
			body := req.Body
			if req.Gzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(zr)
			}
			var batch struct{ Events []json.RawMessage }
			raws := []json.RawMessage{body}
			if json.Unmarshal(body, &batch) == nil && batch.Events != nil {
				raws = batch.Events
			}
			for _, raw := range raws {
				e, err := reg.Decode(raw, now)
				if err != nil {
					t.Fatalf("generated event rejected: %v: %s", err, raw)
				}
				seen[e.Type]++
			}
		}
		if seen["quality_change"] == 0 || len(seen) != 7 {
			t.Errorf("events per request %d: types generated %v", per, seen)
		}
	}
}
