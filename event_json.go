package spate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// UnmarshalJSON decodes an event's JSON: envelope fields by name, every
// other field into Props in document order (strings, integers, booleans;
// null is absent). A duplicate key, at the top level or in attrs, is an
// error: the pipeline never guesses which of two values was meant. It is
// the general path for readers of the stream; ingest validates with the
// registry instead.
func (e *Event) UnmarshalJSON(b []byte) error {
	*e = Event{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("event: not a JSON object: %w", ErrInvalid)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("event: %w (%w)", err, ErrInvalid)
		}
		key, _ := tok.(string)
		if seen[key] {
			return &FieldError{Field: key, Rule: "duplicate key"}
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("event: %w (%w)", err, ErrInvalid)
		}
		if err := e.setJSON(key, raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("event: %w (%w)", err, ErrInvalid)
	}
	return nil
}

func (e *Event) setJSON(key string, raw json.RawMessage) error {
	var dst *string
	switch key {
	case "type":
		dst = &e.Type
	case "event_id":
		dst = &e.EventID
	case "user_id":
		dst = &e.UserID
	case "anonymous_id":
		dst = &e.AnonymousID
	case "session_id":
		dst = &e.SessionID
	case "platform":
		dst = &e.Platform
	case "app_version":
		dst = &e.AppVersion
	case "occurred_at", "received_at":
		t := &e.OccurredAt
		if key == "received_at" {
			t = &e.ReceivedAt
		}
		if string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, t); err != nil {
			return &FieldError{Field: key, Rule: "must be an RFC 3339 timestamp"}
		}
		*t = t.UTC()
		return nil
	case "attrs":
		return e.setAttrs(raw)
	}
	if dst != nil {
		if string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return &FieldError{Field: key, Rule: "must be a string"}
		}
		return nil
	}
	switch c := raw[0]; {
	case c == 'n':
		return nil
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return &FieldError{Field: key, Rule: "must be a string"}
		}
		e.Props = append(e.Props, Str(key, s))
	case c == 't' || c == 'f':
		e.Props = append(e.Props, Bool(key, c == 't'))
	case c == '-' || (c >= '0' && c <= '9'):
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return &FieldError{Field: key, Rule: "must be an integer in the int64 range"}
		}
		e.Props = append(e.Props, Int(key, n))
	default:
		return &FieldError{Field: key, Rule: "must be a string, integer or boolean"}
	}
	return nil
}

func (e *Event) setAttrs(raw json.RawMessage) error {
	if string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return &FieldError{Field: "attrs", Rule: "must be an object of strings"}
	}
	m := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("event: attrs: %w (%w)", err, ErrInvalid)
		}
		k, _ := tok.(string)
		if _, dup := m[k]; dup {
			return &FieldError{Field: "attrs", Rule: "duplicate key"}
		}
		var v *string
		if err := dec.Decode(&v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return &FieldError{Field: "attrs", Rule: "must be an object of strings"}
			}
			return fmt.Errorf("event: attrs: %w (%w)", err, ErrInvalid)
		}
		if v == nil {
			m[k] = ""
		} else {
			m[k] = *v
		}
	}
	e.Attrs = m
	return nil
}
