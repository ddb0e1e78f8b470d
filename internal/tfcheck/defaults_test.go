package tfcheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/plan"
	"github.com/spate-dev/spate/registry"
)

func resource(t *testing.T, m *Module, key string) *hclsyntax.Body {
	t.Helper()
	r := m.Resources[key]
	if r == nil {
		t.Fatalf("no resource %s", key)
	}
	return r.Body
}

func boolDefault(t *testing.T, m *Module, name string) bool {
	t.Helper()
	v := defaultOf(t, m, name)
	if v.Type() != cty.Bool {
		t.Fatalf("variable %s: default is %s, want a bool", name, v.Type().FriendlyName())
	}
	return v.True()
}

func numDefault(t *testing.T, m *Module, name string) float64 {
	t.Helper()
	f, _ := defaultOf(t, m, name).AsBigFloat().Float64()
	return f
}

func validations(t *testing.T, m *Module, name string) string {
	t.Helper()
	var out []string
	for _, b := range m.Variables[name].Body.Blocks {
		if b.Type == "validation" {
			out = append(out, norm(m.Source(b.Body.Attributes["condition"].Expr.Range())))
		}
	}
	return strings.Join(out, " && ")
}

// TestSecureDefaults: what a deployment with every default gets (issue
// 19): write keys required unless explicitly anonymous, WAF on the ALB,
// access logs on, lake versioning whose noncurrent versions expire within
// the erasure deadline, VPC endpoints with narrowed egress, https reward
// endpoints, confused-deputy conditions on the service trusts.
func TestSecureDefaults(t *testing.T) {
	m := loadRepoModule(t)

	// Write keys.
	if boolDefault(t, m, "allow_anonymous_ingest") {
		t.Error("allow_anonymous_ingest defaults to true")
	}
	if v := validations(t, m, "ingest_api_keys_secret_arn"); v != `var.ingest_api_keys_secret_arn!=""||var.allow_anonymous_ingest` {
		t.Errorf("ingest_api_keys_secret_arn validation %q: want the secret required unless allow_anonymous_ingest", v)
	}
	exec := m.Source(m.Data["aws_iam_policy_document.ingest_execution"].Body.SrcRange)
	if !strings.Contains(exec, `"kms:Decrypt"`) || !strings.Contains(exec, "var.ingest_api_keys_kms_key_arn") {
		t.Error("the execution role cannot kms:Decrypt a secret under a customer managed key")
	}

	// WAF on the ALB.
	if !boolDefault(t, m, "waf_enabled") {
		t.Error("waf_enabled defaults to false")
	}
	assoc := resource(t, m, "aws_wafv2_web_acl_association.ingest")
	if got := attrSource(t, m, assoc, "resource_arn"); got != "aws_lb.ingest.arn" {
		t.Errorf("WAF associated with %s, want the ingest ALB", got)
	}
	if got := attrSource(t, m, assoc, "count"); got != "var.waf_enabled?1:0" {
		t.Errorf("WAF association count %s", got)
	}
	acl := m.Source(m.Resources["aws_wafv2_web_acl.ingest"].Body.SrcRange)
	for _, want := range []string{"rate_based_statement", "var.waf_rate_limit_per_5min", "size_constraint_statement", "var.ingest_max_body_bytes",
		"AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesKnownBadInputsRuleSet"} {
		if !strings.Contains(acl, want) {
			t.Errorf("web ACL lacks %s", want)
		}
	}
	// The WAF's body bound and ingest's limit are one setting.
	if env := norm(m.Source(m.Locals["ingest_environment"].Expr.Range())); !strings.Contains(env, "SPATE_MAX_BODY_BYTES=tostring(var.ingest_max_body_bytes)") {
		t.Errorf("ingest does not get SPATE_MAX_BODY_BYTES from var.ingest_max_body_bytes: %s", env)
	}
	ingestSrc, err := os.ReadFile(filepath.Join(spatetest.RepoRoot(t), "cmd", "spate", "ingest.go"))
	if err != nil {
		t.Fatal(err)
	}
	if mm := regexp.MustCompile(`"SPATE_MAX_BODY_BYTES",\s*"(\d+)"`).FindSubmatch(ingestSrc); mm == nil || string(mm[1]) != strconv.Itoa(int(numDefault(t, m, "ingest_max_body_bytes"))) {
		t.Errorf("ingest_max_body_bytes default %v is not spate ingest's SPATE_MAX_BODY_BYTES default", numDefault(t, m, "ingest_max_body_bytes"))
	}
	for _, banned := range []string{"AWSManagedRulesCommonRuleSet", "AWSManagedRulesAnonymousIpList", "AWSManagedRulesBotControlRuleSet"} {
		if strings.Contains(acl, banned) {
			t.Errorf("web ACL uses %s, which can block valid beacons", banned)
		}
	}

	// Access logs.
	if !boolDefault(t, m, "alb_access_logs") {
		t.Error("alb_access_logs defaults to false")
	}
	logs := child(t, resource(t, m, "aws_lb.ingest"), "dynamic", "access_logs")
	if got := attrSource(t, m, logs, "for_each"); !strings.Contains(got, "var.alb_access_logs") {
		t.Errorf("access_logs for_each %s", got)
	}
	if got := attrSource(t, m, child(t, logs, "content"), "enabled"); got != "true" {
		t.Errorf("access logs enabled = %s", got)
	}
	exp := child(t, child(t, resource(t, m, "aws_s3_bucket_lifecycle_configuration.logs"), "rule"), "expiration")
	if got := attrSource(t, m, exp, "days"); got != "var.alb_access_log_retention_days" {
		t.Errorf("access log expiration %s", got)
	}

	// Lake versioning that erasure respects.
	vc := child(t, resource(t, m, "aws_s3_bucket_versioning.lake"), "versioning_configuration")
	if got := attrSource(t, m, vc, "status"); got != `"Enabled"` {
		t.Errorf("lake versioning %s", got)
	}
	lc := resource(t, m, "aws_s3_bucket_lifecycle_configuration.lake")
	found := false
	for _, b := range lc.Blocks {
		if b.Type != "rule" {
			continue
		}
		for _, r := range b.Body.Blocks {
			if r.Type == "noncurrent_version_expiration" && attrSource(t, m, r.Body, "noncurrent_days") == "var.lake_noncurrent_version_days" &&
				strings.Contains(m.Source(b.Body.SrcRange), "filter {}") {
				found = true
			}
		}
	}
	if !found {
		t.Error("no whole-bucket lake rule expires noncurrent versions after var.lake_noncurrent_version_days")
	}
	if nc, deadline := numDefault(t, m, "lake_noncurrent_version_days"), numDefault(t, m, "erasure_deadline_days"); nc > deadline || deadline > 30 {
		t.Errorf("noncurrent versions kept %v days, erasure deadline %v: versions must be gone by the deadline (≤ 30 days)", nc, deadline)
	}
	if v := validations(t, m, "lake_noncurrent_version_days"); !strings.Contains(v, "var.lake_noncurrent_version_days<=var.erasure_deadline_days") {
		t.Errorf("lake_noncurrent_version_days validation %q does not bound it by the erasure deadline", v)
	}

	// VPC endpoints and narrowed egress.
	if !boolDefault(t, m, "vpc_endpoints") {
		t.Error("vpc_endpoints defaults to false")
	}
	pol, ok := m.Locals["endpoint_policies"].Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("local.endpoint_policies is not an object literal")
	}
	var services []string
	for _, it := range pol.Items {
		services = append(services, strings.Trim(norm(m.Source(it.KeyExpr.Range())), `"`))
	}
	sort.Strings(services)
	if want := []string{"application-autoscaling", "ecr.api", "ecr.dkr", "kinesis-streams", "logs", "secretsmanager", "sqs", "sts"}; !slices.Equal(services, want) {
		t.Errorf("interface endpoints %q, want %q", services, want)
	}
	if got := attrSource(t, m, resource(t, m, "aws_vpc_security_group_egress_rule.tasks_https_anywhere"), "for_each"); !strings.HasPrefix(got, "var.vpc_endpoints?{}") {
		t.Errorf("0.0.0.0/0 egress for_each %s: want it only without endpoints", got)
	}
	for key, r := range m.Resources {
		if strings.HasPrefix(key, "aws_vpc_security_group_egress_rule.") && strings.Contains(m.Source(r.Body.SrcRange), "0.0.0.0/0") && key != "aws_vpc_security_group_egress_rule.tasks_https_anywhere" {
			t.Errorf("%s: egress to 0.0.0.0/0", key)
		}
	}

	// https reward endpoints.
	if boolDefault(t, m, "allow_insecure_reward_endpoints") {
		t.Error("allow_insecure_reward_endpoints defaults to true")
	}
	if v := validations(t, m, "reward_endpoints"); !strings.Contains(v, `var.allow_insecure_reward_endpoints?"^https?://[^,]+$":"^https://[^,]+$"`) {
		t.Errorf("reward_endpoints validation %q: want https unless allow_insecure_reward_endpoints", v)
	}

	// Confused deputy: service trusts conditioned on account and source.
	for _, doc := range []string{"aws_iam_policy_document.firehose_assume", "aws_iam_policy_document.scheduler_assume"} {
		src := m.Source(m.Data[doc].Body.SrcRange)
		if !strings.Contains(src, "aws:SourceAccount") || !strings.Contains(src, "aws:SourceArn") {
			t.Errorf("%s: trust without aws:SourceAccount and aws:SourceArn", doc)
		}
	}
	// Scheduler checks aws:SourceArn against the schedule group's ARN; a
	// schedule's ARN there makes the role unassumable (every run refused).
	if src := m.Source(m.Data["aws_iam_policy_document.scheduler_assume"].Body.SrcRange); !strings.Contains(src, ":schedule-group/default") || strings.Contains(src, ":schedule/") {
		t.Errorf("scheduler_assume: aws:SourceArn must be the schedule group's ARN, not a schedule's:\n%s", src)
	}
	// Every policy that passes a role says to which service.
	passes := 0
	for name, d := range m.Data {
		src := m.Source(d.Body.SrcRange)
		if !strings.Contains(src, `"iam:PassRole"`) {
			continue
		}
		passes++
		if !strings.Contains(src, "iam:PassedToService") {
			t.Errorf("%s: iam:PassRole without iam:PassedToService", name)
		}
	}
	if passes < 2 {
		t.Errorf("%d policies pass roles, want the prescale and lake maintenance schedulers at least", passes)
	}
}

