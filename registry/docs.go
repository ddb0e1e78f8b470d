package registry

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Markdown renders the event reference (docs/events.md) from the schemas,
// so the documentation cannot drift from what ingest enforces.
func (r *Registry) Markdown() string {
	var b strings.Builder
	b.WriteString("# Events\n\n")
	b.WriteString("<!-- Generated from schemas/ by `go test ./registry -update`. Do not edit. -->\n\n")
	b.WriteString("Clients POST events as JSON (snake_case) to `POST /v1/events`; see [operations](operations.md) for the HTTP API. ")
	b.WriteString("Unknown fields, and fields that do not belong to the event's type, are rejected: free-form data goes in `attrs`. ")
	b.WriteString("An empty string or `null` counts as absent. Strings must be valid UTF-8; lengths count characters (JSON Schema's `maxLength`).\n\n")
	fmt.Fprintf(&b, "Limits: one event at most %d bytes of JSON; `occurred_at` at most %s in the future and %s in the past.\n\n",
		r.limits.MaxEvent, r.limits.MaxFuture, r.limits.MaxPast)
	b.WriteString("Every event leaves ingest with `event_id`, `occurred_at` and `received_at` set, timestamps as UTC RFC 3339 with milliseconds and a `Z`.\n")
	b.WriteString("An event that fails validation is answered as before (400, or its entry in `rejected[]`) and kept in the failed-events area; see [Failed events](#failed-events).\n\n")
	first := r.schemas[r.types[0]]
	b.WriteString("## Envelope (all types)\n\n")
	fmt.Fprintf(&b, "Schema `%s`.\n\n", first.EnvelopeFile)
	var env, own []Column
	for _, c := range first.Columns {
		if c.Envelope {
			env = append(env, c)
		}
	}
	b.WriteString(fieldTable(env))
	for _, t := range r.types {
		s := r.schemas[t]
		own = own[:0]
		for _, c := range s.Columns {
			if !c.Envelope {
				own = append(own, c)
			}
		}
		fmt.Fprintf(&b, "\n## `%s`\n\n%s Schema `%s` (version %s", t, s.Doc, s.File, s.Version)
		if len(s.Versions) > 1 {
			var vs []string
			for _, v := range s.Versions {
				vs = append(vs, v.Version.String())
			}
			fmt.Fprintf(&b, "; versions %s", strings.Join(vs, ", "))
		}
		fmt.Fprintf(&b, "). Lake table `%s`, path `<lake>/%s/dt=YYYY-MM-DD/hour=HH/`.", s.Table, s.Table)
		if s.Counts != "" {
			fmt.Fprintf(&b, " Counted in the real-time aggregates as `%s`.", s.Counts)
		}
		b.WriteString("\n\n")
		b.WriteString(fieldTable(own))
	}
	b.WriteString(schemaGuide)
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
			rules = append(rules, fmt.Sprintf("≤ %d characters", c.MaxLen))
		}
		if c.Kind == StringMap {
			rules = append(rules, fmt.Sprintf("≤ %d keys; keys 1 to %d characters; values ≤ %d characters", c.MaxKeys, c.MaxLen, c.MaxLen))
		}
		if len(c.Enum) > 0 {
			rules = append(rules, "one of "+strings.Join(c.Enum, ", "))
		}
		if c.HasMin {
			rules = append(rules, fmt.Sprintf("≥ %d", c.Min))
		}
		if c.HasMax {
			rules = append(rules, fmt.Sprintf("≤ %d", c.Max))
		}
		if c.Format == "uuid" {
			rules = append(rules, "UUID")
		}
		if c.ServerSet {
			rules = append(rules, "set by the server")
		}
		if c.Personal {
			rules = append(rules, "personal identifier")
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

// GlueJSON renders every lake table's Glue columns as the JSON object
// terraform reads (terraform/glue_columns.json): {"<table>": [{name, type,
// comment}]}. Adding a schema file adds its table here, and so its Glue
// table and Firehose stream in the next terraform plan.
func (r *Registry) GlueJSON() []byte {
	out := map[string][]GlueColumn{}
	for _, t := range r.types {
		s := r.schemas[t]
		for _, c := range s.Columns {
			comment := c.Doc
			if len(comment) > 255 {
				comment = comment[:255]
			}
			out[s.Table] = append(out[s.Table], GlueColumn{Name: c.Name, Type: c.Kind.GlueType(), Comment: comment})
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		panic(err) // a map of plain structs always marshals
	}
	return append(b, '\n')
}
