package deploytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/spatetest"
)

const module = "github.com/spate-dev/spate"

func readDockerfile(t *testing.T) *Dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(spatetest.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df, err := ParseDockerfile(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	return df
}

func readDockerignore(t *testing.T) *IgnoreMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(spatetest.RepoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ParseDockerignore(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// makeVar returns the value of `NAME := value` in the Makefile.
func makeVar(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(spatetest.RepoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":=")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("Makefile has no %s", name)
	return ""
}

// goDirective returns the go version go.mod asks for.
func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(spatetest.RepoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// goBuild is the builder stage's `go build` command, split into the
// environment it sets and the go arguments.
type goBuild struct {
	env    []string // NAME=VALUE
	flags  []string // everything between "build" and the package, but -o
	out    string   // -o
	pkg    string
	stage  *Stage
	copies []Instruction
}

func parseGoBuild(t *testing.T, df *Dockerfile, vars map[string]string) goBuild {
	t.Helper()
	stage, ok := df.Stage("build")
	if !ok {
		t.Fatal("Dockerfile has no stage named build")
	}
	var runs []string
	for _, in := range stage.Find("RUN") {
		if strings.Contains(in.Args, "go build") {
			runs = append(runs, in.Args)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("build stage has %d RUN lines with go build, want 1", len(runs))
	}
	words, err := ShellWords(Expand(runs[0], vars))
	if err != nil {
		t.Fatal(err)
	}
	gb := goBuild{stage: stage, copies: stage.Find("COPY")}
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		gb.env = append(gb.env, words[i])
	}
	if len(words) < i+3 || words[i] != "go" || words[i+1] != "build" {
		t.Fatalf("RUN %q: want [ENV=…] go build …", runs[0])
	}
	rest := words[i+2:]
	for j := 0; j < len(rest); j++ {
		switch w := rest[j]; {
		case w == "-o" && j+1 < len(rest):
			gb.out = rest[j+1]
			j++
		case strings.HasPrefix(w, "-"):
			gb.flags = append(gb.flags, w)
		case gb.pkg == "":
			gb.pkg = w
		default:
			t.Fatalf("RUN %q: more than one package (%q)", runs[0], w)
		}
	}
	return gb
}

func hostVars(df *Dockerfile) map[string]string {
	vars := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	for k, v := range df.GlobalArgs {
		vars[k] = v
	}
	return vars
}

// TestDockerfileMatchesRepo checks the Dockerfile's versions, flags, paths
// and command against the Makefile, go.mod and the CLI.
func TestDockerfileMatchesRepo(t *testing.T) {
	root := spatetest.RepoRoot(t)
	df := readDockerfile(t)
	if len(df.Stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(df.Stages))
	}

	t.Run("builder Go matches go.mod", func(t *testing.T) {
		want := goDirective(t)
		if got := df.GlobalArgs["GO_VERSION"]; got != want {
			t.Errorf("ARG GO_VERSION=%q, go.mod says go %s", got, want)
		}
		stage, _ := df.Stage("build")
		if stage == nil || !strings.HasPrefix(stage.Image, "golang:${GO_VERSION}") {
			t.Errorf("build stage image %v, want golang:${GO_VERSION}…", stage)
		}
	})

	gb := parseGoBuild(t, df, map[string]string{})
	t.Run("go build flags match make build", func(t *testing.T) {
		want, err := ShellWords(makeVar(t, "GOFLAGS_BUILD"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gb.flags, want) {
			t.Errorf("Dockerfile go build flags %q, Makefile GOFLAGS_BUILD %q", gb.flags, want)
		}
		if !slices.Contains(gb.env, "CGO_ENABLED=0") {
			t.Errorf("go build env %q lacks CGO_ENABLED=0: the distroless static image has no libc", gb.env)
		}
		if gb.pkg != "./cmd/spate" {
			t.Errorf("builds %q, want ./cmd/spate", gb.pkg)
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(gb.pkg), "main.go")); err != nil {
			t.Errorf("package %s: %v", gb.pkg, err)
		}
	})

	t.Run("build context sources exist and are not ignored", func(t *testing.T) {
		ign := readDockerignore(t)
		for _, c := range gb.copies {
			f := strings.Fields(c.Args)
			if len(f) < 2 || strings.HasPrefix(f[0], "--") {
				continue
			}
			for _, src := range f[:len(f)-1] {
				if src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("line %d COPY %s: %v", c.Line, src, err)
				}
				if ign.Excluded(src) {
					t.Errorf("line %d COPY %s: excluded by .dockerignore", c.Line, src)
				}
			}
		}
	})

	final := df.Final()
	t.Run("runtime image", func(t *testing.T) {
		if !strings.HasPrefix(final.Image, "gcr.io/distroless/static") && final.Image != "scratch" {
			t.Errorf("final image %q, want distroless static or scratch", final.Image)
		}
		users := final.Find("USER")
		if len(users) == 0 {
			t.Fatal("final stage sets no USER")
		}
		user, _, _ := strings.Cut(users[len(users)-1].Args, ":")
		if user == "root" || user == "0" || user == "" {
			t.Errorf("runs as %q, want a non-root user", users[len(users)-1].Args)
		}
		for _, s := range df.Stages {
			if hc := s.Find("HEALTHCHECK"); len(hc) > 0 {
				t.Errorf("line %d: HEALTHCHECK; the ALB checks /healthz", hc[0].Line)
			}
		}
	})

	t.Run("entrypoint runs the built binary's ingest", func(t *testing.T) {
		eps := final.Find("ENTRYPOINT")
		if len(eps) != 1 {
			t.Fatalf("final stage has %d ENTRYPOINTs, want 1", len(eps))
		}
		var ep []string
		if err := json.Unmarshal([]byte(eps[0].Args), &ep); err != nil {
			t.Fatalf("ENTRYPOINT %s is not exec (JSON) form, so SIGTERM would go to a shell: %v", eps[0].Args, err)
		}
		if !slices.Equal(ep, []string{"/spate", "ingest"}) {
			t.Errorf("ENTRYPOINT %q, want [/spate ingest]", ep)
		}
		var copied bool
		for _, c := range final.Find("COPY") {
			f := strings.Fields(c.Args)
			if len(f) == 3 && f[0] == "--from=build" && f[1] == gb.out && f[2] == ep[0] {
				copied = true
			}
		}
		if !copied {
			t.Errorf("final stage has no COPY --from=build %s %s", gb.out, ep[0])
		}
		if len(final.Find("CMD")) > 0 {
			t.Error("CMD would add arguments after ingest")
		}
	})
}

// TestDockerignoreKeepsBuildInputs lists every file `go build ./cmd/spate`
// reads from this module and checks .dockerignore lets it into the build
// context, while the bulky directories stay out.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	root := spatetest.RepoRoot(t)
	ign := readDockerignore(t)
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,CgoFiles,EmbedFiles,SFiles,HFiles,SysoFiles", "./cmd/spate")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	need := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir                                                      string
			Module                                                   *struct{ Path string }
			GoFiles, CgoFiles, EmbedFiles, SFiles, HFiles, SysoFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != module {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, fs := range [][]string{p.GoFiles, p.CgoFiles, p.EmbedFiles, p.SFiles, p.HFiles, p.SysoFiles} {
			for _, f := range fs {
				need = append(need, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	if len(need) < 5 {
		t.Fatalf("go list found only %q", need)
	}
	for _, f := range need {
		if ign.Excluded(f) {
			t.Errorf("%s is needed by go build ./cmd/spate but excluded by .dockerignore", f)
		}
	}
	for _, f := range []string{".git/HEAD", "emulators/node_modules/kinesalite/package.json", "dist/router.zip", "terraform/main.tf", "ingest/server_test.go"} {
		if !ign.Excluded(f) {
			t.Errorf("%s would be sent to the builder; .dockerignore should exclude it", f)
		}
	}
}

func TestIgnoreMatcher(t *testing.T) {
	m, err := ParseDockerignore(strings.NewReader("# c\n.git\n**/*_test.go\ndocs\n*.md\n!README.md\n/dist/\nbin/*.exe\n"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		".git":               true,
		".git/objects/ab":    true,
		"a/.git":             false,
		"x_test.go":          true,
		"ingest/x_test.go":   true,
		"ingest/x.go":        false,
		"docs/deploy.md":     true,
		"NOTES.md":           true,
		"README.md":          false,
		"ingest/README.md":   false, // *.md is anchored at the root
		"dist/router.zip":    true,
		"distx/router.zip":   false,
		"bin/a.exe":          true,
		"bin/sub/a.exe":      false,
		"cmd/spate/main.go":  false,
		"docsy/whatever.txt": false,
	} {
		if got := m.Excluded(path); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		`a b  c`:                      {"a", "b", "c"},
		`-ldflags='-s -w -buildid='`:  {"-ldflags=-s -w -buildid="},
		`"x y" 'z'`:                   {"x y", "z"},
		`a\ b`:                        {"a b"},
		`GOOS=linux go build ./cmd/x`: {"GOOS=linux", "go", "build", "./cmd/x"},
	} {
		got, err := ShellWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ShellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ShellWords(`'open`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestParseDockerfile(t *testing.T) {
	df, err := ParseDockerfile(strings.NewReader("# syntax=docker/dockerfile:1\nARG V=1\nFROM --platform=$BUILDPLATFORM img:${V} AS Build\nRUN a \\\n  # inner comment\n  b\nFROM scratch\nCOPY --from=build /x /y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if df.GlobalArgs["V"] != "1" || len(df.Stages) != 2 {
		t.Fatalf("got %+v", df)
	}
	b, ok := df.Stage("build")
	if !ok || b.Image != "img:${V}" || Expand(b.Image, df.GlobalArgs) != "img:1" {
		t.Fatalf("build stage %+v", b)
	}
	if runs := b.Find("RUN"); len(runs) != 1 || strings.Join(strings.Fields(runs[0].Args), " ") != "a b" || runs[0].Line != 4 {
		t.Errorf("RUN = %+v", runs)
	}
	if df.Final().Image != "scratch" {
		t.Errorf("final %q", df.Final().Image)
	}
	if _, err := ParseDockerfile(strings.NewReader("RUN x\n")); err == nil {
		t.Error("RUN before FROM accepted")
	}
}

// buildImageBinary runs the Dockerfile's go build for this machine's
// GOOS/GOARCH (the only difference from the image: TARGETOS/TARGETARCH)
// into a temporary directory and returns the binary's path.
func buildImageBinary(t *testing.T) string {
	t.Helper()
	df := readDockerfile(t)
	gb := parseGoBuild(t, df, hostVars(df))
	bin := filepath.Join(t.TempDir(), "spate")
	args := append([]string{"build"}, gb.flags...)
	args = append(args, "-o", bin, gb.pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = spatetest.RepoRoot(t)
	cmd.Env = append(os.Environ(), gb.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

func TestImageBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image binary")
	}
	bin := buildImageBinary(t)

	t.Run("help lists ingest", func(t *testing.T) {
		out, err := exec.Command(bin, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("spate --help: %v\n%s", err, out)
		}
		found := false
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 && f[0] == "ingest" {
				found = true
			}
		}
		if !found {
			t.Errorf("spate --help does not list the ingest command the ENTRYPOINT runs:\n%s", out)
		}
	})

	t.Run("static", func(t *testing.T) {
		// A dynamically linked binary names its interpreter; distroless
		// static has none.
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS == "linux" && bytes.Contains(b, []byte("/lib64/ld-linux")) {
			t.Error("binary is dynamically linked")
		}
	})

	t.Run("ingest against emulators", func(t *testing.T) {
		testIngestStart(t, bin)
	})
}