// unpriced returns the kinds neither priced nor free in plan, and those
// listed as both.
func unpriced(kinds []string) []string {
	priced, free := plan.TerraformKinds()
	var out []string
	for _, k := range kinds {
		_, p := priced[k]
		_, f := free[k]
		if p == f {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestEveryResourceKindIsPriced: every resource kind terraform/ uses is
// priced by a line of `spate plan` or listed as free, with its reason
// (plan.TerraformKinds). A new kind fails here until it is one or the
// other.
func TestEveryResourceKindIsPriced(t *testing.T) {
	m := loadRepoModule(t)
	var kinds []string
	for key := range m.Resources {
		kinds = append(kinds, strings.SplitN(key, ".", 2)[0])
	}
	if bad := unpriced(kinds); len(bad) > 0 {
		t.Errorf("terraform uses resource kinds the plan neither prices nor lists as free: %q (plan/bill.go, TerraformKinds)", bad)
	}
	// The check itself: a kind nobody priced is caught.
	if got := unpriced(append(slices.Clone(kinds), "aws_rds_cluster")); !slices.Equal(got, []string{"aws_rds_cluster"}) {
		t.Errorf("an unpriced aws_rds_cluster reported as %q", got)
	}
	priced, free := plan.TerraformKinds()
	for k, why := range free {
		if why == "" {
			t.Errorf("free kind %s has no reason", k)
		}
	}
	for k, line := range priced {
		if line == "" {
			t.Errorf("priced kind %s names no line", k)
		}
	}
}

// TestAlarmMetricsMatchPlan: the alarm metrics the plan bills are the
// ones terraform/alarms.tf creates (six types, a provisioned stream).
func TestAlarmMetricsMatchPlan(t *testing.T) {
	m := loadRepoModule(t)
	types := len(registry.New(registry.Limits{}).Types())
	// for_each over the type streams, or over a local that is an object
	// literal (its items).
	multiplicity := map[string]int{"aws_kinesis_firehose_delivery_stream.events": types}
	for name, a := range m.Locals {
		if obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok {
			multiplicity["local."+name] = len(obj.Items)
		}
	}
	total := 0
	for key, r := range m.Resources {
		if !strings.HasPrefix(key, "aws_cloudwatch_metric_alarm.") {
			continue
		}
		n := 1
		if a, ok := r.Body.Attributes["for_each"]; ok {
			src := norm(m.Source(a.Expr.Range()))
			var known bool
			if n, known = multiplicity[src]; !known {
				t.Fatalf("%s: for_each %s: teach this test its size", key, src)
			}
		}
		metrics := 0
		if _, ok := r.Body.Attributes["metric_name"]; ok {
			metrics = 1
		}
		for _, q := range r.Body.Blocks {
			if q.Type == "metric_query" {
				for _, b := range q.Body.Blocks {
					if b.Type == "metric" {
						metrics++
					}
				}
			}
		}
		total += n * metrics
	}
	if want := plan.AlarmMetrics(types, true); total != want {
		t.Errorf("terraform alarms on %d metrics, the plan bills %d (plan.AlarmMetrics)", total, want)
	}
}

// validationHolds evaluates variable name's (function-free) validation
// conditions with the given variables.
func validationHolds(t *testing.T, m *Module, name string, vars map[string]cty.Value) bool {
	t.Helper()
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}}
	ok := true
	for _, b := range m.Variables[name].Body.Blocks {
		if b.Type != "validation" {
			continue
		}
		v, d := b.Body.Attributes["condition"].Expr.Value(ctx)
		if d.HasErrors() {
			t.Fatalf("%s validation: %s", name, d.Error())
		}
		ok = ok && v.True()
	}
	return ok
}

// TestSecureDefaultValidations runs the validations terraform would: an
// empty write-keys secret is refused unless anonymous ingest is asked for,
// and noncurrent lake versions may not outlive the erasure deadline.
func TestSecureDefaultValidations(t *testing.T) {
	m := loadRepoModule(t)
	keys := func(secret string, anonymous bool) bool {
		return validationHolds(t, m, "ingest_api_keys_secret_arn", map[string]cty.Value{
			"ingest_api_keys_secret_arn": cty.StringVal(secret), "allow_anonymous_ingest": cty.BoolVal(anonymous)})
	}
	if keys("", false) || !keys("", true) || !keys("arn:aws:secretsmanager:eu-north-1:123456789012:secret:k", false) {
		t.Errorf("write keys: empty/off %v, empty/anonymous %v, secret %v; want refused, allowed, allowed", keys("", false), keys("", true), keys("arn", false))
	}
	versions := func(days, deadline int64) bool {
		return validationHolds(t, m, "lake_noncurrent_version_days", map[string]cty.Value{
			"lake_noncurrent_version_days": cty.NumberIntVal(days), "erasure_deadline_days": cty.NumberIntVal(deadline)})
	}
	if !versions(7, 30) || versions(31, 30) || versions(0, 30) {
		t.Errorf("noncurrent versions: 7 of 30 %v, 31 of 30 %v, 0 %v; want allowed, refused, refused", versions(7, 30), versions(31, 30), versions(0, 30))
	}
	// The reward URL pattern the validation uses by default (the one after
	// the ':' of allow_insecure_reward_endpoints ? … : …), compiled.
	v := validations(t, m, "reward_endpoints")
	mm := regexp.MustCompile(`var\.allow_insecure_reward_endpoints\?"[^"]*":"([^"]*)"`).FindStringSubmatch(v)
	if mm == nil {
		t.Fatalf("reward validation %s: no secure pattern", v)
	}
	secure, err := regexp.Compile(strings.ReplaceAll(mm[1], `\\`, `\`))
	if err != nil {
		t.Fatal(err)
	}
	if secure.MatchString("http://rows.internal:8080/r") || !secure.MatchString("https://bandit.example.com/v1/rewards") {
		t.Errorf("reward URL pattern %s accepts http or refuses https", mm[1])
	}
}
