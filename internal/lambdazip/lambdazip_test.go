package lambdazip

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeBootstrap(t *testing.T, dir string, body string, mtime time.Time, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask must not matter either
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWriteFileIsReproducible(t *testing.T) {
	body := strings.Repeat("\x7fELF not really a binary ", 1000)
	// Same content, different directories, times and modes on disk: the
	// zips must be identical.
	a := writeBootstrap(t, t.TempDir(), body, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), 0o700)
	b := writeBootstrap(t, t.TempDir(), body, time.Date(2031, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 7200)), 0o644)
	out := t.TempDir()
	za, zb := filepath.Join(out, "a.zip"), filepath.Join(out, "b.zip")
	if err := WriteFile(za, a); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(zb, b); err != nil {
		t.Fatal(err)
	}
	ba, _ := os.ReadFile(za)
	bb, _ := os.ReadFile(zb)
	if len(ba) == 0 || !bytes.Equal(ba, bb) {
		t.Fatalf("zips differ (%d vs %d bytes)", len(ba), len(bb))
	}
	if len(ba) >= len(body) {
		t.Errorf("zip is %d bytes for %d bytes of input: not deflated", len(ba), len(body))
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestEntryIsAnExecutableBootstrap(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, File{Name: "bootstrap", Body: strings.NewReader("payload")}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 {
		t.Fatalf("%d entries", len(zr.File))
	}
	f := zr.File[0]
	if f.Name != "bootstrap" {
		t.Errorf("name %q", f.Name)
	}
	if got := f.Mode(); got != 0o755 {
		t.Errorf("mode %v, want -rwxr-xr-x: Lambda cannot exec bootstrap otherwise", got)
	}
	if f.CreatorVersion>>8 != 3 {
		t.Errorf("creator OS %d, want 3 (Unix) so unzip honours the mode", f.CreatorVersion>>8)
	}
	if !f.Modified.Equal(epoch()) {
		t.Errorf("modified %v, want %v", f.Modified, epoch())
	}
	if f.Method != zip.Deflate {
		t.Errorf("method %d, want deflate", f.Method)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if string(got) != "payload" {
		t.Errorf("content %q", got)
	}
}

func TestKeepsOrderAndModes(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf,
		File{Name: "bootstrap", Body: strings.NewReader("a")},
		File{Name: "conf/settings.json", Mode: 0o644, Body: strings.NewReader("{}")},
	)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 2 || zr.File[0].Name != "bootstrap" || zr.File[1].Name != "conf/settings.json" {
		t.Fatalf("entries %v", zr.File)
	}
	if zr.File[1].Mode() != 0o644 {
		t.Errorf("mode %v", zr.File[1].Mode())
	}
}

func TestRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "../bootstrap", "/bootstrap", "a//b"} {
		if err := Write(io.Discard, File{Name: name, Body: strings.NewReader("")}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

func TestWriteFileMissingInput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.zip")
	if err := WriteFile(out, filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("missing input accepted")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output exists after failure: %v", err)
	}
}
