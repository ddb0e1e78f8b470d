package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// node is one value of a schema document with its object keys in document
// order: columns follow the order a schema lists its properties, which a
// map would lose. Only the loader uses it, never the hot path.
type node struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	obj  []member
	arr  []*node
	str  string
	num  json.Number
	b    bool
}

type member struct {
	key string
	val *node
}

func (n *node) get(key string) *node {
	for _, m := range n.obj {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

// parseDoc reads one JSON document, refusing duplicate keys.
func parseDoc(b []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := parseNode(dec, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return n, nil
}

func parseNode(dec *json.Decoder, ptr string) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			n := &node{kind: 'a'}
			for i := 0; dec.More(); i++ {
				c, err := parseNode(dec, ptr+"/"+strconv.Itoa(i))
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, c)
			}
			_, err := dec.Token()
			return n, err
		}
		n := &node{kind: 'o'}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("malformed JSON: %w", err)
			}
			k := kt.(string)
			if n.get(k) != nil {
				return nil, fmt.Errorf("%s: duplicate key %q", pointer(ptr), k)
			}
			c, err := parseNode(dec, ptr+"/"+escapePointer(k))
			if err != nil {
				return nil, err
			}
			n.obj = append(n.obj, member{k, c})
		}
		_, err := dec.Token()
		return n, err
	case string:
		return &node{kind: 's', str: t}, nil
	case json.Number:
		return &node{kind: 'n', num: t}, nil
	case bool:
		return &node{kind: 'b', b: t}, nil
	default:
		return &node{kind: 'z'}, nil
	}
}

// escapePointer escapes a key for a JSON pointer (RFC 6901).
func escapePointer(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

func pointer(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
