// Package lakeedit maintains spate's Parquet lake in place: Forget erases
// people (GDPR art. 17) from every file, Compact merges a partition's small
// files and drops duplicate event_ids that at-least-once delivery leaves.
// Both read through a Store — a local directory (Dir) or S3 (package s3) —
// and rewrite a file only when it must, with the same schema, encodings,
// compression and row groups, written in full before it replaces the old
// one, so a reader (Athena, DuckDB, Glue) sees the old file or the new one.
package lakeedit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Object is one stored file of the lake.
type Object struct {
	// Key is the object's slash-separated path below the lake's root, e.g.
	// click/dt=2026-03-01/hour=10/click-….parquet.
	Key  string
	Size int64
	// Version identifies this version of the object where the store keeps
	// versions (an S3 version id); empty otherwise.
	Version string
	// Noncurrent marks an older version kept by a versioned store.
	Noncurrent bool
}

// Store is where the lake's files live. Writes are atomic per object:
// readers see the old content or the new, never a partial file.
type Store interface {
	// Walk calls fn for the objects whose keys start with prefix, in key
	// order, and for a versioned store their noncurrent versions too
	// (next to the current one of the same key, in any order). Objects
	// written during the walk in a part already walked are not visited.
	Walk(ctx context.Context, prefix string, fn func(Object) error) error
	// Open opens exactly the version o names for random access.
	Open(ctx context.Context, o Object) (File, error)
	// Create starts writing key; nothing is visible until Commit.
	Create(ctx context.Context, key string) (Upload, error)
	// Delete removes o: in a versioned store exactly the version o names,
	// for good (no delete marker), so deleting the current version of a
	// key with older versions makes the newest of those current; callers
	// delete those too.
	Delete(ctx context.Context, o Object) error
}

// File is an opened object.
type File interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Upload is an object being written.
type Upload interface {
	io.Writer
	// Commit makes the object visible whole, replacing any object of the
	// same key, and returns what now stands there.
	Commit(ctx context.Context) (Object, error)
	// Abort discards the upload; after Commit it does nothing.
	Abort()
}

// Dir is a Store over a local directory, the lake `spate local` writes.
// Hidden files (a leading dot: files being written) are never listed.
type Dir struct {
	root string
}

var _ Store = (*Dir)(nil)

// NewDir returns the Store rooted at dir, which must exist.
func NewDir(dir string) (*Dir, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("lake dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("lake dir %s: not a directory", dir)
	}
	return &Dir{root: dir}, nil
}

// Walk visits the files under prefix in key order.
func (d *Dir) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	// Start at the deepest directory the prefix names ("a/b/" and "a/b/c"
	// both name a/b), then filter by the prefix.
	start := d.root
	if dir := path.Dir(prefix); prefix != "" && dir != "." {
		start = filepath.Join(d.root, filepath.FromSlash(dir))
	}
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") && p != start {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // replaced or removed since the directory was read
			}
			return err
		}
		return fn(Object{Key: key, Size: info.Size()})
	})
	if err != nil {
		return fmt.Errorf("lake dir walk %s: %w", prefix, err)
	}
	return nil
}

func (d *Dir) path(key string) (string, error) {
	if !fs.ValidPath(key) {
		return "", fmt.Errorf("lake dir: invalid key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

type dirFile struct {
	*os.File
	size int64
}

func (f dirFile) Size() int64 { return f.size }

// Open opens o's file.
func (d *Dir) Open(ctx context.Context, o Object) (File, error) {
	p, err := d.path(o.Key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("lake dir open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lake dir open: %w", err)
	}
	return dirFile{f, st.Size()}, nil
}

type dirUpload struct {
	*os.File
	tmp, final, key string
	done            bool
}

// Create writes key under a hidden name in its final directory; Commit
// syncs it and renames it into place, which POSIX makes atomic.
func (d *Dir) Create(ctx context.Context, key string) (Upload, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("lake dir create: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("lake dir create: %w", err)
	}
	return &dirUpload{File: f, tmp: f.Name(), final: p, key: key}, nil
}

func (u *dirUpload) Commit(ctx context.Context) (Object, error) {
	if u.done {
		return Object{}, errors.New("lake dir: upload already finished")
	}
	u.done = true
	err := u.File.Chmod(0o644)
	if err == nil {
		err = u.File.Sync()
	}
	if cerr := u.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(u.tmp, u.final)
	}
	if err != nil {
		_ = os.Remove(u.tmp)
		return Object{}, fmt.Errorf("lake dir commit %s: %w", u.key, err)
	}
	// The rename is durable once the directory is synced.
	if dir, err := os.Open(filepath.Dir(u.final)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	st, err := os.Stat(u.final)
	if err != nil {
		return Object{}, fmt.Errorf("lake dir commit %s: %w", u.key, err)
	}
	return Object{Key: u.key, Size: st.Size()}, nil
}

func (u *dirUpload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.File.Close()
	_ = os.Remove(u.tmp)
}

// Delete removes o's file.
func (d *Dir) Delete(ctx context.Context, o Object) error {
	p, err := d.path(o.Key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lake dir delete: %w", err)
	}
	return nil
}
