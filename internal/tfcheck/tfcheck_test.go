package tfcheck

import (
	"slices"
	"strings"
	"testing"
)

func messages(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Msg)
	}
	return out
}

func TestGoodFixtureIsClean(t *testing.T) {
	m, err := Load("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	if ps := m.CheckReferences(); len(ps) > 0 {
		t.Errorf("references: %v", ps)
	}
	if ps := m.CheckIAM(); len(ps) > 0 {
		t.Errorf("IAM: %v", ps)
	}
	if len(m.Resources) != 4 || len(m.Data) != 1 || len(m.Locals) != 2 || len(m.Variables) != 2 {
		t.Errorf("declarations: %d resources, %d data, %d locals, %d variables", len(m.Resources), len(m.Data), len(m.Locals), len(m.Variables))
	}
}

func TestBadFixtureReferences(t *testing.T) {
	m, err := Load("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	got := messages(m.CheckReferences())
	for _, want := range []string{
		"var.nope is not declared",
		"local.missing is not declared",
		"resource aws_kinesis_steam.s is not declared",
		"module.gone is not declared",
		"data.aws_caller_identity.me is not declared",
		`unknown reference root "mystery"`,
		`variable "unused" is declared but never used`,
		`local "orphan" is declared but never used`,
		`data aws_region.never is declared but never used`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	if len(got) != 9 {
		t.Errorf("got %d problems, want 9: %q", len(got), got)
	}
}

func TestBadFixtureIAM(t *testing.T) {
	m, err := Load("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(messages(m.CheckIAM()), "\n")
	for _, want := range []string{
		`Allow "s3:*" on "*": wildcard action on every resource`,
		`Allow "kinesis:PutRecords" on "*": scope it`,
		`Allow "*" on "*"`,
		"NotAction",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	// The Deny statement with "*" is not a grant.
	if n := strings.Count(got, "\n") + 1; n != 4 {
		t.Errorf("got %d IAM problems, want 4:\n%s", n, got)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("empty directory accepted")
	}
}
