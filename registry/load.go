package registry

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Draft is the only JSON Schema dialect spate reads.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// EnvelopeName is the directory of the envelope schema.
const EnvelopeName = "envelope"

// Version is a SchemaVer version, MODEL-REVISION-ADDITION. Versions order
// by MODEL, then REVISION, then ADDITION, numerically.
type Version struct{ Model, Revision, Addition int }

func (v Version) String() string { return fmt.Sprintf("%d-%d-%d", v.Model, v.Revision, v.Addition) }

// Compare orders versions: negative when v is older than w.
func (v Version) Compare(w Version) int {
	return cmp.Or(cmp.Compare(v.Model, w.Model), cmp.Compare(v.Revision, w.Revision), cmp.Compare(v.Addition, w.Addition))
}

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	versionRE = regexp.MustCompile(`^([1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5})\.json$`)
)

// SchemaError names the schema file, the JSON pointer in it and what is
// wrong there.
type SchemaError struct {
	File    string
	Pointer string
	Msg     string
}

func (e *SchemaError) Error() string {
	if e.Pointer == "" {
		return e.File + ": " + e.Msg
	}
	return e.File + ": " + e.Pointer + ": " + e.Msg
}

// doc is one loaded schema file.
type doc struct {
	file    string
	name    string
	version Version
	id      string
	root    *node
	schema  *Schema // compiled (type schemas) or nil (envelope)
}

// Load compiles the schemas in fsys (laid out as
// <name>/<MODEL>-<REVISION>-<ADDITION>.json) into a registry. It refuses,
// naming the file, the JSON pointer and the keyword, anything outside the
// supported subset (docs/events.md), and any version that is not a
// compatible successor of the one before it.
func Load(fsys fs.FS, limits Limits) (*Registry, error) { return load(fsys, limits, false) }

func load(fsys fs.FS, limits Limits, failed bool) (*Registry, error) {
	docs, err := readDocs(fsys)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if d.name == FailedType && !failed {
			return nil, &SchemaError{File: d.file, Msg: `the type name "failed" is reserved for the failed-events table`}
		}
	}
	var envs []*doc
	byType := map[string][]*doc{}
	for _, d := range docs {
		if d.name == EnvelopeName {
			envs = append(envs, d)
		} else {
			byType[d.name] = append(byType[d.name], d)
		}
	}
	if len(envs) == 0 {
		return nil, errors.New("schemas: no envelope (envelope/1-0-0.json)")
	}
	if len(byType) == 0 {
		return nil, errors.New("schemas: no event types")
	}
	envByID := map[string]*envelopeDef{}
	for _, d := range envs {
		e, err := compileEnvelope(d)
		if err != nil {
			return nil, err
		}
		envByID[d.id] = e
	}
	r := newRegistry(limits)
	var all []*Schema
	for _, ds := range byType {
		slices.SortFunc(ds, func(a, b *doc) int { return a.version.Compare(b.version) })
		for _, d := range ds {
			s, err := compileType(d, envByID)
			if err != nil {
				return nil, err
			}
			d.schema = s
		}
		for i := range ds {
			if err := successor(ds, i); err != nil {
				return nil, err
			}
		}
		newest := ds[len(ds)-1].schema
		for _, d := range ds {
			newest.Versions = append(newest.Versions, d.schema)
		}
		all = append(all, newest)
	}
	slices.SortFunc(all, func(a, b *Schema) int { return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Type, b.Type)) })
	if err := r.add(all); err != nil {
		return nil, err
	}
	return r, nil
}

