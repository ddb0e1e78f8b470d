package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/spate-dev/spate/registry"
)

// runSchema is `spate schema check|glue|docs [--schemas DIR]`: check loads
// and compiles every schema, each version against the one before it
// (SchemaVer); glue and docs print the generated Glue columns
// (terraform/glue_columns.json) and docs/events.md for a directory.
func runSchema(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "glue" && args[0] != "docs") {
		fmt.Fprintln(env.stderr, "Usage: spate schema check|glue|docs [--schemas DIR]")
		return errors.New("schema: want check, glue or docs")
	}
	fs := flag.NewFlagSet("schema "+args[0], flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dir := fs.String("schemas", env.getenv("SPATE_SCHEMAS"), "directory of event schemas (default: $SPATE_SCHEMAS, else the embedded ones)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	reg, err := registry.FromDir(*dir, registry.Limits{})
	if err != nil {
		return fmt.Errorf("schema %s: %w", args[0], err)
	}
	switch args[0] {
	case "glue":
		_, err := env.stdout.Write(reg.GlueJSON())
		return err
	case "docs":
		_, err := fmt.Fprint(env.stdout, reg.Markdown())
		return err
	}
	for _, t := range reg.Types() {
		s, _ := reg.Schema(t)
		var vs []string
		for _, v := range s.Versions {
			vs = append(vs, v.Version.String())
		}
		fmt.Fprintf(env.stdout, "%-16s %-24s table %-16s %d columns\n", t, strings.Join(vs, " → "), s.Table, len(s.Columns))
	}
	fmt.Fprintf(env.stdout, "ok: %d types, every version a compatible successor\n", len(reg.Types()))
	return nil
}
