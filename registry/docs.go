package registry

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Markdown renders the event reference (docs/events.md) from the registry,
// so the documentation cannot drift from what ingest enforces.
func (r *Registry) Markdown() string {
	var b strings.Builder
	b.WriteString("# Events\n\n")
	b.WriteString("<!-- Generated from registry/ by `go test ./registry -update`. Do not edit. -->\n\n")
	b.WriteString("Clients POST events as JSON (snake_case) to `POST /v1/events`; see [operations](operations.md) for the HTTP API. ")
	b.WriteString("Unknown fields, and fields that do not belong to the event's type, are rejected: free-form data goes in `attrs`. ")
	b.WriteString("An empty string or `null` counts as absent. Strings must be valid UTF-8; lengths are in bytes.\n\n")
	fmt.Fprintf(&b, "Limits: one event at most %d bytes of JSON; `attrs` at most %d keys; `occurred_at` at most %s in the future and %s in the past.\n\n",
		r.limits.MaxEvent, r.limits.MaxAttrs, r.limits.MaxFuture, r.limits.MaxPast)
	b.WriteString("Every event leaves ingest with `event_id`, `occurred_at` and `received_at` set, timestamps as UTC RFC 3339 with milliseconds and a `Z`.\n\n")
	b.WriteString("## Envelope (all types)\n\n")
	b.WriteString(fieldTable(r.schemas[r.types[0]].Columns[:len(envelope)]))
	for _, t := range r.types {
		s := r.schemas[t]
		fmt.Fprintf(&b, "\n## `%s`\n\n%s Lake table `%s`, path `<lake>/%s/dt=YYYY-MM-DD/hour=HH/`.\n\n", t, s.Doc, t, t)
		b.WriteString(fieldTable(s.Columns[len(envelope):]))
	}
	return b.String()
}

func fieldTable(cols []Column) string {
	var b strings.Builder
	b.WriteString("| field | type | lake type | required | rules | meaning |\n|---|---|---|---|---|---|\n")
	for _, c := range cols {
		req := ""
		if c.Required {
			req = "yes"
		}
		var rules []string
		if c.MaxLen > 0 && c.Kind == String {
			rules = append(rules, fmt.Sprintf("≤ %d bytes", c.MaxLen))
		}
		if len(c.Enum) > 0 {
			rules = append(rules, "one of "+strings.Join(c.Enum, ", "))
		}
		if c.Kind == Int64 {
			rules = append(rules, "≥ 0")
		}
		if c.Name == "event_id" {
			rules = append(rules, "UUID")
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s | %s |\n", c.Name, c.Kind.jsonName(), c.Kind.GlueType(), req, strings.Join(rules, "; "), c.Doc)
	}
	return b.String()
}

// GlueColumn is one column of a Glue table, as terraform reads it.
type GlueColumn struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Comment string `json:"comment"`
}

// GlueJSON renders every type's Glue columns as the JSON object terraform
// reads (terraform/glue_columns.json): {"<type>": [{name, type, comment}]}.
func (r *Registry) GlueJSON() []byte {
	out := map[string][]GlueColumn{}
	for _, t := range r.types {
		for _, c := range r.schemas[t].Columns {
			comment := c.Doc
			if len(comment) > 255 {
				comment = comment[:255]
			}
			out[t] = append(out[t], GlueColumn{Name: c.Name, Type: c.Kind.GlueType(), Comment: comment})
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		panic(err) // a map of plain structs always marshals
	}
	return append(b, '\n')
}