func readDocs(fsys fs.FS) ([]*doc, error) {
	var docs []*doc
	err := fs.WalkDir(fsys, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		dir, file := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if strings.Contains(dir, "/") || dir == "" {
			return &SchemaError{File: p, Msg: "schema files live at <name>/<MODEL>-<REVISION>-<ADDITION>.json"}
		}
		if !nameRE.MatchString(dir) {
			return &SchemaError{File: p, Msg: fmt.Sprintf("type name %q must match %s", dir, nameRE)}
		}
		m := versionRE.FindStringSubmatch(file)
		if m == nil {
			return &SchemaError{File: p, Msg: "file name must be a SchemaVer version MODEL-REVISION-ADDITION.json, e.g. 1-0-0.json"}
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("schemas: %w", err)
		}
		root, err := parseDoc(b)
		if err != nil {
			return &SchemaError{File: p, Msg: err.Error()}
		}
		d := &doc{file: p, name: dir, root: root}
		d.version.Model, _ = strconv.Atoi(m[1])
		d.version.Revision, _ = strconv.Atoi(m[2])
		d.version.Addition, _ = strconv.Atoi(m[3])
		docs = append(docs, d)
		return nil
	})
	return docs, err
}

// keywords allowed where; anything else is refused.
var (
	envelopeKeys = set("$schema", "$id", "title", "description", "type", "properties", "required", "x-spate-server-set")
	typeKeys     = set("$schema", "$id", "$ref", "title", "description", "type", "properties", "required", "unevaluatedProperties", "x-spate-order", "x-spate-aggregate-counts", "x-spate-load-weight")
	propKeys     = set("type", "format", "enum", "const", "maxLength", "minimum", "maximum", "maxProperties", "propertyNames", "additionalProperties", "title", "description", "x-spate-dictionary", "x-spate-personal", "x-spate-aggregate-key")
	keyNameKeys  = set("minLength", "maxLength")
	mapValueKeys = set("type", "maxLength")
)

func set(ks ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range ks {
		m[k] = true
	}
	return m
}

func (d *doc) errf(ptr, format string, args ...any) error {
	return &SchemaError{File: d.file, Pointer: pointer(ptr), Msg: fmt.Sprintf(format, args...)}
}

