package registry

import (
	"embed"
	"io/fs"
	"testing/fstest"

	"github.com/spate-dev/spate/schemas"
)

// FailedType is the table failed events are kept in: <data>/failed locally,
// the lake bucket's failed/ prefix in AWS. No client type may take the name.
const FailedType = "failed"

//go:embed failedschema/failed/1-0-0.json
var failedSchema embed.FS

// Failed returns the registry of the failed-events table alone: the
// envelope's columns (what could be read from the rejected event) and the
// failure's. Its columns feed the local failed-events Parquet and the
// Glue table terraform reads (terraform/failed_columns.json).
func Failed() *Registry {
	env, err := fs.ReadFile(schemas.FS, "envelope/1-0-0.json")
	if err != nil {
		panic(err) // embedded
	}
	f, err := fs.ReadFile(failedSchema, "failedschema/failed/1-0-0.json")
	if err != nil {
		panic(err)
	}
	r, err := load(fstest.MapFS{"envelope/1-0-0.json": {Data: env}, "failed/1-0-0.json": {Data: f}}, Limits{}, true)
	if err != nil {
		panic("registry: failed-events schema: " + err.Error())
	}
	return r
}
