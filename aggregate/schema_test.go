package aggregate_test

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/schemas"
)

// withType returns the default schemas plus one more type file.
func withType(t *testing.T, name, doc string) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(schemas.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schemas.FS, p)
		out[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out[name+"/1-0-0.json"] = &fstest.MapFile{Data: []byte(doc)}
	return out
}

const hoverSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.test/thumbnail_hover/1-0-0.json",
  "$ref": "https://schemas.spate.dev/envelope/1-0-0.json",
  "type": "object",
  "properties": {
    "type": {"const": "thumbnail_hover"},
    "content_id": {"type": "string", "maxLength": 128, "x-spate-aggregate-key": "content_id"},
    "image_variant": {"type": "string", "maxLength": 64, "x-spate-aggregate-key": "image_variant"},
    "hover_ms": {"type": "integer", "minimum": 0}
  },
  "required": ["content_id", "image_variant"],
  "unevaluatedProperties": false
  COUNTS
}`

// TestNewCountedTypeNeedsNoCode: a type added as a schema file, annotated
// x-spate-aggregate-counts, is counted by the fold configured from the
// registry; without the annotation it is not.
func TestNewCountedTypeNeedsNoCode(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		counts string
		want   aggregate.Counts
	}{
		{"annotated", `, "x-spate-aggregate-counts": "impressions"`, aggregate.Counts{Impressions: 2, Clicks: 1}},
		{"not annotated", ``, aggregate.Counts{Clicks: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(hoverSchema, "COUNTS", tt.counts, 1)
			reg, err := registry.Load(withType(t, "thumbnail_hover", doc), registry.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			f, err := aggregate.New(aggregate.Config{Counted: reg.Counted(), KeyFields: reg.KeyFields()})
			if err != nil {
				t.Fatal(err)
			}
			var recs []spate.Record
			for i, raw := range []string{
				`{"type":"thumbnail_hover","content_id":"c1","image_variant":"hero_a","hover_ms":800,"platform":"web","user_id":"u"}`,
				`{"type":"thumbnail_hover","content_id":"c1","image_variant":"hero_a","platform":"web","user_id":"u"}`,
				`{"type":"click","content_id":"c1","image_variant":"hero_a","platform":"web","user_id":"u"}`,
			} {
				e, err := reg.Decode([]byte(raw), at)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				recs = append(recs, spate.Record{PartitionKey: "s", Data: e.AppendJSON(nil), ShardID: "shardId-0", SequenceNumber: string(rune('1' + i)), ArrivedAt: at})
			}
			st := aggregate.NewState("src", aggregate.WindowOf(at, time.Minute))
			f.Fold(st, recs)
			if got := st.Get(aggregate.Key{ContentID: "c1", ImageVariant: "hero_a", Platform: "web"}); got != tt.want {
				t.Errorf("counts = %+v, want %+v", got, tt.want)
			}
		})
	}
}
