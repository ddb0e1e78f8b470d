package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/spate-dev/spate/internal/jsonscan"
)

// httpError is a request-level failure with its status and JSON message.
type httpError struct {
	status int
	msg    string
	field  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

type bodyFormat int

const (
	formatJSON bodyFormat = iota
	formatNDJSON
)

// contentFormat checks Content-Type and Content-Encoding.
func contentFormat(r *http.Request) (bodyFormat, bool, *httpError) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return 0, false, errorf(http.StatusUnsupportedMediaType, "Content-Type required: application/json, application/x-ndjson or text/plain")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, false, errorf(http.StatusUnsupportedMediaType, "unparseable Content-Type")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return 0, false, errorf(http.StatusUnsupportedMediaType, "charset must be utf-8")
	}
	var f bodyFormat
	switch mt {
	case "application/json", "text/plain":
		// text/plain is what navigator.sendBeacon sends; the body is JSON.
		f = formatJSON
	case "application/x-ndjson":
		f = formatNDJSON
	default:
		return 0, false, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: use application/json, application/x-ndjson or text/plain", truncate(mt, 64))
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz = true
	default:
		return 0, false, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: use gzip or none", truncate(enc, 32))
	}
	return f, gz, nil
}

var eventsKey = []byte(`"events"`)

// mayEscapeEvents reports whether b holds a \u escape of one of the
// letters of "events" (\u0065, \u0076, \u006e, \u0074, \u0073, hex in
// either case): the only way a key other than the literal "events" can
// decode to it. Bodies that merely escape other characters (ä as \u00e4)
// then skip the batch splitter's walk.
func mayEscapeEvents(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u00`))
		if i < 0 || i+6 > len(b) {
			return false
		}
		switch strings.ToLower(string(b[i+4 : i+6])) {
		case "65", "76", "6e", "74", "73":
			return true
		}
		b = b[i+4:]
	}
}

// trimJSONSpace trims JSON's whitespace: exactly space, tab, CR and LF
// (RFC 8259 §2), not bytes.TrimSpace's Unicode spaces (\f, U+0085, U+00A0),
// which no JSON parser downstream accepts.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// splitEvents returns each event's raw JSON. A JSON body is one event or
// {"events":[…]}; an NDJSON body is one event per non-empty line. Whether a
// single event is well-formed is left to the registry, per event, so a bad
// event never takes its neighbours down: the splitter bounds a batch by its
// bytes (the body limit), never by how deep one element is nested.
func splitEvents(body []byte, f bodyFormat, maxEvents int) ([][]byte, *httpError) {
	if f == formatNDJSON {
		var out [][]byte
		for line := range bytes.SplitSeq(body, []byte{'\n'}) {
			line = trimJSONSpace(line)
			if len(line) == 0 {
				continue
			}
			if len(out) == maxEvents {
				return nil, errorf(http.StatusRequestEntityTooLarge, "more than %d events", maxEvents)
			}
			out = append(out, line)
		}
		if len(out) == 0 {
			return nil, errorf(http.StatusBadRequest, "empty body")
		}
		return out, nil
	}
	trimmed := trimJSONSpace(body)
	if len(trimmed) == 0 {
		return nil, errorf(http.StatusBadRequest, "empty body")
	}
	if trimmed[0] != '{' {
		return nil, errorf(http.StatusBadRequest, `body must be an event object or {"events":[…]}`)
	}
	// Only a body mentioning "events" (possibly with escapes) can be a
	// batch; a single event is handed to the registry without a second
	// parse.
	if !bytes.Contains(trimmed, eventsKey) && !mayEscapeEvents(trimmed) {
		return [][]byte{trimmed}, nil
	}
	events, isBatch, herr := batchEvents(trimmed, maxEvents)
	if herr != nil {
		return nil, herr
	}
	if !isBatch {
		// "events" appeared inside a single event's strings.
		return [][]byte{trimmed}, nil
	}
	if len(events) == 0 {
		return nil, &httpError{status: http.StatusBadRequest, msg: "events is empty", field: "events"}
	}
	return events, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var errTooMany = errors.New("too many events")

// batchEvents walks the top-level object once. It is a batch when its only
// key is "events"; an object with other keys and no "events" is a single
// event; "events" beside other keys is ambiguous and refused, and so is
// "events" twice (the pipeline's duplicate-key rule: a duplicate key is
// rejected, never resolved by first- or last-wins). Keys are compared
// decoded, so "\u0065vents" is "events". Elements are returned raw: each
// event's own syntax is the registry's to judge, so a broken event is
// rejected alone.
func batchEvents(body []byte, maxEvents int) ([][]byte, bool, *httpError) {
	malformed := func(i int) *httpError { return errorf(http.StatusBadRequest, "malformed JSON body at byte %d", i) }
	var events [][]byte
	found, others := false, false
	i := jsonscan.SkipWS(body, 1) // body[0] is '{'
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			if i >= len(body) || body[i] != '"' {
				return nil, false, malformed(i)
			}
			keyStart := i
			end, ok := jsonscan.String(body, i)
			if !ok {
				return nil, false, malformed(end)
			}
			var err error
			isEvents := isEventsKey(body[keyStart:end])
			i = jsonscan.SkipWS(body, end)
			if i >= len(body) || body[i] != ':' {
				return nil, false, malformed(i)
			}
			i = jsonscan.SkipWS(body, i+1)
			if isEvents {
				if found {
					return nil, false, &httpError{status: http.StatusBadRequest, msg: `duplicate key "events"`, field: "events"}
				}
				found = true
				if i, err = elements(body, i, maxEvents, &events); err != nil {
					switch {
					case errors.Is(err, errNotArray):
						return nil, false, &httpError{status: http.StatusBadRequest, msg: "events must be an array of event objects", field: "events"}
					case errors.Is(err, errTooMany):
						return nil, false, errorf(http.StatusRequestEntityTooLarge, "more than %d events", maxEvents)
					}
					return nil, false, malformed(i)
				}
			} else {
				others = true
				if i, err = jsonscan.Extent(body, i); err != nil {
					return nil, false, malformed(i)
				}
			}
			i = jsonscan.SkipWS(body, i)
			if i < len(body) && body[i] == ',' {
				i = jsonscan.SkipWS(body, i+1)
				continue
			}
			if i < len(body) && body[i] == '}' {
				i++
				break
			}
			return nil, false, malformed(i)
		}
	}
	if i = jsonscan.SkipWS(body, i); i != len(body) {
		return nil, false, errorf(http.StatusBadRequest, "malformed JSON body at byte %d: more than one value", i)
	}
	switch {
	case found && others:
		return nil, false, &httpError{status: http.StatusBadRequest, msg: `a batch body holds only "events"`, field: "events"}
	case !found:
		return nil, false, nil
	}
	return events, true, nil
}

// isEventsKey reports whether the quoted key q decodes to "events".
func isEventsKey(q []byte) bool {
	if bytes.Equal(q, eventsKey) {
		return true
	}
	if bytes.IndexByte(q, '\\') < 0 || len(q) > 64 {
		return false
	}
	return string(jsonscan.Key(q[1:len(q)-1])) == "events"
}

var errNotArray = errors.New("not an array")

// elements appends the raw values of the array at body[i] to out, at most
// max of them. Each element's extent is found without a depth limit: the
// body's byte limit already bounds the work.
func elements(body []byte, i, max int, out *[][]byte) (int, error) {
	if i < len(body) && body[i] == 'n' {
		return jsonscan.Extent(body, i) // null: no events
	}
	if i >= len(body) || body[i] != '[' {
		if end, err := jsonscan.Extent(body, i); err != nil {
			return end, err
		}
		return i, errNotArray
	}
	i = jsonscan.SkipWS(body, i+1)
	if i < len(body) && body[i] == ']' {
		return i + 1, nil
	}
	for {
		end, err := jsonscan.Extent(body, i)
		if err != nil {
			return end, err
		}
		if len(*out) == max {
			return i, errTooMany
		}
		*out = append(*out, body[i:end])
		i = jsonscan.SkipWS(body, end)
		if i < len(body) && body[i] == ',' {
			i = jsonscan.SkipWS(body, i+1)
			continue
		}
		if i < len(body) && body[i] == ']' {
			return i + 1, nil
		}
		return i, jsonscan.ErrSyntax
	}
}
