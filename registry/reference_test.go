package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/spate-dev/spate/registry"
	"github.com/spate-dev/spate/schemas"
)

// reference validates with santhosh-tekuri/jsonschema (format assertions
// on): the oracle the compiled validator is held to. It never runs on the
// hot path.
type reference struct {
	reg     *registry.Registry
	byType  map[string]*jsonschema.Schema
	kinds   map[string]registry.Kind // client-settable field → kind
	limits  registry.Limits
	receipt time.Time
}

func newReference(t testing.TB, fsys fs.FS) *reference {
	t.Helper()
	reg, err := registry.Load(fsys, registry.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	ids := map[string]string{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return err
		}
		id := doc.(map[string]any)["$id"].(string)
		ids[p] = id
		return c.AddResource(id, doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := &reference{reg: reg, byType: map[string]*jsonschema.Schema{}, kinds: map[string]registry.Kind{}, limits: reg.Limits(), receipt: now}
	for _, typ := range reg.Types() {
		s, _ := reg.Schema(typ)
		sch, err := c.Compile(ids[s.File])
		if err != nil {
			t.Fatalf("reference cannot compile %s: %v", s.File, err)
		}
		ref.byType[typ] = sch
	}
	for _, f := range reg.Fields() {
		if !f.ServerSet {
			ref.kinds[f.Name] = f.Kind
		}
	}
	return ref
}

// accepts is the oracle: JSON Schema validity after spate's documented
// normalisation (null, and "" for strings, are absent), and the envelope
// rules JSON Schema cannot state.
func (r *reference) accepts(raw []byte) (bool, string) {
	if len(raw) > r.limits.MaxEvent || !utf8.Valid(raw) {
		return false, "size or UTF-8"
	}
	if dup, ok := hasDuplicate(raw); !ok || dup {
		return false, "malformed or duplicate key"
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return false, "malformed"
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false, "not an object"
	}
	for k, val := range obj {
		kind, known := r.kinds[k]
		switch {
		case !known:
		case val == nil:
			delete(obj, k)
		case val == "" && (kind == registry.String || kind == registry.Timestamp):
			delete(obj, k)
		case kind == registry.StringMap:
			if m, ok := val.(map[string]any); ok {
				for mk, mv := range m {
					if mv == nil {
						m[mk] = ""
					}
				}
				if len(m) == 0 {
					delete(obj, k)
				}
			}
		}
	}
	typ, _ := obj["type"].(string)
	sch := r.byType[typ]
	if sch == nil {
		return false, "unknown type"
	}
	if err := sch.Validate(obj); err != nil {
		return false, err.Error()
	}
	if obj["user_id"] == nil && obj["anonymous_id"] == nil {
		return false, "identity"
	}
	for k, val := range obj {
		if n, ok := val.(json.Number); ok {
			// spate's wire rule: integers in integer syntax, within int64.
			rat, ok := new(big.Rat).SetString(string(n))
			if !ok || !rat.IsInt() || !rat.Num().IsInt64() || strings.ContainsAny(string(n), ".eE") {
				return false, "int64 range or syntax of " + k
			}
		}
	}
	if s, ok := obj["occurred_at"].(string); ok {
		if s[17:19] == "60" {
			return false, "leap second"
		}
		t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
		if err != nil || t.After(r.receipt.Add(r.limits.MaxFuture)) || t.Before(r.receipt.Add(-r.limits.MaxPast)) {
			return false, "occurred_at window"
		}
	}
	return true, ""
}

// hasDuplicate reports a duplicate object key at any depth; ok is false
// for malformed JSON.
func hasDuplicate(raw []byte) (dup, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			ok = false
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					ok = false
					return false
				}
				if seen[k.(string)] {
					dup = true
				}
				seen[k.(string)] = true
				if !walk() {
					return false
				}
			}
			_, err = dec.Token()
			return err == nil
		case json.Delim('['):
			for dec.More() {
				if !walk() {
					return false
				}
			}
			_, err = dec.Token()
			return err == nil
		}
		return true
	}
	ok = true
	if !walk() {
		return dup, false
	}
	if _, err := dec.Token(); err == nil {
		return dup, false
	}
	return dup, ok
}

func (r *reference) compare(t *testing.T, raw []byte) {
	t.Helper()
	want, why := r.accepts(raw)
	_, err := r.reg.Decode(raw, now)
	if got := err == nil; got != want {
		t.Fatalf("compiled validator accepts=%v (%v), reference accepts=%v (%s)\n%s", got, err, want, why, raw)
	}
}

