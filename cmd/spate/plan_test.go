package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/spatetest"
)

// planEnv is an environment whose output the test reads.
func planEnv(vars map[string]string) (*environment, *bytes.Buffer, *bytes.Buffer) {
	var out, errs bytes.Buffer
	return &environment{
		stdout: &out,
		stderr: &errs,
		getenv: func(k string) string { return vars[k] },
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, &out, &errs
}

func electionSchedule(t *testing.T) string {
	return filepath.Join(spatetest.RepoRoot(t), "plan", "testdata", "schedule-election-night.csv")
}

// The CLI's defaults are the plan package's: its output is the golden file.
func TestPlanCommandMatchesGolden(t *testing.T) {
	for _, c := range []struct{ output, golden string }{{"table", "plan-election-night.txt"}, {"json", "plan-election-night.json"}} {
		env, out, _ := planEnv(nil)
		if err := runPlan(t.Context(), env, []string{"--schedule", electionSchedule(t), "--output", c.output}); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(spatetest.RepoRoot(t), "plan", "testdata", c.golden))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("spate plan --output %s differs from plan/testdata/%s:\n%s", c.output, c.golden, out)
		}
	}
}

func TestPlanCommandFlags(t *testing.T) {
	env, out, _ := planEnv(map[string]string{"AWS_REGION": "eu-north-1"})
	err := runPlan(t.Context(), env, []string{"--schedule", electionSchedule(t), "--kinesis-mode", "on-demand", "--warm-throughput", "--quota-lambda-concurrency", "50", "--price-alb-hour", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "not confirmed from a public source") || strings.Contains(out.String(), "alb_hour") {
		t.Errorf("the price warning should name unconfirmed prices but not alb_hour, set by flag:\n%s", out)
	}
	for _, want := range []string{"eu-north-1, Kinesis on-demand", "WRITE MiB/s", "UpdateStreamWarmThroughput", "over the regional quota of 50", "over the 1 MiB/s quota"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	bad := [][]string{
		{},
		{"--schedule", electionSchedule(t), "--output", "yaml"},
		{"--schedule", electionSchedule(t), "--kinesis-mode", "turbo"},
		{"--schedule", electionSchedule(t), "--type-mix", "click"},
		{"--schedule", electionSchedule(t), "--quota-fargate-vcpu", "0"},
		{"--schedule", filepath.Join(t.TempDir(), "missing.csv")},
	}
	for _, args := range bad {
		env, _, _ := planEnv(nil)
		if err := runPlan(t.Context(), env, args); err == nil {
			t.Errorf("spate plan %v: no error", args)
		}
	}
}

// The month of issue 13 from the command line: events a day instead of
// requests a minute, the bill's deployment flags, a price by its JSON
// name.
func TestPlanCommandWholeBill(t *testing.T) {
	month := filepath.Join(spatetest.RepoRoot(t), "plan", "testdata", "schedule-month.csv")
	env, out, _ := planEnv(nil)
	err := runPlan(t.Context(), env, []string{"--schedule", month, "--events-per-day", "500000000", "--waf=false", "--vpc-endpoints=false",
		"--price-nat-gateway-gb", "0.05", "--output", "json"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MonthlyCost struct {
			Lines []struct {
				Service, Item string
				USD           float64
			} `json:"lines"`
			PerMillion float64 `json:"per_million_events"`
			Events     float64 `json:"events"`
		} `json:"monthly_cost_usd"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.MonthlyCost
	if c.Events < 16.5e9 || c.Events > 16.6e9 {
		t.Errorf("the month's events %v, want 16.58 billion from 500 M a day", c.Events)
	}
	var nat, waf bool
	for _, l := range c.Lines {
		nat = nat || l.Item == "NAT data processed"
		waf = waf || l.Service == "WAF"
	}
	if !nat || waf {
		t.Errorf("--vpc-endpoints=false --waf=false: NAT line %v, WAF line %v", nat, waf)
	}
	if c.PerMillion <= 0 || c.PerMillion > 1 {
		t.Errorf("per million events %v", c.PerMillion)
	}
	if strings.Contains(strings.Join(doc.Warnings, " "), "nat_gateway_gb") {
		t.Error("a price set by flag is still called unconfirmed")
	}
	env, _, _ = planEnv(nil)
	if err := runPlan(t.Context(), env, []string{"--schedule", month, "--arch", "sparc"}); err == nil {
		t.Error("--arch sparc accepted")
	}
}
