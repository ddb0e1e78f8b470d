package main

import (
	"os"
	"strings"
	"testing"
)

func TestSchemaGlueAndDocsPrintTheGeneratedFiles(t *testing.T) {
	for cmd, file := range map[string]string{"glue": "../../terraform/glue_columns.json", "docs": "../../docs/events.md"} {
		out, err := runCmd(t, "schema", cmd)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("spate schema %s differs from %s", cmd, file)
		}
	}
	if _, err := runCmd(t, "schema", "nope"); err == nil || !strings.Contains(err.Error(), "want check") {
		t.Errorf("unknown subcommand: %v", err)
	}
}