func (d *doc) only(n *node, ptr string, allowed map[string]bool) error {
	if n.kind != 'o' {
		return d.errf(ptr, "must be an object")
	}
	for _, m := range n.obj {
		if !allowed[m.key] {
			return d.errf(ptr+"/"+escapePointer(m.key), "keyword %q is not supported by spate (supported: %s)", m.key, keys(allowed))
		}
	}
	return nil
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// header checks $schema and $id and returns the $id.
func (d *doc) header(wantType bool) error {
	if s := d.root.get("$schema"); s == nil || s.kind != 's' || s.str != Draft {
		return d.errf("/$schema", "must be %q", Draft)
	}
	id := d.root.get("$id")
	suffix := "/" + d.name + "/" + d.version.String() + ".json"
	if id == nil || id.kind != 's' || !strings.HasSuffix(id.str, suffix) {
		return d.errf("/$id", "must be a URI ending in %s", suffix)
	}
	d.id = id.str
	if t := d.root.get("type"); t == nil || t.kind != 's' || t.str != "object" {
		return d.errf("/type", `must be "object"`)
	}
	return nil
}

type envelopeDef struct {
	doc      *doc
	fields   []*Field
	required map[string]bool
	server   []*Field
}

func compileEnvelope(d *doc) (*envelopeDef, error) {
	if err := d.only(d.root, "", envelopeKeys); err != nil {
		return nil, err
	}
	if err := d.header(false); err != nil {
		return nil, err
	}
	e := &envelopeDef{doc: d}
	props := d.root.get("properties")
	if props == nil || props.kind != 'o' {
		return nil, d.errf("/properties", "must be an object")
	}
	for _, m := range props.obj {
		f, err := compileField(d, "/properties/"+escapePointer(m.key), m.key, m.val)
		if err != nil {
			return nil, err
		}
		f.Envelope, f.env = true, envelopeSlots[f.Name]
		e.fields = append(e.fields, f)
	}
	req, err := requiredList(d, props)
	if err != nil {
		return nil, err
	}
	e.required = req
	if ss := d.root.get("x-spate-server-set"); ss != nil {
		if ss.kind != 'o' {
			return nil, d.errf("/x-spate-server-set", "must be an object of property schemas")
		}
		for _, m := range ss.obj {
			f, err := compileField(d, "/x-spate-server-set/"+escapePointer(m.key), m.key, m.val)
			if err != nil {
				return nil, err
			}
			f.Envelope, f.ServerSet = true, true
			e.server = append(e.server, f)
		}
	}
	// The envelope is the part of an event spate's own code reads
	// (identity, partition key, time); its fields are spate.Event's.
	for _, f := range append(slices.Clone(e.fields), e.server...) {
		if want, ok := envelopeKinds[f.Name]; !ok || want != f.Kind {
			return nil, d.errf("/properties/"+f.Name, "envelope field %q is not one spate.Event carries (%v); changing the envelope is a code change", f.Name, envelopeOrder)
		}
	}
	return e, nil
}

// envelopeKinds are the fields of spate.Event's envelope.
var envelopeKinds = map[string]Kind{
	"type": String, "event_id": String, "occurred_at": Timestamp, "received_at": Timestamp, "user_id": String,
	"anonymous_id": String, "session_id": String, "platform": String, "app_version": String, "attrs": StringMap,
}

var envelopeOrder = []string{"type", "event_id", "occurred_at", "received_at", "user_id", "anonymous_id", "session_id", "platform", "app_version", "attrs"}

func requiredList(d *doc, props *node) (map[string]bool, error) {
	out := map[string]bool{}
	req := d.root.get("required")
	if req == nil {
		return out, nil
	}
	if req.kind != 'a' {
		return nil, d.errf("/required", "must be an array of property names")
	}
	for i, r := range req.arr {
		if r.kind != 's' || props.get(r.str) == nil {
			return nil, d.errf("/required/"+strconv.Itoa(i), "must name a property of this schema")
		}
		out[r.str] = true
	}
	return out, nil
}

func compileType(d *doc, envs map[string]*envelopeDef) (*Schema, error) {
	if err := d.only(d.root, "", typeKeys); err != nil {
		return nil, err
	}
	if err := d.header(true); err != nil {
		return nil, err
	}
	ref := d.root.get("$ref")
	if ref == nil || ref.kind != 's' || envs[ref.str] == nil {
		return nil, d.errf("/$ref", "must be the $id of an envelope schema")
	}
	env := envs[ref.str]
	if u := d.root.get("unevaluatedProperties"); u == nil || u.kind != 'b' || u.b {
		return nil, d.errf("/unevaluatedProperties", "must be false: unknown fields are refused (free-form data goes in attrs)")
	}
	s := &Schema{Type: d.name, Version: d.version, ID: d.id, File: d.file, EnvelopeFile: env.doc.file, Order: 1000}
	if s.Version.Model > 1 {
		s.Table = fmt.Sprintf("%s_v%d", d.name, s.Version.Model)
	} else {
		s.Table = d.name
	}
	if desc := d.root.get("description"); desc != nil {
		if desc.kind != 's' {
			return nil, d.errf("/description", "must be a string")
		}
		s.Doc = desc.str
	}
	if o := d.root.get("x-spate-order"); o != nil {
		n, err := o.num.Int64()
		if o.kind != 'n' || err != nil {
			return nil, d.errf("/x-spate-order", "must be an integer")
		}
		s.Order = int(n)
	}
	if o := d.root.get("x-spate-load-weight"); o != nil {
		n, err := o.num.Int64()
		if o.kind != 'n' || err != nil || n < 0 {
			return nil, d.errf("/x-spate-load-weight", "must be an integer ≥ 0")
		}
		s.LoadWeight = int(n)
	}
	if c := d.root.get("x-spate-aggregate-counts"); c != nil {
		if c.kind != 's' || !slices.Contains(Measures, c.str) {
			return nil, d.errf("/x-spate-aggregate-counts", "must be one of %s", strings.Join(Measures, ", "))
		}
		s.Counts = c.str
	}
	props := d.root.get("properties")
	if props == nil || props.kind != 'o' {
		return nil, d.errf("/properties", "must be an object")
	}
	req, err := requiredList(d, props)
	if err != nil {
		return nil, err
	}
	for _, f := range env.fields {
		s.Columns = append(s.Columns, Column{Field: f, Required: env.required[f.Name]})
		if f.Name == "occurred_at" {
			// received_at follows occurred_at, as the lake has always had it.
			for _, sf := range env.server {
				s.Columns = append(s.Columns, Column{Field: sf})
			}
		}
	}
	tp := props.get("type")
	if tp == nil || tp.kind != 'o' || len(tp.obj) != 1 || tp.obj[0].key != "const" || tp.obj[0].val.kind != 's' || tp.obj[0].val.str != d.name {
		return nil, d.errf("/properties/type", `must be {"const": %q}`, d.name)
	}
	for _, m := range props.obj {
		if m.key == "type" {
			continue
		}
		ptr := "/properties/" + escapePointer(m.key)
		if _, ok := envelopeKinds[m.key]; ok {
			return nil, d.errf(ptr, "%q is an envelope field; a type schema may not redefine it", m.key)
		}
		f, err := compileField(d, ptr, m.key, m.val)
		if err != nil {
			return nil, err
		}
		if f.Kind == StringMap || f.Kind == Timestamp {
			return nil, d.errf(ptr, "a type's own field is a string, integer or boolean (objects and timestamps are envelope fields)")
		}
		s.Columns = append(s.Columns, Column{Field: f, Required: req[m.key]})
	}
	return s, nil
}

func compileField(d *doc, ptr, name string, n *node) (*Field, error) {
	if !nameRE.MatchString(name) {
		return nil, d.errf(ptr, "property name must match %s", nameRE)
	}
	if err := d.only(n, ptr, propKeys); err != nil {
		return nil, err
	}
	f := &Field{Name: name, Min: math.MinInt64, Max: math.MaxInt64}
	t := n.get("type")
	if t == nil || t.kind != 's' {
		return nil, d.errf(ptr+"/type", "required: string, integer, boolean or object")
	}
	allow := map[string]bool{"type": true, "title": true, "description": true, "x-spate-personal": true, "x-spate-aggregate-key": true}
	switch t.str {
	case "string":
		f.Kind = String
		for _, k := range []string{"format", "enum", "maxLength", "x-spate-dictionary"} {
			allow[k] = true
		}
	case "integer":
		f.Kind = Int64
		allow["minimum"], allow["maximum"] = true, true
	case "boolean":
		f.Kind = Bool
	case "object":
		f.Kind = StringMap
		allow["maxProperties"], allow["propertyNames"], allow["additionalProperties"] = true, true, true
	default:
		return nil, d.errf(ptr+"/type", "%q is not supported (string, integer, boolean or object)", t.str)
	}
	for _, m := range n.obj {
		if !allow[m.key] {
			return nil, d.errf(ptr+"/"+escapePointer(m.key), "keyword %q is not supported for type %s", m.key, t.str)
		}
	}
	var err error
	num := func(key string, lo int64) (int64, bool, error) {
		v := n.get(key)
		if v == nil {
			return 0, false, nil
		}
		i, e := v.num.Int64()
		if v.kind != 'n' || e != nil || i < lo {
			return 0, false, d.errf(ptr+"/"+key, "must be an integer ≥ %d", lo)
		}
		return i, true, nil
	}
	if v, ok, e := num("maxLength", 0); e != nil {
		return nil, e
	} else if ok {
		f.MaxLen = int(v)
	}
	if v, ok, e := num("minimum", math.MinInt64); e != nil {
		return nil, e
	} else if ok {
		f.Min, f.HasMin = v, true
	}
	if v, ok, e := num("maximum", math.MinInt64); e != nil {
		return nil, e
	} else if ok {
		f.Max, f.HasMax = v, true
	}
	if v, ok, e := num("maxProperties", 0); e != nil {
		return nil, e
	} else if ok {
		f.MaxKeys = int(v)
	}
	if fm := n.get("format"); fm != nil {
		if fm.kind != 's' || (fm.str != "date-time" && fm.str != "uuid") {
			return nil, d.errf(ptr+"/format", `only "date-time" and "uuid" are supported`)
		}
		f.Format = fm.str
		if fm.str == "date-time" {
			f.Kind = Timestamp
		}
	}
	if en := n.get("enum"); en != nil {
		if en.kind != 'a' || len(en.arr) == 0 {
			return nil, d.errf(ptr+"/enum", "must be a non-empty array of strings")
		}
		for i, v := range en.arr {
			if v.kind != 's' {
				return nil, d.errf(ptr+"/enum/"+strconv.Itoa(i), "must be a string")
			}
			f.Enum = append(f.Enum, v.str)
		}
	}
	if desc := n.get("description"); desc != nil {
		if desc.kind != 's' {
			return nil, d.errf(ptr+"/description", "must be a string")
		}
		f.Doc = desc.str
	}
	flag := func(key string) (bool, error) {
		v := n.get(key)
		if v == nil {
			return false, nil
		}
		if v.kind != 'b' {
			return false, d.errf(ptr+"/"+key, "must be a boolean")
		}
		return v.b, nil
	}
	if f.LowCardinality, err = flag("x-spate-dictionary"); err != nil {
		return nil, err
	}
	if f.Personal, err = flag("x-spate-personal"); err != nil {
		return nil, err
	}
	if k := n.get("x-spate-aggregate-key"); k != nil {
		if k.kind != 's' || !slices.Contains(KeyRoles, k.str) {
			return nil, d.errf(ptr+"/x-spate-aggregate-key", "must be one of %s", strings.Join(KeyRoles, ", "))
		}
		f.AggregateKey = k.str
	}
	if f.Kind == StringMap {
		pn := n.get("propertyNames")
		if pn == nil {
			return nil, d.errf(ptr, `an object needs "propertyNames": {"minLength": 1, "maxLength": N}`)
		}
		if err := d.only(pn, ptr+"/propertyNames", keyNameKeys); err != nil {
			return nil, err
		}
		if v := pn.get("minLength"); v == nil || v.num.String() != "1" {
			return nil, d.errf(ptr+"/propertyNames/minLength", "must be 1")
		}
		ml := pn.get("maxLength")
		if ml == nil {
			return nil, d.errf(ptr+"/propertyNames/maxLength", "required")
		}
		ap := n.get("additionalProperties")
		if ap == nil {
			return nil, d.errf(ptr, `an object needs "additionalProperties": {"type": "string", "maxLength": N}`)
		}
		if err := d.only(ap, ptr+"/additionalProperties", mapValueKeys); err != nil {
			return nil, err
		}
		if t := ap.get("type"); t == nil || t.str != "string" {
			return nil, d.errf(ptr+"/additionalProperties/type", `must be "string"`)
		}
		vl := ap.get("maxLength")
		if vl == nil || ml.num.String() != vl.num.String() {
			return nil, d.errf(ptr+"/additionalProperties/maxLength", "must equal propertyNames/maxLength")
		}
		m, err := ml.num.Int64()
		if err != nil || m < 1 {
			return nil, d.errf(ptr+"/propertyNames/maxLength", "must be a positive integer")
		}
		f.MaxLen = int(m)
		if f.MaxKeys == 0 {
			return nil, d.errf(ptr+"/maxProperties", "required: bound the number of keys")
		}
	}
	return f, nil
}

// Measures are the counters of the real-time aggregates a type can count
// towards (x-spate-aggregate-counts).
var Measures = []string{"impressions", "clicks", "plays"}

// KeyRoles are the parts of an aggregate's key a field can fill
// (x-spate-aggregate-key).
var KeyRoles = []string{"content_id", "image_variant", "platform"}
