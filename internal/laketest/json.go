package laketest

import (
	"encoding/json"
)

// canonJSON re-encodes a JSON object with sorted keys; other input is
// returned as is.
func canonJSON(b []byte) []byte {
	var v map[string]any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}
