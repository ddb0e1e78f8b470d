package registry

import (
	"fmt"
	"slices"
)

// successor checks that ds[i] may follow ds[i-1] (ds sorted by version,
// one type). The rules, documented in docs/events.md:
//
//   - A type's first version is 1-0-0; a new MODEL starts at M-0-0.
//   - Versions are contiguous: each is the one before with ADDITION + 1,
//     REVISION + 1 (ADDITION 0), or MODEL + 1 (REVISION and ADDITION 0).
//   - ADDITION: every event valid before is valid after. Only new optional
//     properties; nothing removed, no type or format changed, nothing newly
//     required, no limit narrowed (maxLength, minimum, maximum,
//     maxProperties, enum).
//   - REVISION: the same lake table, so every property stays with the same
//     type; rules (limits, enum, required) may change either way.
//   - MODEL: anything; it is a new table (<type>_v<MODEL>).
func successor(ds []*doc, i int) error {
	cur := ds[i]
	if i == 0 {
		if cur.version != (Version{1, 0, 0}) {
			return cur.errf("", "the first version of a type is 1-0-0")
		}
		return nil
	}
	prev := ds[i-1]
	pv, v := prev.version, cur.version
	switch {
	case v == Version{pv.Model, pv.Revision, pv.Addition + 1}:
		return addition(prev.schema, cur.schema, cur)
	case v == Version{pv.Model, pv.Revision + 1, 0}:
		return revision(prev.schema, cur.schema, cur)
	case v == Version{pv.Model + 1, 0, 0}:
		return nil
	}
	return cur.errf("", "version %s does not follow %s (bump exactly one of MODEL, REVISION, ADDITION by one)", v, pv)
}

func revision(old, cur *Schema, d *doc) error {
	for _, oc := range old.Columns {
		nc, ok := cur.Column(oc.Name)
		if !ok {
			return d.errf("/properties", "REVISION %s removes %q (a property removed is a new MODEL)", cur.Version, oc.Name)
		}
		if nc.Kind != oc.Kind {
			return d.errf("/properties/"+oc.Name, "REVISION %s changes the type of %q (a type changed is a new MODEL)", cur.Version, oc.Name)
		}
	}
	return nil
}

func addition(old, cur *Schema, d *doc) error {
	if err := revision(old, cur, d); err != nil {
		return err
	}
	for _, nc := range cur.Columns {
		ptr := "/properties/" + nc.Name
		oc, existed := old.Column(nc.Name)
		if !existed {
			if nc.Required {
				return d.errf("/required", "ADDITION %s adds %q as required (only new optional properties: make it a REVISION or a new MODEL)", cur.Version, nc.Name)
			}
			continue
		}
		if nc.Required && !oc.Required {
			return d.errf("/required", "ADDITION %s makes %q required (a REVISION at least)", cur.Version, nc.Name)
		}
		if why := narrower(oc.Field, nc.Field); why != "" {
			return d.errf(ptr, "ADDITION %s narrows %q: %s (a REVISION at least)", cur.Version, nc.Name, why)
		}
	}
	return nil
}

// narrower says how n accepts less than o, or "".
func narrower(o, n *Field) string {
	switch {
	case n.Format != o.Format:
		return fmt.Sprintf("format %q → %q", o.Format, n.Format)
	case o.MaxLen == 0 && n.MaxLen > 0, n.MaxLen > 0 && n.MaxLen < o.MaxLen:
		return fmt.Sprintf("maxLength %d → %d", o.MaxLen, n.MaxLen)
	case n.HasMin && (!o.HasMin || n.Min > o.Min):
		return fmt.Sprintf("minimum raised to %d", n.Min)
	case n.HasMax && (!o.HasMax || n.Max < o.Max):
		return fmt.Sprintf("maximum lowered to %d", n.Max)
	case n.MaxKeys > 0 && (o.MaxKeys == 0 || n.MaxKeys < o.MaxKeys):
		return fmt.Sprintf("maxProperties %d → %d", o.MaxKeys, n.MaxKeys)
	case len(n.Enum) > 0 && len(o.Enum) == 0:
		return "enum added"
	}
	for _, v := range o.Enum {
		if len(n.Enum) > 0 && !slices.Contains(n.Enum, v) {
			return fmt.Sprintf("enum value %q removed", v)
		}
	}
	return ""
}
