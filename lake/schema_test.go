package lake_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/spate-dev/spate/lake"
	"github.com/spate-dev/spate/registry"
)

// TestSchemaMatchesGlueColumns: the local lake's files have the columns,
// in order, that terraform gives Firehose's Glue tables, with the Parquet
// type Firehose writes for each Glue type.
func TestSchemaMatchesGlueColumns(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "terraform", "glue_columns.json"))
	if err != nil {
		t.Fatal(err)
	}
	var glue map[string][]struct{ Name, Type string }
	if err := json.Unmarshal(b, &glue); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Limits{})
	if len(glue) != len(reg.Types()) {
		t.Fatalf("glue tables %d, registry types %d", len(glue), len(reg.Types()))
	}
	for _, typ := range reg.Types() {
		s, _ := reg.Schema(typ)
		fields := lake.Schema(s).Fields()
		cols := glue[typ]
		if len(fields) != len(cols) {
			t.Fatalf("%s: %d Parquet columns, %d Glue columns", typ, len(fields), len(cols))
		}
		for i, f := range fields {
			if f.Name() != cols[i].Name || !f.Optional() {
				t.Errorf("%s column %d: %s (optional %v), Glue %s", typ, i, f.Name(), f.Optional(), cols[i].Name)
			}
			if got := glueType(f); got != cols[i].Type {
				t.Errorf("%s.%s: Parquet reads as %s, Glue says %s", typ, f.Name(), got, cols[i].Type)
			}
		}
	}
}

// glueType is the Glue type a reader maps a Parquet field to.
func glueType(f parquet.Field) string {
	var logical format.LogicalTypeValue
	if lt := f.Type().LogicalType(); lt != nil {
		logical = lt.Value
	}
	isString := func(n parquet.Field) bool {
		lt := n.Type().LogicalType()
		_, ok := lt.Value.(*format.StringType)
		return lt != nil && ok && n.Type().Kind() == parquet.ByteArray
	}
	switch v := logical.(type) {
	case *format.MapType:
		kv := f.Fields()[0]
		if kv.Repeated() && isString(kv.Fields()[0]) && isString(kv.Fields()[1]) {
			return "map<string,string>"
		}
	case *format.StringType:
		if isString(f) {
			return "string"
		}
	case *format.TimestampType:
		if _, ms := v.Unit.Value.(*format.MilliSeconds); ms && v.IsAdjustedToUTC && f.Type().Kind() == parquet.Int64 {
			return "timestamp"
		}
	case *format.IntType:
		if v.BitWidth == 64 && v.IsSigned && f.Type().Kind() == parquet.Int64 {
			return "bigint"
		}
	case nil:
		switch f.Type().Kind() {
		case parquet.Int64:
			return "bigint"
		case parquet.Boolean:
			return "boolean"
		}
	}
	return "unexpected " + f.Type().String()
}
