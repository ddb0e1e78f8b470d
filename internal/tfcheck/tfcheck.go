// Package tfcheck checks a terraform root module without terraform or a
// provider: it parses every .tf file with hcl/v2 and reports references to
// things the module does not declare (var., local., module., data. and
// resources), declarations nothing uses, and IAM statements that allow
// wildcard actions on every resource. `make tf-validate` checks the same
// module against the real provider schema; this runs in every `go test`.
package tfcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Module is a parsed root module.
type Module struct {
	Dir   string
	Files map[string]*hcl.File // by base name

	Variables map[string]*hclsyntax.Block
	Locals    map[string]*hclsyntax.Attribute
	Resources map[string]*hclsyntax.Block // "type.name"
	Data      map[string]*hclsyntax.Block // "type.name"
	Modules   map[string]*hclsyntax.Block
	Outputs   map[string]*hclsyntax.Block

	refs []ref
}

type ref struct {
	traversal hcl.Traversal
	// dynamic-block iterators and for_each/count in scope where the
	// reference was made.
	iterators []string
	inLocal   string // the local being defined, to ignore self-use
}

// Load parses every *.tf file in dir.
func Load(dir string) (*Module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("tfcheck: no .tf files in %s", dir)
	}
	sort.Strings(paths)
	m := &Module{
		Dir: dir, Files: map[string]*hcl.File{},
		Variables: map[string]*hclsyntax.Block{}, Locals: map[string]*hclsyntax.Attribute{},
		Resources: map[string]*hclsyntax.Block{}, Data: map[string]*hclsyntax.Block{},
		Modules: map[string]*hclsyntax.Block{}, Outputs: map[string]*hclsyntax.Block{},
	}
	var diags hcl.Diagnostics
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, d := hclsyntax.ParseConfig(src, filepath.Base(p), hcl.InitialPos)
		diags = append(diags, d...)
		if f == nil {
			continue
		}
		m.Files[filepath.Base(p)] = f
		d = m.declare(f.Body.(*hclsyntax.Body))
		diags = append(diags, d...)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("tfcheck: %s", diags.Error())
	}
	return m, nil
}

func (m *Module) declare(body *hclsyntax.Body) hcl.Diagnostics {
	var diags hcl.Diagnostics
	dup := func(kind, name string, b *hclsyntax.Block) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("duplicate %s %q", kind, name), Subject: b.DefRange().Ptr()})
	}
	if len(body.Attributes) > 0 {
		for _, a := range body.Attributes {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("attribute %q outside any block", a.Name), Subject: a.SrcRange.Ptr()})
		}
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable", "module", "output":
			if len(b.Labels) != 1 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: b.Type + " needs one label", Subject: b.DefRange().Ptr()})
				continue
			}
			target := map[string]map[string]*hclsyntax.Block{"variable": m.Variables, "module": m.Modules, "output": m.Outputs}[b.Type]
			if _, ok := target[b.Labels[0]]; ok {
				dup(b.Type, b.Labels[0], b)
			}
			target[b.Labels[0]] = b
			body := b.Body
			if b.Type == "variable" {
				// A variable's type is a type expression, not references.
				body = &hclsyntax.Body{Blocks: b.Body.Blocks, Attributes: hclsyntax.Attributes{}}
				for name, a := range b.Body.Attributes {
					if name != "type" {
						body.Attributes[name] = a
					}
				}
			}
			m.collect(body, nil, "")
		case "resource", "data":
			if len(b.Labels) != 2 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: b.Type + " needs two labels", Subject: b.DefRange().Ptr()})
				continue
			}
			target := m.Resources
			if b.Type == "data" {
				target = m.Data
			}
			key := b.Labels[0] + "." + b.Labels[1]
			if _, ok := target[key]; ok {
				dup(b.Type, key, b)
			}
			target[key] = b
			m.collect(b.Body, nil, "")
		case "locals":
			for name, a := range b.Body.Attributes {
				if _, ok := m.Locals[name]; ok {
					dup("local", name, b)
				}
				m.Locals[name] = a
				m.collectExpr(a.Expr, nil, name)
			}
		case "terraform", "provider", "moved", "import", "removed", "check":
			m.collect(b.Body, nil, "")
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("unexpected top-level block %q", b.Type), Subject: b.DefRange().Ptr()})
		}
	}
	return diags
}

