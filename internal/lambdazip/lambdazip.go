// Package lambdazip writes Lambda deployment packages byte for byte
// reproducibly: the same binaries give the same zip, and so the same
// source_code_hash in terraform, whoever builds them and whenever. The zip
// CLI records the build machine's clock, time zone and umask; here every
// entry has a fixed time and mode, and entries keep the order given.
package lambdazip

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// epoch is the modification time of every entry: the earliest time a zip
// (MS-DOS) timestamp can hold, so no reader shows a misleading date.
func epoch() time.Time { return time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC) }

// File is one entry of a package.
type File struct {
	Name string      // path inside the zip, e.g. "bootstrap"
	Mode fs.FileMode // permission bits; 0 means 0o755, what the provided.al2023 runtime needs to exec bootstrap
	Body io.Reader
}

// Write writes files as a zip to w, deflated, with fixed times and modes.
func Write(w io.Writer, files ...File) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		if f.Name == "" || !fs.ValidPath(f.Name) {
			return fmt.Errorf("lambdazip: invalid entry name %q", f.Name)
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o755
		}
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: epoch()}
		h.SetMode(mode) // also marks the entry as made on Unix, so the mode is honoured
		ew, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("lambdazip: add %s: %w", f.Name, err)
		}
		if _, err := io.Copy(ew, f.Body); err != nil {
			return fmt.Errorf("lambdazip: write %s: %w", f.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("lambdazip: close: %w", err)
	}
	return nil
}

// WriteFile packages the files at paths, each under its base name, into the
// zip at out. The zip appears atomically: a reader (or terraform's
// filebase64sha256) never sees a partial file.
func WriteFile(out string, paths ...string) (err error) {
	var files []File
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("lambdazip: %w", err)
		}
		defer f.Close()
		files = append(files, File{Name: filepath.Base(p), Body: f})
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".lambdazip-*")
	if err != nil {
		return fmt.Errorf("lambdazip: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := Write(tmp, files...); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("lambdazip: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("lambdazip: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("lambdazip: %w", err)
	}
	return nil
}
