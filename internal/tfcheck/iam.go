package tfcheck

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// resourceless are actions AWS does not authorise per resource: they can
// only be granted on "*".
func resourceless(action string) bool {
	switch action {
	case "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
		"application-autoscaling:DescribeScheduledActions":
		return true
	}
	return false
}

// statement is an IAM policy statement as far as it is literal in the
// configuration. Values that are references are left out: they are ARNs
// of declared resources, never wildcards.
type statement struct {
	rng          hcl.Range
	allow        bool
	actions      []string
	resources    []string
	notActions   bool
	notResources bool
}

// CheckIAM reports Allow statements that grant wildcard actions, grant
// anything on "*" that could be scoped to a resource, or use NotAction /
// NotResource, in aws_iam_policy_document data sources and in
// jsonencode()d policy attributes.
func (m *Module) CheckIAM() []Problem {
	var out []Problem
	for _, st := range m.statements() {
		if !st.allow {
			continue
		}
		if st.notActions || st.notResources {
			out = append(out, Problem{st.rng, "Allow with NotAction/NotResource grants everything else"})
		}
		allResources := false
		for _, r := range st.resources {
			if r == "*" {
				allResources = true
			}
		}
		for _, a := range st.actions {
			switch {
			case strings.Contains(a, "*") && allResources:
				out = append(out, Problem{st.rng, fmt.Sprintf("Allow %q on \"*\": wildcard action on every resource", a)})
			case strings.Contains(a, "*"):
				out = append(out, Problem{st.rng, fmt.Sprintf("Allow %q: name the actions", a)})
			case allResources && !resourceless(a):
				out = append(out, Problem{st.rng, fmt.Sprintf("Allow %q on \"*\": scope it to the resources it needs", a)})
			}
		}
		if len(st.actions) == 0 && !st.notActions {
			out = append(out, Problem{st.rng, "Allow statement without literal actions"})
		}
	}
	sortProblems(out)
	return out
}

func (m *Module) statements() []statement {
	var out []statement
	for key, b := range m.Data {
		if !strings.HasPrefix(key, "aws_iam_policy_document.") {
			continue
		}
		for _, sb := range b.Body.Blocks {
			body := sb.Body
			switch {
			case sb.Type == "statement":
			case sb.Type == "dynamic" && len(sb.Labels) == 1 && sb.Labels[0] == "statement":
				body = nil
				for _, c := range sb.Body.Blocks {
					if c.Type == "content" {
						body = c.Body
					}
				}
			default:
				continue
			}
			if body == nil {
				continue
			}
			st := statement{rng: sb.DefRange(), allow: true}
			if a, ok := body.Attributes["effect"]; ok {
				if v, d := a.Expr.Value(nil); !d.HasErrors() && v.Type() == cty.String {
					st.allow = v.AsString() == "Allow"
				}
			}
			if a, ok := body.Attributes["actions"]; ok {
				st.actions = literalStrings(a.Expr)
			}
			if a, ok := body.Attributes["resources"]; ok {
				st.resources = literalStrings(a.Expr)
			}
			_, st.notActions = body.Attributes["not_actions"]
			_, st.notResources = body.Attributes["not_resources"]
			out = append(out, st)
		}
	}
	for _, f := range m.Files {
		walkAttributes(f.Body.(*hclsyntax.Body), func(a *hclsyntax.Attribute) {
			if a.Name != "policy" && a.Name != "assume_role_policy" {
				return
			}
			call, ok := a.Expr.(*hclsyntax.FunctionCallExpr)
			if !ok || call.Name != "jsonencode" || len(call.Args) != 1 {
				return
			}
			doc, ok := call.Args[0].(*hclsyntax.ObjectConsExpr)
			if !ok {
				return
			}
			stmts := objectItem(doc, "Statement")
			var items []hclsyntax.Expression
			switch s := stmts.(type) {
			case *hclsyntax.TupleConsExpr:
				items = s.Exprs
			case *hclsyntax.ObjectConsExpr:
				items = []hclsyntax.Expression{s}
			}
			for _, it := range items {
				obj, ok := it.(*hclsyntax.ObjectConsExpr)
				if !ok {
					continue
				}
				st := statement{rng: obj.SrcRange, allow: true}
				if e := objectItem(obj, "Effect"); e != nil {
					if v := literalStrings(e); len(v) == 1 {
						st.allow = v[0] == "Allow"
					}
				}
				if e := objectItem(obj, "Action"); e != nil {
					st.actions = literalStrings(e)
				}
				if e := objectItem(obj, "Resource"); e != nil {
					st.resources = literalStrings(e)
				}
				st.notActions = objectItem(obj, "NotAction") != nil
				st.notResources = objectItem(obj, "NotResource") != nil
				out = append(out, st)
			}
		})
	}
	return out
}

func walkAttributes(body *hclsyntax.Body, fn func(*hclsyntax.Attribute)) {
	for _, a := range body.Attributes {
		fn(a)
	}
	for _, b := range body.Blocks {
		walkAttributes(b.Body, fn)
	}
}

// objectItem returns the value of the literal key in an object
// constructor.
func objectItem(obj *hclsyntax.ObjectConsExpr, key string) hclsyntax.Expression {
	for _, it := range obj.Items {
		k, d := it.KeyExpr.Value(nil)
		if d.HasErrors() || k.Type() != cty.String {
			// A bare identifier key (Effect = …) parses as a traversal.
			if t, d := hcl.AbsTraversalForExpr(it.KeyExpr); !d.HasErrors() && len(t) == 1 && t.RootName() == key {
				return it.ValueExpr
			}
			continue
		}
		if k.AsString() == key {
			return it.ValueExpr
		}
	}
	return nil
}

// literalStrings returns the string literals in e: e itself, or the
// elements of a tuple. Non-literal elements are skipped.
func literalStrings(e hclsyntax.Expression) []string {
	exprs := []hclsyntax.Expression{e}
	if t, ok := e.(*hclsyntax.TupleConsExpr); ok {
		exprs = t.Exprs
	}
	var out []string
	for _, x := range exprs {
		if len(hclsyntax.Variables(x)) > 0 {
			continue
		}
		v, d := x.Value(nil)
		if d.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
			continue
		}
		out = append(out, v.AsString())
	}
	return out
}
