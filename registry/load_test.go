package registry_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/schemas"
)

// defaults returns a writable copy of the default schemas.
func defaults(t *testing.T) fstest.MapFS {
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
	return out
}

func edited(t *testing.T, file, old, new string) fstest.MapFS {
	t.Helper()
	m := defaults(t)
	s := string(m[file].Data)
	if !strings.Contains(s, old) {
		t.Fatalf("%s has no %q", file, old)
	}
	m[file] = &fstest.MapFile{Data: []byte(strings.Replace(s, old, new, 1))}
	return m
}

// added returns the defaults plus file, a copy of from with edits.
func added(t *testing.T, file, from string, edits ...string) fstest.MapFS {
	t.Helper()
	m := defaults(t)
	s := string(m[from].Data)
	for i := 0; i < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("%s has no %q", from, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	m[file] = &fstest.MapFile{Data: []byte(s)}
	return m
}

func TestDefaultsReproduceTheSixTypes(t *testing.T) {
	reg := registry.New(registry.Limits{})
	if got := strings.Join(reg.Types(), ","); got != "page_view,impression,click,play_start,play_progress,play_end" {
		t.Errorf("types = %s", got)
	}
	want := map[string]string{"impression": "impressions", "click": "clicks", "play_start": "plays"}
	for typ, m := range want {
		if reg.Counted()[typ] != m {
			t.Errorf("%s counts as %q, want %q", typ, reg.Counted()[typ], m)
		}
	}
	if len(reg.Counted()) != 3 {
		t.Errorf("counted = %v", reg.Counted())
	}
	k := reg.KeyFields()
	if k["content_id"] != "content_id" || k["image_variant"] != "image_variant" || k["platform"] != "platform" {
		t.Errorf("key fields = %v", k)
	}
}

// TestLoadRefuses: anything outside the subset, or malformed, is refused
// naming the file, the JSON pointer and the keyword.
func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name string
		fsys fs.FS
		want []string
	}{
		{"unsupported keyword", edited(t, "click/1-0-0.json", `"maxLength": 128,`, `"maxLength": 128, "pattern": "^c",`),
			[]string{"click/1-0-0.json", "/properties/content_id/pattern", `"pattern"`}},
		{"unsupported top-level keyword", edited(t, "click/1-0-0.json", `"type": "object",`, `"type": "object", "oneOf": [],`),
			[]string{"click/1-0-0.json", "/oneOf", `"oneOf"`}},
		{"unknown annotation", edited(t, "click/1-0-0.json", `"x-spate-order"`, `"x-spate-colour": 1, "x-spate-order"`),
			[]string{"/x-spate-colour", `"x-spate-colour"`}},
		{"unsupported format", edited(t, "envelope/1-0-0.json", `"format": "uuid"`, `"format": "email"`),
			[]string{"envelope/1-0-0.json", "/properties/event_id/format"}},
		{"unsupported type", edited(t, "click/1-0-0.json", `"type": "integer"`, `"type": "number"`),
			[]string{"/properties/position/type", `"number"`}},
		{"keyword for another type", edited(t, "click/1-0-0.json", `"minimum": 0`, `"maxLength": 3`),
			[]string{"/properties/position/maxLength", `"maxLength"`}},
		{"additional properties allowed", edited(t, "click/1-0-0.json", `"unevaluatedProperties": false`, `"unevaluatedProperties": true`),
			[]string{"/unevaluatedProperties"}},
		{"wrong draft", edited(t, "click/1-0-0.json", "draft/2020-12", "draft-07"), []string{"/$schema"}},
		{"id not naming the version", edited(t, "click/1-0-0.json", "click/1-0-0.json", "click/1-0-1.json"), []string{"/$id"}},
		{"duplicate key", edited(t, "click/1-0-0.json", `"title": "click",`, `"title": "click", "title": "x",`), []string{"duplicate key"}},
		{"bad file name", added(t, "click/v2.json", "click/1-0-0.json"), []string{"click/v2.json", "SchemaVer"}},
		{"reserved name", added(t, "failed/1-0-0.json", "click/1-0-0.json", `"const": "click"`, `"const": "failed"`, "click/1-0-0", "failed/1-0-0"), []string{"reserved"}},
		{"one name, two types", added(t, "hover/1-0-0.json", "click/1-0-0.json", `"const": "click"`, `"const": "hover"`, "click/1-0-0", "hover/1-0-0", `"type": "integer"`, `"type": "string"`),
			[]string{"hover/1-0-0.json", "/properties/position"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registry.Load(tt.fsys, registry.Limits{})
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestSchemaVerRules: each successor is checked against the version before
// it; the error names the file and the property.
func TestSchemaVerRules(t *testing.T) {
	const base = "click/1-0-0.json"
	tests := []struct {
		name  string
		file  string
		edits []string
		ok    bool
		want  string
	}{
		{"addition: new optional field", "click/1-0-1.json", []string{"1-0-0", "1-0-1", `"position": {`, `"shelf": {"type": "string", "maxLength": 10}, "position": {`}, true, ""},
		{"addition: a limit widened", "click/1-0-1.json", []string{"1-0-0", "1-0-1", `"maxLength": 128`, `"maxLength": 256`}, true, ""},
		{"addition: property removed", "click/1-0-1.json", []string{"1-0-0", "1-0-1", `"list_id": {`, `"list_idx": {`}, false, `removes "list_id"`},
		{"addition: type changed", "click/1-0-1.json", []string{"1-0-0", "1-0-1", `"type": "integer"`, `"type": "boolean"`, `"minimum": 0,`, ``}, false, `changes the type of "position"`},
		{"addition: made required", "click/1-0-1.json", []string{"1-0-0", "1-0-1", `"content_id"
  ]`, `"content_id", "list_id"
  ]`}, false, `makes "list_id" required`},
		{"addition: new required field", "click/1-0-1.json", []string{"1-0-0", "1-0-1", `"position": {`, `"shelf": {"type": "string"}, "position": {`, `"content_id"
  ]`, `"content_id", "shelf"
  ]`}, false, `adds "shelf" as required`},
		{"addition: limit narrowed", "click/1-0-1.json", []string{"1-0-0", "1-0-1", `"maxLength": 128`, `"maxLength": 100`}, false, "narrows"},
		{"revision: limit narrowed", "click/1-1-0.json", []string{"1-0-0", "1-1-0", `"maxLength": 128`, `"maxLength": 100`}, true, ""},
		{"revision: type changed", "click/1-1-0.json", []string{"1-0-0", "1-1-0", `"type": "integer"`, `"type": "boolean"`, `"minimum": 0,`, ``}, false, "new MODEL"},
		{"model: anything", "click/2-0-0.json", []string{"1-0-0", "2-0-0", `"type": "integer"`, `"type": "boolean"`, `"minimum": 0,`, ``}, false, "one field name has one type"},
		{"model: new table", "click/2-0-0.json", []string{"1-0-0", "2-0-0", `"list_id": {`, `"list_idx": {`}, true, ""},
		{"gap", "click/1-0-2.json", []string{"1-0-0", "1-0-2"}, false, "does not follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := registry.Load(added(t, tt.file, base, tt.edits...), registry.Limits{})
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				s, _ := reg.Schema("click")
				if !strings.Contains(tt.file, s.Version.String()) || len(s.Versions) != 2 {
					t.Errorf("newest = %s (%d versions)", s.Version, len(s.Versions))
				}
				return
			}
			if err == nil {
				t.Fatal("loaded")
			}
			var se *registry.SchemaError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v does not say %q", err, tt.want)
			}
		})
	}
}

func TestNewModelIsANewTable(t *testing.T) {
	reg, err := registry.Load(added(t, "click/2-0-0.json", "click/1-0-0.json", "1-0-0", "2-0-0", `"list_id": {`, `"shelf_id": {`), registry.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := reg.Schema("click")
	if s.Table != "click_v2" {
		t.Errorf("table = %s", s.Table)
	}
	if !strings.Contains(string(reg.GlueJSON()), `"click_v2"`) {
		t.Error("Glue columns have no click_v2 table")
	}
}
