package jsonscan

// Extent returns the index just past the JSON value starting at b[i], or an
// error with the index of the offending byte. Unlike Skip it has no depth
// limit: it keeps one bit per open container instead of recursing, so its
// cost is bounded by the length of b alone (a 1 MiB value nested a million
// levels deep needs 128 KiB of stack bits). The ingest batch splitter uses
// it to find where each element of a batch ends, so that how deep one
// element is nested is that element's problem, judged by the event parser,
// and never its neighbours'.
func Extent(b []byte, i int) (int, error) {
	var open []uint64 // bit d set: container at depth d is an object
	depth := 0
	push := func(object bool) {
		if depth/64 == len(open) {
			open = append(open, 0)
		}
		if object {
			open[depth/64] |= 1 << (depth % 64)
		} else {
			open[depth/64] &^= 1 << (depth % 64)
		}
		depth++
	}
	isObject := func() bool { return open[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }
	// key reads `"name" :` and returns the index of the value after it.
	key := func(i int) (int, bool) {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		i, ok := String(b, i)
		if !ok {
			return i, false
		}
		i = SkipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		return SkipWS(b, i+1), true
	}
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return i, ErrSyntax
		}
		var ok bool
		switch c := b[i]; {
		case c == '{':
			i = SkipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			push(true)
			if i, ok = key(i); !ok {
				return i, ErrSyntax
			}
			continue
		case c == '[':
			i = SkipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			push(false)
			continue
		case c == '"':
			if i, ok = String(b, i); !ok {
				return i, ErrSyntax
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i, _, ok = Number(b, i); !ok {
				return i, ErrSyntax
			}
		case c == 't':
			if i, ok = word(b, i, "true"); !ok {
				return i, ErrSyntax
			}
		case c == 'f':
			if i, ok = word(b, i, "false"); !ok {
				return i, ErrSyntax
			}
		case c == 'n':
			if i, ok = word(b, i, "null"); !ok {
				return i, ErrSyntax
			}
		default:
			return i, ErrSyntax
		}
		// A value ended at b[i]: close the containers it completes, then
		// move to the next value of the innermost open one.
		for next := false; !next; {
			if depth == 0 {
				return i, nil
			}
			i = SkipWS(b, i)
			switch {
			case i >= len(b):
				return i, ErrSyntax
			case b[i] == ',':
				i = SkipWS(b, i+1)
				if isObject() {
					if i, ok = key(i); !ok {
						return i, ErrSyntax
					}
				}
				next = true
			case b[i] == '}' && isObject(), b[i] == ']' && !isObject():
				i++
				depth--
			default:
				return i, ErrSyntax
			}
		}
	}
}
