package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate/internal/memlimit"
)

// envVar is one SPATE_* setting of `spate ingest`: documented in --help and
// the README from this one table.
type envVar struct {
	name, def, help string
	set             func(v string) error
}

func durationVar(p *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration like 250ms or 10s")
		}
		*p = d
		return nil
	}
}

func intVar(p *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a non-negative integer")
		}
		*p = n
		return nil
	}
}

func int64Var(p *int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want a non-negative integer")
		}
		*p = n
		return nil
	}
}

// sizeVar reads bytes, or a size like GOMEMLIMIT's (512MiB, 2GiB).
func sizeVar(p *int64) func(string) error {
	return func(v string) error {
		n, err := memlimit.Parse(v)
		if err != nil {
			return err
		}
		*p = n
		return nil
	}
}

func stringVar(p *string) func(string) error {
	return func(v string) error { *p = v; return nil }
}

func boolVar(p *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*p = b
		return nil
	}
}

// loadEnv applies every variable: its value from getenv, else its default.
func loadEnv(vars []envVar, getenv func(string) string) error {
	for _, v := range vars {
		val := getenv(v.name)
		if val == "" {
			val = v.def
		}
		if val == "" {
			continue
		}
		if err := v.set(val); err != nil {
			return fmt.Errorf("%s=%q: %w", v.name, val, err)
		}
	}
	return nil
}

func printEnv(w io.Writer, vars []envVar) {
	for _, v := range vars {
		def := v.def
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(w, "  %-26s %s\n  %-26s default: %s\n", v.name, v.help, "", def)
	}
}

// parseKeys reads "app=key,app2=key2" into key → app.
func parseKeys(s string) (map[string]string, error) {
	keys := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		app, key, ok := strings.Cut(part, "=")
		if !ok || app == "" || len(key) < 16 {
			return nil, fmt.Errorf("want app=key pairs with keys of at least 16 characters")
		}
		keys[key] = app
	}
	return keys, nil
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
