package main

import (
	"fmt"
	"strings"
)

// section is a generated part of docs/benchmarks.md: everything between
// <!-- bench:name --> and <!-- /bench:name --> is replaced on each run, and
// everything outside the markers is left as people wrote it.
type section struct {
	name  string
	title string // heading for a section the document does not have yet
	body  string
}

func openMarker(name string) string  { return "<!-- bench:" + name + " -->" }
func closeMarker(name string) string { return "<!-- /bench:" + name + " -->" }

// splice replaces each section's marked region in doc, or appends the
// section (heading and markers) when doc has no such markers yet.
func splice(doc string, sections []section) (string, error) {
	for _, s := range sections {
		open, close := openMarker(s.name), closeMarker(s.name)
		body := strings.TrimSpace(s.body)
		i := strings.Index(doc, open)
		j := strings.Index(doc, close)
		switch {
		case i < 0 && j < 0:
			if doc != "" && !strings.HasSuffix(doc, "\n") {
				doc += "\n"
			}
			if doc != "" {
				doc += "\n"
			}
			if s.title != "" {
				doc += s.title + "\n\n"
			}
			doc += open + "\n" + body + "\n" + close + "\n"
		case i < 0 || j < 0 || j < i:
			return "", fmt.Errorf("section %s: markers %q and %q unbalanced", s.name, open, close)
		default:
			if strings.Count(doc, open) > 1 || strings.Count(doc, close) > 1 {
				return "", fmt.Errorf("section %s: markers appear more than once", s.name)
			}
			doc = doc[:i] + open + "\n" + body + "\n" + doc[j:]
		}
	}
	return doc, nil
}

// table renders a Markdown table.
func table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// num formats v with thousands separators and prec decimals.
func num(v float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// ratio formats a/b as "×1.23", or "n/a" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("×%.2f", a/b)
}
