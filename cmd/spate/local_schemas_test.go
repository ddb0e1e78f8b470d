package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/schemas"
)

// copySchemas writes the default schemas into a new directory.
func copySchemas(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(schemas.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, p), 0o755)
		}
		b, err := fs.ReadFile(schemas.FS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const searchSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://schemas.example.test/search/1-0-0.json",
  "$ref": "https://schemas.spate.dev/envelope/1-0-0.json",
  "description": "A search was run.",
  "type": "object",
  "properties": {
    "type": {"const": "search"},
    "query": {"type": "string", "maxLength": 256, "description": "What was searched for.", "x-spate-personal": true},
    "results": {"type": "integer", "minimum": 0, "description": "How many results were shown."},
    "voice": {"type": "boolean", "description": "Whether the query was spoken."}
  },
  "required": ["query", "results"],
  "unevaluatedProperties": false
}
`

// clickAddition is click 1-0-1: click 1-0-0 with one more optional field.
func clickAddition(t *testing.T, dir, version, required string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "click", "1-0-0.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "click/1-0-0.json", "click/"+version+".json", 1)
	s = strings.Replace(s, `"position": {`, `"shelf_title": {"type": "string", "maxLength": 80, "description": "Title of the shelf clicked in."},
    "position": {`, 1)
	if required != "" {
		s = strings.Replace(s, `"content_id"
  ]`, `"content_id", "`+required+`"
  ]`, 1)
	}
	writeFile(t, filepath.Join(dir, "click", version+".json"), s)
}

// runCmd runs one spate subcommand in-process.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }, log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	err := run(t.Context(), env, args)
	return out.String(), err
}

// TestLocalSchemasEndToEnd is the acceptance path of schemas as data: a new
// type and a new ADDITION, added as files only, flow through `spate local`;
// bad events are answered as before and kept in failed/; an incompatible
// change is refused by `spate schema check`; events rejected for an
// unknown field land once the field is added and `spate recover` runs, and
// a second recover sends nothing twice.
func TestLocalSchemasEndToEnd(t *testing.T) {
	sdir, data := copySchemas(t), t.TempDir()
	writeFile(t, filepath.Join(sdir, "search", "1-0-0.json"), searchSchema)
	if out, err := runCmd(t, "schema", "check", "--schemas", sdir); err != nil || !strings.Contains(out, "search") {
		t.Fatalf("schema check with a new type: %v\n%s", err, out)
	}

	// Phase 1: the new type is accepted; a click with a field no schema has
	// yet, and a search breaking a rule, are answered 400 naming the field.
	base, stop := startLocal(t, "--data", data, "--schemas", sdir, "--flush-interval", "1h")
	for i, q := range []string{"news", "ski jumping", "dokumentti"} {
		body := fmt.Sprintf(`{"type":"search","event_id":%q,"platform":"web","user_id":"u1","query":%q,"results":%d,"voice":%t}`, eventID(100+i), q, 10*i, i == 1)
		if code, out := post(t, base, "application/json", body); code != 202 {
			t.Fatalf("search %d: %d %v", i, code, out)
		}
	}
	unknownField := fmt.Sprintf(`{"type":"click","event_id":%q,"platform":"tv","user_id":"u2","content_id":"prog-7","image_variant":"hero_a","shelf_title":"Sport"}`, eventID(200))
	code, out := post(t, base, "application/json", unknownField)
	if code != 400 || out["field"] != "shelf_title" {
		t.Fatalf("click with an unknown field: %d %v", code, out)
	}
	negative := fmt.Sprintf(`{"type":"search","event_id":%q,"platform":"web","user_id":"u1","query":"x","results":-1}`, eventID(201))
	if code, out := post(t, base, "application/json", negative); code != 400 || out["field"] != "results" {
		t.Fatalf("search with negative results: %d %v", code, out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	searchGlob := filepath.Join(data, "lake", "search", "*", "*", "*.parquet")
	var n int
	var types string
	q := fmt.Sprintf(`SELECT count(*), string_agg(DISTINCT typeof(query) || ' ' || typeof(results) || ' ' || typeof(voice), ',') FROM read_parquet('%s')`, searchGlob)
	if err := db.QueryRow(q).Scan(&n, &types); err != nil || n != 3 || types != "VARCHAR BIGINT BOOLEAN" {
		t.Fatalf("search in the lake: %d rows, types %q, err %v", n, types, err)
	}
	failedGlob := filepath.Join(data, "failed", "dt=*", "hour=*", "*.parquet")
	rows, err := db.Query(fmt.Sprintf(`SELECT event_id, field, reason, coalesce(schema_id, ''), event_type, typeof(received_at), length(payload) FROM read_parquet('%s') ORDER BY event_id`, failedGlob))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, field, reason, schemaID, typ, recvType string
		var plen int
		if err := rows.Scan(&id, &field, &reason, &schemaID, &typ, &recvType, &plen); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s %s %v", id, field, typ, schemaID, recvType, plen > 0))
		if reason == "" {
			t.Errorf("failed event %s has no reason", id)
		}
	}
	rows.Close()
	want := []string{
		eventID(200) + " shelf_title click https://schemas.spate.dev/click/1-0-0.json TIMESTAMP WITH TIME ZONE true",
		eventID(201) + " results search https://schemas.example.test/search/1-0-0.json TIMESTAMP WITH TIME ZONE true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("failed events\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// An incompatible successor is refused.
	bad := copySchemas(t)
	clickAddition(t, bad, "1-0-1", "shelf_title")
	if out, err := runCmd(t, "schema", "check", "--schemas", bad); err == nil || !strings.Contains(err.Error(), `adds "shelf_title" as required`) {
		t.Fatalf("schema check of a breaking ADDITION: %v\n%s", err, out)
	}

	// Phase 2: the field arrives as an ADDITION; recover lands the click
	// (its event_id kept) and reports the search as still failing.
	clickAddition(t, sdir, "1-0-1", "")
	if out, err := runCmd(t, "schema", "check", "--schemas", sdir); err != nil || !strings.Contains(out, "1-0-0 → 1-0-1") {
		t.Fatalf("schema check with an ADDITION: %v\n%s", err, out)
	}
	base, stop = startLocal(t, "--data", data, "--schemas", sdir, "--flush-interval", "1h")
	failedDir := filepath.Join(data, "failed")
	out1, err := runCmd(t, "recover", "--from", failedDir, "--to", base, "--schemas", sdir)
	if err != nil || !strings.Contains(out1, "recovered 1, already recovered 0, still failing 1") || !strings.Contains(out1, "results: must not be negative") {
		t.Fatalf("first recover: %v\n%s", err, out1)
	}
	out2, err := runCmd(t, "recover", "--from", failedDir, "--to", base, "--schemas", sdir)
	if err != nil || !strings.Contains(out2, "recovered 0, already recovered 1, still failing 1") {
		t.Fatalf("second recover: %v\n%s", err, out2)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	clickGlob := filepath.Join(data, "lake", "click", "*", "*", "*.parquet")
	var count int
	var title string
	q = fmt.Sprintf(`SELECT count(*), max(shelf_title) FROM read_parquet('%s', union_by_name = true) WHERE event_id = ?`, clickGlob)
	if err := db.QueryRow(q, eventID(200)).Scan(&count, &title); err != nil || count != 1 || title != "Sport" {
		t.Fatalf("recovered click in the lake: %d rows, shelf_title %q, err %v", count, title, err)
	}

	// The docs and the Glue columns are generated from the same files.
	reg, err := registry.FromDir(sdir, registry.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	md := reg.Markdown()
	for _, w := range []string{"## `search`", "`query`", "`shelf_title`", "versions 1-0-0, 1-0-1"} {
		if !strings.Contains(md, w) {
			t.Errorf("events.md lacks %s", w)
		}
	}
	var glue map[string][]registry.GlueColumn
	if err := json.Unmarshal(reg.GlueJSON(), &glue); err != nil {
		t.Fatal(err)
	}
	gotCols := map[string]string{}
	for _, c := range append(glue["search"], glue["click"]...) {
		gotCols[c.Name] = c.Type
	}
	if gotCols["query"] != "string" || gotCols["results"] != "bigint" || gotCols["voice"] != "boolean" || gotCols["shelf_title"] != "string" {
		t.Errorf("Glue columns: %v", gotCols)
	}
}

// TestLocalRefusesUnsupportedSchemas: a schema outside the subset stops
// `spate local` before it listens, naming the file, the pointer and the
// keyword.
func TestLocalRefusesUnsupportedSchemas(t *testing.T) {
	dir := copySchemas(t)
	s := strings.Replace(searchSchema, `"maxLength": 256,`, `"maxLength": 256, "pattern": "^[a-z]+$",`, 1)
	writeFile(t, filepath.Join(dir, "search", "1-0-0.json"), s)
	_, err := runCmd(t, "local", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--schemas", dir)
	if err == nil {
		t.Fatal("spate local started")
	}
	for _, want := range []string{"search/1-0-0.json", "/properties/query/pattern", `"pattern"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
}
