package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
)

func envWith(getenv map[string]string) (*environment, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return &environment{
		stdout: out, stderr: out,
		getenv: func(k string) string { return getenv[k] },
		log:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, out
}

// TestREADMEListsEveryIngestVariable keeps the README's table and --help
// from drifting apart: both come from ingestEnv.
func TestREADMEListsEveryIngestVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c ingestConfig
	for _, v := range ingestEnv(&c) {
		row := "| `" + v.name + "` | "
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row for %s", v.name)
			continue
		}
		def := v.def
		if def == "" {
			continue
		}
		if !strings.Contains(string(readme), row+"`"+def+"`") {
			t.Errorf("README.md gives %s a default other than %q", v.name, def)
		}
	}
}

func TestIngestHelpListsVariables(t *testing.T) {
	env, out := envWith(nil)
	if err := run(context.Background(), env, []string{"ingest", "--help"}); err == nil || !strings.Contains(err.Error(), "help") {
		t.Fatalf("--help returned %v", err)
	}
	for _, name := range []string{"SPATE_ADDR", "SPATE_STREAM", "SPATE_DLQ_URL", "SPATE_DRAIN_TIMEOUT", "AWS_ENDPOINT_URL_KINESIS"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("--help does not mention %s", name)
		}
	}
}

func TestIngestConfigErrors(t *testing.T) {
	tests := map[string]map[string]string{
		"no stream":         {},
		"bad duration":      {"SPATE_STREAM": "events", "SPATE_ACK_TIMEOUT": "soon"},
		"bad number":        {"SPATE_STREAM": "events", "SPATE_MAX_EVENTS": "-3"},
		"short api key":     {"SPATE_STREAM": "events", "SPATE_API_KEYS": "web=short"},
		"bad ack mode":      {"SPATE_STREAM": "events", "SPATE_ACK_MODE": "eventually", "AWS_REGION": "eu-north-1"},
		"record over 1 MiB": {"SPATE_STREAM": "events", "SPATE_KINESIS_RECORD_BYTES": "1048577"},
		"bad aggregation":   {"SPATE_STREAM": "events", "SPATE_KINESIS_AGGREGATION": "sometimes"},
	}
	for name, vars := range tests {
		t.Run(name, func(t *testing.T) {
			env, _ := envWith(vars)
			if err := runIngest(context.Background(), env, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	env, out := envWith(nil)
	if err := run(context.Background(), env, []string{"frobnicate"}); err == nil {
		t.Fatal("unknown command accepted")
	}
	if !strings.Contains(out.String(), "local") {
		t.Errorf("usage not printed: %q", out)
	}
}