// collect records the references in body. Dynamic blocks bring their
// iterator into scope; lifecycle.ignore_changes names attributes, not
// objects.
func (m *Module) collect(body *hclsyntax.Body, iterators []string, inLocal string) {
	for _, a := range body.Attributes {
		m.collectExpr(a.Expr, iterators, inLocal)
	}
	for _, b := range body.Blocks {
		switch {
		case b.Type == "lifecycle":
			for name, a := range b.Body.Attributes {
				if name != "ignore_changes" {
					m.collectExpr(a.Expr, iterators, inLocal)
				}
			}
			m.collect(&hclsyntax.Body{Blocks: b.Body.Blocks}, iterators, inLocal)
		case b.Type == "dynamic" && len(b.Labels) == 1:
			it := b.Labels[0]
			if a, ok := b.Body.Attributes["iterator"]; ok {
				if t, d := hcl.AbsTraversalForExpr(a.Expr); !d.HasErrors() {
					it = t.RootName()
				}
			}
			for name, a := range b.Body.Attributes {
				if name == "for_each" {
					m.collectExpr(a.Expr, iterators, inLocal)
				} else if name != "iterator" {
					m.collectExpr(a.Expr, append(slices.Clone(iterators), it), inLocal)
				}
			}
			m.collect(&hclsyntax.Body{Blocks: b.Body.Blocks}, append(slices.Clone(iterators), it), inLocal)
		default:
			m.collect(b.Body, iterators, inLocal)
		}
	}
}

func (m *Module) collectExpr(e hclsyntax.Expression, iterators []string, inLocal string) {
	for _, t := range hclsyntax.Variables(e) {
		m.refs = append(m.refs, ref{traversal: t, iterators: iterators, inLocal: inLocal})
	}
}

// Problem is one finding, with where it is.
type Problem struct {
	Range hcl.Range
	Msg   string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s", p.Range.Filename, p.Range.Start.Line, p.Msg)
}

// isBuiltinRoot reports whether root is something terraform itself
// provides.
func isBuiltinRoot(root string) bool {
	switch root {
	case "path", "terraform", "each", "count", "self":
		return true
	}
	return false
}

// CheckReferences reports every reference to an undeclared variable,
// local, module, data source or resource, and every variable, local and
// data source nothing references.
func (m *Module) CheckReferences() []Problem {
	var out []Problem
	usedVar, usedLocal, usedData := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range m.refs {
		t := r.traversal
		root := t.RootName()
		rng := t.SourceRange()
		attr := func(i int) (string, bool) {
			if len(t) <= i {
				return "", false
			}
			a, ok := t[i].(hcl.TraverseAttr)
			return a.Name, ok
		}
		switch {
		case slices.Contains(r.iterators, root), isBuiltinRoot(root):
		case root == "var":
			name, ok := attr(1)
			if _, declared := m.Variables[name]; !ok || !declared {
				out = append(out, Problem{rng, fmt.Sprintf("var.%s is not declared", name)})
			}
			usedVar[name] = true
		case root == "local":
			name, ok := attr(1)
			if _, declared := m.Locals[name]; !ok || !declared {
				out = append(out, Problem{rng, fmt.Sprintf("local.%s is not declared", name)})
			}
			if name != r.inLocal {
				usedLocal[name] = true
			}
		case root == "module":
			name, ok := attr(1)
			if _, declared := m.Modules[name]; !ok || !declared {
				out = append(out, Problem{rng, fmt.Sprintf("module.%s is not declared", name)})
			}
		case root == "data":
			typ, ok1 := attr(1)
			name, ok2 := attr(2)
			key := typ + "." + name
			if _, declared := m.Data[key]; !ok1 || !ok2 || !declared {
				out = append(out, Problem{rng, fmt.Sprintf("data.%s is not declared", key)})
			}
			usedData[key] = true
		case strings.Contains(root, "_"):
			// A resource reference: <type>.<name>.
			name, ok := attr(1)
			key := root + "." + name
			if _, declared := m.Resources[key]; !ok || !declared {
				out = append(out, Problem{rng, fmt.Sprintf("resource %s is not declared", key)})
			}
		default:
			out = append(out, Problem{rng, fmt.Sprintf("unknown reference root %q", root)})
		}
	}
	for name, b := range m.Variables {
		if !usedVar[name] {
			out = append(out, Problem{b.DefRange(), fmt.Sprintf("variable %q is declared but never used", name)})
		}
	}
	for name, a := range m.Locals {
		if !usedLocal[name] {
			out = append(out, Problem{a.SrcRange, fmt.Sprintf("local %q is declared but never used", name)})
		}
	}
	for key, b := range m.Data {
		if !usedData[key] {
			out = append(out, Problem{b.DefRange(), fmt.Sprintf("data %s is declared but never used", key)})
		}
	}
	sortProblems(out)
	return out
}

func sortProblems(ps []Problem) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Range.Filename != ps[j].Range.Filename {
			return ps[i].Range.Filename < ps[j].Range.Filename
		}
		return ps[i].Range.Start.Line < ps[j].Range.Start.Line
	})
}

// Source returns the text of rng.
func (m *Module) Source(rng hcl.Range) string {
	f := m.Files[rng.Filename]
	if f == nil {
		return ""
	}
	return string(rng.SliceBytes(f.Bytes))
}
