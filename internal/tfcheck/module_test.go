package tfcheck

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/spate-dev/spate/awslambda"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/registry"
)

func loadRepoModule(t *testing.T) *Module {
	t.Helper()
	m, err := Load(filepath.Join(spatetest.RepoRoot(t), "terraform"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTerraformReferences: every var./local./module./data./resource
// reference in terraform/ is declared, and every declaration is used.
func TestTerraformReferences(t *testing.T) {
	m := loadRepoModule(t)
	for _, p := range m.CheckReferences() {
		t.Error(p)
	}
	if len(m.Resources) < 40 {
		t.Errorf("only %d resources parsed: is the module complete?", len(m.Resources))
	}
}

// TestTerraformIAM: no role may do wildcard actions or anything on "*"
// that AWS lets us scope.
func TestTerraformIAM(t *testing.T) {
	m := loadRepoModule(t)
	for _, p := range m.CheckIAM() {
		t.Error(p)
	}
	if n := len(m.statements()); n < 15 {
		t.Errorf("only %d IAM statements found: the scan is missing some", n)
	}
}

// norm drops all white space, so formatting does not matter.
func norm(s string) string { return strings.Join(strings.Fields(s), "") }

func attrSource(t *testing.T, m *Module, body *hclsyntax.Body, name string) string {
	t.Helper()
	a, ok := body.Attributes[name]
	if !ok {
		t.Fatalf("%s: no attribute %q", body.SrcRange, name)
	}
	return norm(m.Source(a.Expr.Range()))
}

func child(t *testing.T, body *hclsyntax.Body, typ string, labels ...string) *hclsyntax.Body {
	t.Helper()
	for _, b := range body.Blocks {
		if b.Type == typ && slices.Equal(b.Labels, labels) {
			return b.Body
		}
	}
	t.Fatalf("%s: no block %s %q", body.SrcRange, typ, labels)
	return nil
}

// TestGlueColumnsMatchRegistry: the file terraform reads is exactly what
// the registry generates, it is read as is, and every column of every
// type reaches its Glue table and its Firehose stream.
func TestGlueColumnsMatchRegistry(t *testing.T) {
	root := spatetest.RepoRoot(t)
	reg := registry.New(registry.Limits{})
	onDisk, err := os.ReadFile(filepath.Join(root, "terraform", "glue_columns.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, reg.GlueJSON()) {
		t.Fatal("terraform/glue_columns.json differs from registry.GlueJSON(): run `go test ./registry -update`")
	}

	var cols map[string][]registry.GlueColumn
	if err := json.Unmarshal(onDisk, &cols); err != nil {
		t.Fatal(err)
	}
	types := reg.Types()
	got := make([]string, 0, len(cols))
	for k := range cols {
		got = append(got, k)
	}
	sort.Strings(got)
	want := slices.Clone(types)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("glue_columns.json types %q, registry %q", got, want)
	}
	for _, typ := range types {
		s, _ := reg.Schema(typ)
		if len(cols[typ]) != len(s.Columns) {
			t.Errorf("%s: %d Glue columns, registry has %d", typ, len(cols[typ]), len(s.Columns))
			continue
		}
		for i, c := range s.Columns {
			if g := cols[typ][i]; g.Name != c.Name || g.Type != c.Kind.GlueType() {
				t.Errorf("%s column %d: %s %s, registry %s %s", typ, i, g.Name, g.Type, c.Name, c.Kind.GlueType())
			}
		}
	}

	m := loadRepoModule(t)
	if got := norm(m.Source(m.Locals["glue_columns"].Expr.Range())); got != `jsondecode(file("${path.module}/glue_columns.json"))` {
		t.Errorf("local.glue_columns = %s, want the file decoded as is", got)
	}

	table := m.Resources["aws_glue_catalog_table.events"]
	if table == nil {
		t.Fatal("no aws_glue_catalog_table.events")
	}
	if got := attrSource(t, m, table.Body, "for_each"); got != "local.glue_columns" {
		t.Errorf("Glue tables for_each = %s, want local.glue_columns (one table per registry type)", got)
	}
	if got := attrSource(t, m, table.Body, "name"); got != "each.key" {
		t.Errorf("Glue table name = %s, want each.key (the type)", got)
	}
	sd := child(t, table.Body, "storage_descriptor")
	dyn := child(t, sd, "dynamic", "columns")
	if got := attrSource(t, m, dyn, "for_each"); got != "each.value" {
		t.Errorf("columns for_each = %s, want each.value", got)
	}
	content := child(t, dyn, "content")
	for _, f := range []string{"name", "type", "comment"} {
		if got := attrSource(t, m, content, f); got != "columns.value."+f {
			t.Errorf("column %s = %s, want columns.value.%s", f, got, f)
		}
	}
	if len(content.Attributes) != 3 {
		t.Errorf("column block sets %d attributes, want exactly name, type, comment", len(content.Attributes))
	}
	// The lake layout every reader (Athena projection, spate local) shares.
	if got := attrSource(t, m, sd, "location"); !strings.Contains(got, "/${each.key}/") {
		t.Errorf("table location %s is not the type's prefix", got)
	}

	fh := m.Resources["aws_kinesis_firehose_delivery_stream.events"]
	if fh == nil {
		t.Fatal("no aws_kinesis_firehose_delivery_stream.events")
	}
	if got := attrSource(t, m, fh.Body, "for_each"); got != "aws_glue_catalog_table.events" {
		t.Errorf("Firehose for_each = %s, want one stream per Glue table", got)
	}
	s3 := child(t, fh.Body, "extended_s3_configuration")
	if got := attrSource(t, m, s3, "prefix"); got != `"${each.key}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"` {
		t.Errorf("Firehose prefix %s, want <type>/dt=YYYY-MM-DD/hour=HH/ like the local lake", got)
	}
	if got := attrSource(t, m, s3, "error_output_prefix"); !strings.Contains(got, "!{firehose:error-output-type}") {
		t.Errorf("error prefix %s lacks the error type", got)
	}
	conv := child(t, s3, "data_format_conversion_configuration")
	sc := child(t, conv, "schema_configuration")
	if got := attrSource(t, m, sc, "table_name"); got != "each.value.name" {
		t.Errorf("schema table_name = %s, want the stream's own Glue table", got)
	}
	child(t, child(t, child(t, conv, "input_format_configuration"), "deserializer"), "open_x_json_ser_de")
	pq := child(t, child(t, child(t, conv, "output_format_configuration"), "serializer"), "parquet_ser_de")
	if got := attrSource(t, m, pq, "compression"); got != `"SNAPPY"` {
		t.Errorf("Parquet compression %s", got)
	}
}

// TestIngestEnvironmentMatchesCommand: every SPATE_* variable terraform
// gives the ingest task is one `spate ingest` reads, and the drain
// deadline terraform tunes stopTimeout to is ingest's default.
func TestIngestEnvironmentMatchesCommand(t *testing.T) {
	root := spatetest.RepoRoot(t)
	m := loadRepoModule(t)
	known := spateNames(t, filepath.Join(root, "cmd", "spate"))

	src := m.Source(m.Locals["ingest_environment"].Expr.Range()) + m.Source(m.Resources["aws_ecs_task_definition.ingest"].Body.SrcRange)
	names := regexp.MustCompile(`\bSPATE_[A-Z0-9_]+\b`).FindAllString(src, -1)
	if len(names) < 4 {
		t.Fatalf("found only %q in the task's environment", names)
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("terraform sets %s, which cmd/spate does not read", n)
		}
	}

	ingestSrc, err := os.ReadFile(filepath.Join(root, "cmd", "spate", "ingest.go"))
	if err != nil {
		t.Fatal(err)
	}
	mm := regexp.MustCompile(`"SPATE_DRAIN_TIMEOUT",\s*"(\d+)s"`).FindSubmatch(ingestSrc)
	if mm == nil {
		t.Fatal(`cmd/spate/ingest.go: no {"SPATE_DRAIN_TIMEOUT", "<n>s", …} default`)
	}
	def := norm(m.Source(m.Variables["ingest_drain_timeout_seconds"].Body.Attributes["default"].Expr.Range()))
	if def != string(mm[1]) {
		t.Errorf("ingest_drain_timeout_seconds defaults to %s, spate ingest's SPATE_DRAIN_TIMEOUT to %ss", def, mm[1])
	}
	port := norm(m.Source(m.Locals["ingest_port"].Expr.Range()))
	if !regexp.MustCompile(`"SPATE_ADDR",\s*":` + port + `"`).Match(ingestSrc) {
		t.Errorf("local.ingest_port %s is not spate ingest's default SPATE_ADDR port", port)
	}
}

// TestLambdaEnvironmentMatchesMains: the variables terraform gives each
// Lambda are read by its main (or the packages it wires), once the main
// exists.
func TestLambdaEnvironmentMatchesMains(t *testing.T) {
	root := spatetest.RepoRoot(t)
	m := loadRepoModule(t)
	all := spateNames(t, root)
	for _, fn := range []string{"router", "aggregator", "reward"} {
		res := m.Resources["aws_lambda_function."+fn]
		if res == nil {
			t.Fatalf("no aws_lambda_function.%s", fn)
		}
		obj, ok := child(t, res.Body, "environment").Attributes["variables"]
		if !ok {
			t.Fatalf("aws_lambda_function.%s: no environment.variables", fn)
		}
		names := envKeys(t, obj)
		if len(names) == 0 {
			t.Errorf("aws_lambda_function.%s sets no SPATE_* variables", fn)
		}
		if _, err := os.Stat(filepath.Join(root, "cmd", "spate-"+fn, "main.go")); err != nil {
			// terraform deploys a function whose main is missing: the zip
			// could not be built, so this is a failure, never a skip.
			t.Errorf("aws_lambda_function.%s has no cmd/spate-%s/main.go: %v", fn, fn, err)
			continue
		}
		for _, n := range names {
			if !all[n] {
				t.Errorf("terraform gives the %s Lambda %s, which no Go code reads", fn, n)
			}
		}
	}
}

func envKeys(t *testing.T, a *hclsyntax.Attribute) []string {
	t.Helper()
	obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("%s: environment variables are not an object literal", a.SrcRange)
	}
	var out []string
	for _, it := range obj.Items {
		if tr, d := hcl.AbsTraversalForExpr(it.KeyExpr); !d.HasErrors() {
			out = append(out, tr.RootName())
		}
	}
	return out
}

// spateNames collects the "SPATE_*" string literals in the non-test Go
// files under dir.
func spateNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`"(SPATE_[A-Z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRouterStreamsFromTerraform evaluates the router's
// SPATE_FIREHOSE_STREAMS expression as terraform would, with the delivery
// streams terraform creates, and hands the result to the router Lambda's
// own parser: every type must map to its terraform-made stream.
func TestRouterStreamsFromTerraform(t *testing.T) {
	m := loadRepoModule(t)
	expr := lambdaEnv(t, m, "router", "SPATE_FIREHOSE_STREAMS")

	// The streams as firehose.tf names them: "${var.name}-${type}".
	fh := m.Resources["aws_kinesis_firehose_delivery_stream.events"]
	nameExpr := fh.Body.Attributes["name"].Expr
	reg := registry.New(registry.Limits{})
	made := map[string]cty.Value{}
	want := map[string]string{}
	for _, typ := range reg.Types() {
		v, d := nameExpr.Value(&hcl.EvalContext{Variables: map[string]cty.Value{
			"var":  cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("spate")}),
			"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(typ)}),
		}})
		if d.HasErrors() {
			t.Fatal(d)
		}
		made[typ] = cty.ObjectVal(map[string]cty.Value{"name": v})
		want[typ] = v.AsString()
	}
	v, d := expr.Value(&hcl.EvalContext{
		Variables: map[string]cty.Value{
			"aws_kinesis_firehose_delivery_stream": cty.ObjectVal(map[string]cty.Value{"events": cty.ObjectVal(made)}),
		},
		Functions: map[string]function.Function{"join": stdlib.JoinFunc, "jsonencode": stdlib.JSONEncodeFunc},
	})
	if d.HasErrors() {
		t.Fatalf("evaluate SPATE_FIREHOSE_STREAMS: %s", d.Error())
	}
	got, err := awslambda.RouterStreams(reg.Types(), func(k string) string {
		if k == "SPATE_FIREHOSE_STREAMS" {
			return v.AsString()
		}
		return ""
	})
	if err != nil {
		t.Fatalf("router rejects terraform's SPATE_FIREHOSE_STREAMS=%q: %v", v.AsString(), err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("router streams %v, terraform creates %v", got, want)
	}
}

// lambdaEnv returns the expression terraform gives the fn Lambda's
// environment variable name.
func lambdaEnv(t *testing.T, m *Module, fn, name string) hclsyntax.Expression {
	t.Helper()
	env := child(t, m.Resources["aws_lambda_function."+fn].Body, "environment")
	obj, ok := env.Attributes["variables"].Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("%s environment variables are not an object literal", fn)
	}
	for _, it := range obj.Items {
		if tr, d := hcl.AbsTraversalForExpr(it.KeyExpr); !d.HasErrors() && tr.RootName() == name {
			return it.ValueExpr
		}
	}
	t.Fatalf("the %s Lambda gets no %s", fn, name)
	return nil
}

// defaultOf evaluates a variable's default.
func defaultOf(t *testing.T, m *Module, name string) cty.Value {
	t.Helper()
	v, d := m.Variables[name].Body.Attributes["default"].Expr.Value(nil)
	if d.HasErrors() {
		t.Fatal(d)
	}
	return v
}

// TestRewardSettingsFromTerraform evaluates what terraform gives the
// reward Lambda and checks it against the main's contract: the endpoints
// parse with awslambda.ParseRewardURLs into exactly the configured list,
// the function's timeout exceeds SPATE_REWARD_MAX_ELAPSED, and the
// mapping's record age exceeds SPATE_REWARD_MAX_AGE.
func TestRewardSettingsFromTerraform(t *testing.T) {
	m := loadRepoModule(t)
	endpoints := []awslambda.RewardURL{
		{Model: "thumbnails", URL: "https://bandit.example.com/v1/rewards"},
		{Model: "thumbnails", URL: "https://shadow.example.com/rewards?v=2"},
		{Model: "rows", URL: "https://rows.internal:8443/r"},
	}
	var list []cty.Value
	for _, e := range endpoints {
		list = append(list, cty.ObjectVal(map[string]cty.Value{"model": cty.StringVal(e.Model), "url": cty.StringVal(e.URL)}))
	}
	locals := map[string]cty.Value{}
	for _, name := range []string{"reward_max_elapsed_seconds"} {
		v, d := m.Locals[name].Expr.Value(nil)
		if d.HasErrors() {
			t.Fatal(d)
		}
		locals[name] = v
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var": cty.ObjectVal(map[string]cty.Value{
				"reward_endpoints":       cty.ListVal(list),
				"reward_max_age_seconds": defaultOf(t, m, "reward_max_age_seconds"),
			}),
			"local": cty.ObjectVal(locals),
		},
		Functions: map[string]function.Function{"join": stdlib.JoinFunc},
	}
	eval := func(e hclsyntax.Expression) cty.Value {
		t.Helper()
		v, d := e.Value(ctx)
		if d.HasErrors() {
			t.Fatalf("evaluate %s: %s", m.Source(e.Range()), d.Error())
		}
		return v
	}

	got, err := awslambda.ParseRewardURLs(eval(lambdaEnv(t, m, "reward", "SPATE_REWARD_ENDPOINTS")).AsString(), false)
	if err != nil {
		t.Fatalf("reward Lambda rejects terraform's SPATE_REWARD_ENDPOINTS: %v", err)
	}
	if !slices.Equal(got, endpoints) {
		t.Errorf("reward endpoints %v, configured %v", got, endpoints)
	}

	seconds := func(v cty.Value) float64 {
		t.Helper()
		if v.Type() == cty.String {
			d, err := time.ParseDuration(v.AsString())
			if err != nil {
				t.Fatal(err)
			}
			return d.Seconds()
		}
		f, _ := v.AsBigFloat().Float64()
		return f
	}
	maxElapsed := seconds(eval(lambdaEnv(t, m, "reward", "SPATE_REWARD_MAX_ELAPSED")))
	maxAge := seconds(eval(lambdaEnv(t, m, "reward", "SPATE_REWARD_MAX_AGE")))
	timeout := seconds(eval(m.Resources["aws_lambda_function.reward"].Body.Attributes["timeout"].Expr))
	recordAge := seconds(eval(m.Resources["aws_lambda_event_source_mapping.reward"].Body.Attributes["maximum_record_age_in_seconds"].Expr))
	if timeout <= maxElapsed {
		t.Errorf("reward timeout %vs is not above SPATE_REWARD_MAX_ELAPSED %vs", timeout, maxElapsed)
	}
	if recordAge <= maxAge {
		t.Errorf("mapping record age %vs is not above SPATE_REWARD_MAX_AGE %vs: expired aggregates would be dropped, not dead-lettered", recordAge, maxAge)
	}
}