// generatedSchemas writes a random but valid schema set: the default
// envelope and a few types with random properties, limits and required
// lists, so the validator is held to the reference beyond the defaults.
func generatedSchemas(seed uint64) fstest.MapFS {
	rng := rand.New(rand.NewPCG(seed, 7))
	env, _ := fs.ReadFile(schemas.FS, "envelope/1-0-0.json")
	out := fstest.MapFS{"envelope/1-0-0.json": {Data: env}}
	names := []string{"alpha", "beta", "gamma"}
	pool := []string{"f_a", "f_b", "f_c", "f_d", "f_e", "f_f"}
	kindOf := map[string]string{}
	for _, p := range pool {
		kindOf[p] = []string{"string", "integer", "boolean"}[rng.IntN(3)]
	}
	for _, n := range names[:1+rng.IntN(3)] {
		props := map[string]any{"type": map[string]any{"const": n}}
		var req []string
		for _, p := range pool {
			if rng.IntN(2) == 0 {
				continue
			}
			d := map[string]any{"type": kindOf[p]}
			switch kindOf[p] {
			case "string":
				if rng.IntN(2) == 0 {
					d["maxLength"] = rng.IntN(6)
				}
				if rng.IntN(3) == 0 {
					d["enum"] = []string{"x", "yy", "é"}
				}
				if rng.IntN(4) == 0 {
					d["format"] = "uuid"
				}
			case "integer":
				if rng.IntN(2) == 0 {
					d["minimum"] = rng.IntN(5) - 2
				}
				if rng.IntN(2) == 0 {
					d["maximum"] = rng.IntN(50)
				}
			}
			props[p] = d
			if rng.IntN(3) == 0 {
				req = append(req, p)
			}
		}
		if req == nil {
			req = []string{}
		}
		doc := map[string]any{
			"$schema": registry.Draft, "$id": "https://example.test/" + n + "/1-0-0.json",
			"$ref": "https://schemas.spate.dev/envelope/1-0-0.json", "type": "object",
			"properties": props, "required": req, "unevaluatedProperties": false,
		}
		b, _ := json.Marshal(doc)
		out[n+"/1-0-0.json"] = &fstest.MapFile{Data: b}
	}
	return out
}

// FuzzMatchesReference: on the default schemas (first byte even) and on
// generated ones, an event is accepted exactly when the reference accepts it.
func FuzzMatchesReference(f *testing.F) {
	for _, s := range seedEvents {
		f.Add(uint8(0), []byte(s))
	}
	f.Add(uint8(1), []byte(`{"type":"alpha","platform":"web","user_id":"u","f_a":"x","f_b":3,"f_c":true}`))
	f.Add(uint8(3), []byte(`{"type":"beta","platform":"ios","anonymous_id":"a","f_d":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","f_e":-1}`))
	refs := map[uint8]*reference{0: newReference(f, schemas.FS)}
	for i := uint8(1); i < 8; i += 2 {
		refs[i] = newReference(f, generatedSchemas(uint64(i)))
	}
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		ref := refs[0]
		if which%2 == 1 {
			ref = refs[which%8]
		}
		ref.compare(t, raw)
	})
}

var seedEvents = []string{
	`{"type":"click","content_id":"c","platform":"web","user_id":"u","position":3,"attrs":{"a":"b","n":null}}`,
	`{"type":"play_start","content_id":"c","live":true,"position_ms":-0,"platform":"tv","anonymous_id":"a","image_variant":"\u00e9\ud83c\udfac"}`,
	`{"type":"page_view","page":"a\"b\\c\/d\b\f\n\r\t","platform":"web","user_id":"u","referrer":null,"app_version":""}`,
	`{"type":"play_end","content_id":"c","position_ms":1e2,"platform":"web","user_id":"u","reason":"completed"}`,
	`{"type":"play_progress","content_id":"c","position_ms":1.0,"duration_ms":12345678901234567890,"platform":"web","user_id":"u"}`,
	`{"type":"impression","content_id":"c","image_variant":"v","platform":"android","user_id":"u","occurred_at":"2026-11-27T11:00:00.5+02:00"}`,
	`{"type":"impression","content_id":"c","image_variant":"v","platform":"android","user_id":"u","occurred_at":"2026-11-27t11:00:00z"}`,
	`{"type":"impression","content_id":"c","image_variant":"v","platform":"android","user_id":"u","occurred_at":"2026-11-27T23:59:60Z"}`,
	`{"type":"click","content_id":"c","platform":"web","user_id":"u","event_id":"6BA7B810-9DAD-11D1-80B4-00C04FD430C8"}`,
	`{"type":"click","content_id":"c","platform":"web","user_id":"u","attrs":{"a":"b","a":"c"}}`,
	`{"type":"click","content_id":"c","platform":"web","user_id":"u","attrs":{}}`,
	`{"type":"click","content_id":"c","platform":"web","user_id":"u","colour":null}`,
	`{"type":"click","content_id":"c","platform":"web","user_id":"u","received_at":null}`,
	`{"type":"click","content_id":"` + strings.Repeat("é", 128) + `","platform":"web","user_id":"u"}`,
	`{"type":"click","content_id":"` + strings.Repeat("é", 129) + `","platform":"web","user_id":"u"}`,
	`{"type":"click","content_id":"c","platform":"web","user_id":"u","position":1e999999999}`,
	`[]`, `{}`, `{"type":"click"} {}`,
}

