// Package schemas embeds spate's default event schemas: one JSON Schema
// (draft 2020-12) document per event type and SchemaVer version, laid out
// as <name>/<MODEL>-<REVISION>-<ADDITION>.json. registry.Load compiles
// them; a deployment replaces them with its own directory (--schemas,
// SPATE_SCHEMAS). See docs/events.md.
package schemas

import "embed"

// FS holds the default schemas.
//
//go:embed */*.json
var FS embed.FS
