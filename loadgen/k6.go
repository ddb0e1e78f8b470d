package loadgen

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spate-dev/spate/registry"
)

// k6Field is one field as the k6 generator fills it.
type k6Field struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // string, integer, boolean
	Required bool     `json:"required,omitempty"`
	MaxLen   int      `json:"maxLength,omitempty"`
	Enum     []string `json:"enum,omitempty"`
	Format   string   `json:"format,omitempty"`
	Min      *int64   `json:"minimum,omitempty"`
	Max      *int64   `json:"maximum,omitempty"`
}

type k6Type struct {
	Name   string    `json:"name"`
	Weight int       `json:"weight"`
	Fields []k6Field `json:"fields"`
}

// K6Module renders loadtest/lib/schemas.gen.js: the types, their load
// weights (x-spate-load-weight), the platforms and every type's own
// fields, so the k6 generator writes a type it has no model for from its
// schema, as Traffic does.
func K6Module(reg *registry.Registry) []byte {
	var types []k6Type
	var platforms []string
	for _, t := range reg.Types() {
		s, _ := reg.Schema(t)
		kt := k6Type{Name: t, Weight: s.LoadWeight, Fields: []k6Field{}}
		for _, c := range s.Columns {
			if c.Name == "platform" {
				platforms = c.Enum
			}
			if c.Envelope {
				continue
			}
			f := k6Field{Name: c.Name, Required: c.Required, MaxLen: c.MaxLen, Enum: c.Enum, Format: c.Format}
			switch c.Kind {
			case registry.Int64:
				f.Kind = "integer"
				if c.HasMin {
					f.Min = &c.Min
				}
				if c.HasMax {
					f.Max = &c.Max
				}
			case registry.Bool:
				f.Kind = "boolean"
			default:
				f.Kind = "string"
			}
			kt.Fields = append(kt.Fields, f)
		}
		types = append(types, kt)
	}
	tj, _ := json.MarshalIndent(types, "", "  ")
	pj, _ := json.Marshal(platforms)
	var b strings.Builder
	b.WriteString("// Generated from schemas/ by `go test ./loadgen -update`. Do not edit.\n")
	b.WriteString("// The event types, their load weights (x-spate-load-weight) and own fields.\n\n")
	fmt.Fprintf(&b, "export const PLATFORMS = %s;\n\n", pj)
	fmt.Fprintf(&b, "export const TYPES = %s;\n", tj)
	return []byte(b.String())
}
