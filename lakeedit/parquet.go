package lakeedit

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
)

// bufferSized is implemented by stores that read best in large pieces
// (S3: one ranged GET per read).
type bufferSized interface{ ReadBufferSize() int }

// openParquet opens o as a Parquet file; the caller closes the File.
func openParquet(ctx context.Context, st Store, o Object) (*parquet.File, File, error) {
	f, err := st.Open(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	opts := []parquet.FileOption{parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true)}
	if b, ok := st.(bufferSized); ok {
		opts = append(opts, parquet.ReadBufferSize(b.ReadBufferSize()), parquet.OptimisticRead(true))
	}
	pf, err := parquet.OpenFile(f, f.Size(), opts...)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("parquet %s: %w", o.Key, err)
	}
	return pf, f, nil
}

// leafIndex is the leaf column index of the top-level column name, or -1.
func leafIndex(s *parquet.Schema, name string) int {
	leaf, ok := s.Lookup(name)
	if !ok || leaf.Node == nil || !leaf.Node.Leaf() {
		return -1
	}
	return leaf.ColumnIndex
}

// scanColumn calls fn with the row number (within the row group) and value
// of every row's value in column col of rg, nulls included.
func scanColumn(rg parquet.RowGroup, col int, fn func(row int, v parquet.Value)) error {
	pages := rg.ColumnChunks()[col].Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 512)
	row := -1
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		vals := p.Values()
		for {
			n, err := vals.ReadValues(buf)
			for _, v := range buf[:n] {
				if v.RepetitionLevel() == 0 {
					row++
				}
				fn(row, v)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
}

// bitset marks rows of a row group.
type bitset []uint64

func (b bitset) set(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func newBitset(n int64) bitset  { return make(bitset, (n+63)/64) }

// writerFor returns a writer to w that writes files like src: its schema
// with each column's encoding and compression (parquet-go derives them from
// the column chunks' metadata), its key/value metadata, v1 data pages (what
// both Firehose and the local lake write) and row groups of at most
// maxRows rows.
func writerFor(w io.Writer, schema *parquet.Schema, kv []kvPair, maxRows int64) *parquet.Writer {
	opts := []parquet.WriterOption{
		schema,
		parquet.DataPageVersion(1),
		parquet.CreatedBy("spate", "1", ""),
	}
	if maxRows > 0 {
		opts = append(opts, parquet.MaxRowsPerRowGroup(maxRows))
	}
	for _, p := range kv {
		opts = append(opts, parquet.KeyValueMetadata(p.k, p.v))
	}
	return parquet.NewWriter(w, opts...)
}

type kvPair struct{ k, v string }

func fileKV(pf *parquet.File) []kvPair {
	var out []kvPair
	for _, kv := range pf.Metadata().KeyValueMetadata {
		out = append(out, kvPair{kv.Key, kv.Value})
	}
	return out
}

func maxRowGroupRows(pf *parquet.File) int64 {
	var m int64
	for _, rg := range pf.RowGroups() {
		m = max(m, rg.NumRows())
	}
	return m
}

// copyRows writes the rows of rg that keep accepts (given the row's number
// in rg and its values) to w and reports how many it wrote.
func copyRows(w *parquet.Writer, rg parquet.RowGroup, keep func(row int, r parquet.Row) bool) (int64, error) {
	rows := rg.Rows()
	defer rows.Close()
	buf := make([]parquet.Row, 256)
	var out []parquet.Row
	var written int64
	row := 0
	for {
		n, err := rows.ReadRows(buf)
		out = out[:0]
		for _, r := range buf[:n] {
			if keep(row, r) {
				out = append(out, r)
			}
			row++
		}
		if len(out) > 0 {
			m, werr := w.WriteRows(out)
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return written, nil
		}
		if err != nil {
			return written, err
		}
	}
}

// fileSchema is pf's schema as it must be written again. parquet-go reads
// a column with a logical type but no legacy converted type (INT(64) as the
// lake writes it) as a type that writes both; the columns keep exactly the
// annotations they had here.
func fileSchema(pf *parquet.File) *parquet.Schema {
	elems := pf.Metadata().Schema
	i := 0
	var walk func(c *parquet.Column) parquet.Field
	walk = func(c *parquet.Column) parquet.Field {
		e := elems[i]
		i++
		f := &field{Field: c, typ: c.Type()}
		if !e.ConvertedType.Valid && c.Type().ConvertedType() != nil {
			f.typ = noConverted{c.Type()}
		}
		for _, child := range c.Columns() {
			f.fields = append(f.fields, walk(child))
		}
		return f
	}
	root := walk(pf.Root())
	return parquet.NewSchema(pf.Schema().Name(), root)
}

// field is a file column with its type (and its children) replaced.
type field struct {
	parquet.Field
	typ    parquet.Type
	fields []parquet.Field
}

func (f *field) Type() parquet.Type      { return f.typ }
func (f *field) Fields() []parquet.Field { return f.fields }

// noConverted is a type without its legacy converted type.
type noConverted struct{ parquet.Type }

func (noConverted) ConvertedType() *deprecated.ConvertedType { return nil }