// TestMatchesReferenceGenerated runs structured random events, mostly
// valid with one perturbation, against the reference on the default and
// generated schemas: the differential check in every `make test`.
func TestMatchesReferenceGenerated(t *testing.T) {
	sets := []fs.FS{schemas.FS, generatedSchemas(1), generatedSchemas(2), generatedSchemas(3)}
	for si, fsys := range sets {
		ref := newReference(t, fsys)
		rng := rand.New(rand.NewPCG(uint64(si), 99))
		for i := range 1500 {
			raw := randomEvent(rng, ref)
			t.Run(fmt.Sprintf("set%d/%d", si, i), func(t *testing.T) { ref.compare(t, raw) })
		}
	}
	for _, s := range seedEvents {
		newReference(t, schemas.FS).compare(t, []byte(s))
	}
}

var (
	strValues  = []string{`"x"`, `"yy"`, `"é"`, `""`, `null`, `"6ba7b810-9dad-11d1-80b4-00c04fd430c8"`, `"web"`, `"abcdefg"`, `5`, `true`}
	intValues  = []string{`0`, `3`, `-1`, `1.0`, `1e2`, `2.5`, `49`, `50`, `9223372036854775808`, `null`, `"5"`, `true`}
	boolValues = []string{`true`, `false`, `null`, `"true"`, `0`}
	timeValues = []string{`"2026-11-27T11:00:00Z"`, `"2026-11-27T11:00:00.123+02:00"`, `"2026-11-27 11:00:00Z"`, `"2026-11-27T11:00:00"`, `"2026-11-27t11:00:00z"`, `"2026-11-29T11:00:00Z"`, `"2026-02-30T11:00:00Z"`, `"2026-11-27T11:00:00,5Z"`, `null`}
)

func randomEvent(rng *rand.Rand, ref *reference) []byte {
	types := ref.reg.Types()
	typ := types[rng.IntN(len(types))]
	s, _ := ref.reg.Schema(typ)
	var parts []string
	for _, c := range s.Columns {
		if c.ServerSet {
			continue
		}
		if !c.Required && rng.IntN(3) == 0 {
			continue
		}
		var v string
		switch c.Name {
		case "type":
			v = `"` + typ + `"`
			if rng.IntN(30) == 0 {
				v = `"nope"`
			}
		case "platform":
			v = []string{`"web"`, `"tv"`, `"fridge"`, `null`}[min(rng.IntN(8), 3)]
		case "user_id", "anonymous_id":
			v = []string{`"u"`, `""`, `null`}[min(rng.IntN(5), 2)]
		case "attrs":
			v = []string{`{"a":"b"}`, `{}`, `{"a":null}`, `{"":"x"}`, `{"a":1}`, `[]`, `null`}[rng.IntN(7)]
		default:
			switch c.Kind {
			case registry.Int64:
				v = intValues[rng.IntN(len(intValues))]
			case registry.Bool:
				v = boolValues[rng.IntN(len(boolValues))]
			case registry.Timestamp:
				v = timeValues[rng.IntN(len(timeValues))]
			default:
				v = strValues[rng.IntN(len(strValues))]
				if c.Name == "event_id" && rng.IntN(2) == 0 {
					v = `"6ba7b810-9dad-11d1-80b4-00c04fd430c8"`
				}
			}
		}
		parts = append(parts, `"`+c.Name+`":`+v)
	}
	if rng.IntN(10) == 0 {
		fields := ref.reg.Fields()
		parts = append(parts, `"`+fields[rng.IntN(len(fields))].Name+`":"x"`)
	}
	if rng.IntN(20) == 0 {
		parts = append(parts, `"colour":"red"`)
	}
	rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return []byte("{" + strings.Join(parts, ",") + "}")
}
