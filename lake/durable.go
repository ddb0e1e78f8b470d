package lake

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Sealed is a finished file still under its temporary name: written,
// footer included, and synced, so that a crash leaves it complete; Publish
// renames it into place.
type Sealed struct {
	Tmp, Final string
	Rows       int64
	bytes      int64
}

// Seal detaches every open file, sets meta in each file's footer
// (key-value metadata), and closes and syncs it under its temporary name.
// Later PutBatch calls open new files. Use with Config.ManualFlush: the
// owner records the Sealed files (and what they cover) durably, then
// Publishes them, so that a crash between the two can be rolled forward.
func (l *Lake) Seal(meta map[string]string) ([]Sealed, error) {
	var out []Sealed
	var errs []error
	for _, tw := range l.tables {
		tw.mu.Lock()
		f := tw.f
		tw.f = nil
		tw.mu.Unlock()
		if f == nil {
			continue
		}
		for k, v := range meta {
			f.w.SetKeyValueMetadata(k, v)
		}
		err := f.w.Close()
		if err == nil {
			err = f.f.Sync()
		}
		if cerr := f.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(f.tmp)
			l.log.Error("lake: file lost", "rows", f.rows, "error", err)
			errs = append(errs, fmt.Errorf("lake seal %s: %w", f.tmp, err))
			continue
		}
		out = append(out, Sealed{Tmp: f.tmp, Final: f.final, Rows: f.rows, bytes: f.bytes})
	}
	return out, errors.Join(errs...)
}

// Buffered returns the bytes of event JSON in open files: the owner of a
// ManualFlush lake seals once it passes Config.FlushBytes.
func (l *Lake) Buffered() int64 {
	var n int64
	for _, tw := range l.tables {
		tw.mu.Lock()
		if tw.f != nil {
			n += tw.f.bytes
		}
		tw.mu.Unlock()
	}
	return n
}

// FlushBytes returns the effective Config.FlushBytes.
func (l *Lake) FlushBytes() int64 { return l.cfg.FlushBytes }

// Publish renames sealed files into place and syncs their directories. A
// file already in place (published before a crash) is left as it is, so
// Publish can be repeated after a restart.
func (l *Lake) Publish(files []Sealed) error {
	dirs := map[string]bool{}
	for _, s := range files {
		if err := os.Rename(s.Tmp, s.Final); err != nil {
			if _, serr := os.Stat(s.Final); !errors.Is(err, fs.ErrNotExist) || serr != nil {
				return fmt.Errorf("lake publish %s: %w", s.Final, err)
			}
			continue
		}
		dirs[filepath.Dir(s.Final)] = true
		if st, err := os.Stat(s.Final); err == nil {
			l.stats.fileBytes.Add(st.Size())
		}
		l.stats.files.Add(1)
		l.stats.bytes.Add(s.bytes)
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("lake publish: %w", err)
		}
	}
	return nil
}

// ReadMetadata returns the footer key-value metadata of the Parquet file
// at path that has the given keys.
func ReadMetadata(path string, keys ...string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("lake metadata %s: %w", path, err)
	}
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := pf.Lookup(k); ok {
			out[k] = v
		}
	}
	return out, nil
}

// RemoveTemp deletes the temporary files (".<name>.tmp") under dir: files
// a crash left half-written, never seen by readers. It returns how many.
func RemoveTemp(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		name := d.Name()
		if d.Type().IsRegular() && strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(path); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("lake remove temporary files: %w", err)
	}
	return n, nil
}

func writeSynced(path string, content []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// abandon closes the open files of a ManualFlush lake without publishing
// them: their records are past no checkpoint of the owner, which writes
// them again after a restart (and RemoveTemp deletes the leftovers).
func (l *Lake) abandon() {
	for _, tw := range l.tables {
		tw.mu.Lock()
		if f := tw.f; f != nil {
			tw.f = nil
			_ = f.f.Close()
		}
		tw.mu.Unlock()
	}
}
