package deploytest

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// Instruction is one Dockerfile instruction with its continuation lines
// joined.
type Instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY, …
	Args string // the rest of the line, as written
	Line int    // 1-based line the instruction starts on
}

// Stage is one FROM … of a multi-stage build.
type Stage struct {
	Image        string
	Name         string // the AS name, lower case; "" when unnamed
	Instructions []Instruction
}

// Dockerfile is a parsed Dockerfile: the ARGs before the first FROM, and the
// stages in order.
type Dockerfile struct {
	GlobalArgs map[string]string
	Stages     []Stage
}

// ParseDockerfile reads the subset of Dockerfile syntax spate uses: comments,
// parser directives, backslash continuations and instructions. It does not
// expand variables except where a caller asks (Expand).
func ParseDockerfile(r io.Reader) (*Dockerfile, error) {
	df := &Dockerfile{GlobalArgs: map[string]string{}}
	sc := bufio.NewScanner(r)
	var (
		buf   strings.Builder
		start int
		n     int
	)
	flush := func() error {
		text := strings.TrimSpace(buf.String())
		buf.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		switch {
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			var s Stage
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					s.Name = strings.ToLower(f[i+1])
					i++
				case s.Image == "":
					s.Image = f[i]
				}
			}
			if s.Image == "" {
				return fmt.Errorf("line %d: FROM without an image", start)
			}
			df.Stages = append(df.Stages, s)
		case len(df.Stages) == 0:
			if in.Cmd != "ARG" {
				return fmt.Errorf("line %d: %s before the first FROM", start, in.Cmd)
			}
			name, def, _ := strings.Cut(in.Args, "=")
			df.GlobalArgs[name] = def
		default:
			s := &df.Stages[len(df.Stages)-1]
			s.Instructions = append(s.Instructions, in)
		}
		return nil
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if buf.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue // comments, and parser directives such as # syntax=
		}
		if buf.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment lines inside a continued instruction
		}
		if buf.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			buf.WriteString(cont)
			buf.WriteByte(' ')
			continue
		}
		buf.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if buf.Len() > 0 {
		return nil, fmt.Errorf("line %d: unterminated continuation", start)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return df, nil
}

// Stage returns the stage named name.
func (df *Dockerfile) Stage(name string) (*Stage, bool) {
	for i := range df.Stages {
		if df.Stages[i].Name == name {
			return &df.Stages[i], true
		}
	}
	return nil, false
}

// Final is the stage the image is made of.
func (df *Dockerfile) Final() *Stage { return &df.Stages[len(df.Stages)-1] }

// Find returns the stage's instructions of kind cmd.
func (s *Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// Expand replaces ${NAME} and $NAME with vars[NAME]; unknown names are kept.
func Expand(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
}

// ShellWords splits a POSIX shell command line into words, honouring single
// and double quotes and backslash escapes — enough for the RUN lines and
// the Makefile variables spate writes, not a shell.
func ShellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(rs):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote = c
			in = true
		case c == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// IgnoreMatcher applies .dockerignore rules the way the Docker builder does
// (github.com/moby/patternmatcher): patterns are cleaned paths relative to
// the context root, `*` and `?` stay within a path element, `**` spans
// elements, a match on a directory excludes everything below it, and a
// later `!pattern` re-includes.
type IgnoreMatcher struct {
	rules []ignoreRule
}

type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

// ParseDockerignore reads .dockerignore rules.
func ParseDockerignore(r io.Reader) (*IgnoreMatcher, error) {
	m := &IgnoreMatcher{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		neg := false
		if rest, ok := strings.CutPrefix(p, "!"); ok {
			neg, p = true, strings.TrimSpace(rest)
		}
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		re, err := globRegexp(p)
		if err != nil {
			return nil, fmt.Errorf("dockerignore pattern %q: %w", p, err)
		}
		m.rules = append(m.rules, ignoreRule{re: re, negate: neg})
	}
	return m, sc.Err()
}

func globRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				i++
				if i+1 < len(p) && p[i+1] == '/' {
					i++
					b.WriteString("(.*/)?")
				} else {
					b.WriteString(".*")
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// Excluded reports whether the slash-separated path rel (relative to the
// build context) is left out of the context.
func (m *IgnoreMatcher) Excluded(rel string) bool {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	// The path and each of its parent directories: a pattern matching a
	// directory excludes its contents.
	var cands []string
	for p := rel; p != "." && p != ""; p = path.Dir(p) {
		cands = append(cands, p)
	}
	excluded := false
	for _, r := range m.rules {
		for _, c := range cands {
			if r.re.MatchString(c) {
				excluded = !r.negate
				break
			}
		}
	}
	return excluded
}
