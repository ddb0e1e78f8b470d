package loadgen

import (
	"slices"
	"strconv"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/registry"
)

// clientEvent is an event as a client sends it: no received_at, and
// occurred_at in the client's own offset.
type clientEvent struct {
	*spate.Event
	offset int // minutes east of UTC
}

// encoder writes events as client JSON, field by field from the type's
// registry schema: only the type's columns appear, and a required column
// the generator does not know yet still gets a value of its kind, so a
// schema change cannot make the generated traffic invalid unnoticed.
type encoder struct {
	reg *registry.Registry
}

func (enc encoder) event(dst []byte, e clientEvent) []byte {
	s, ok := enc.reg.Schema(e.Type)
	if !ok {
		panic("loadgen: generated unknown type " + e.Type) // a generator bug
	}
	dst = append(dst, '{')
	first := true
	field := func(name string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = spate.AppendJSONString(dst, name)
		dst = append(dst, ':')
	}
	for _, c := range s.Columns {
		switch c.Name {
		case "received_at":
			continue // set by the server, rejected from clients
		case "occurred_at":
			if e.OccurredAt.IsZero() {
				continue
			}
			field(c.Name)
			at := e.OccurredAt.In(time.FixedZone("", e.offset*60))
			dst = append(dst, '"')
			dst = at.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
			dst = append(dst, '"')
			continue
		}
		v, set := c.Value(e.Event)
		if !set {
			if !c.Required {
				continue
			}
			v = placeholder(c.Field)
		}
		field(c.Name)
		switch v := v.(type) {
		case string:
			dst = spate.AppendJSONString(dst, v)
		case int64:
			dst = strconv.AppendInt(dst, v, 10)
		case bool:
			dst = strconv.AppendBool(dst, v)
		case time.Time:
			dst = append(dst, '"')
			dst = v.UTC().AppendFormat(dst, spate.TimeLayout)
			dst = append(dst, '"')
		case map[string]string:
			dst = append(dst, '{')
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for i, k := range keys {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = spate.AppendJSONString(dst, k)
				dst = append(dst, ':')
				dst = spate.AppendJSONString(dst, v[k])
			}
			dst = append(dst, '}')
		}
	}
	return append(dst, '}')
}

// placeholder is a valid value of f's kind for a required field the
// generator does not fill.
func placeholder(f *registry.Field) any {
	switch f.Kind {
	case registry.Int64:
		return int64(0)
	case registry.Bool:
		return false
	case registry.Timestamp:
		return time.Now()
	case registry.StringMap:
		return map[string]string{"loadgen": "1"}
	}
	if len(f.Enum) > 0 {
		return f.Enum[0]
	}
	return "loadgen"
}
