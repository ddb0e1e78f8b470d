package registry

import (
	"time"

	"github.com/spate-dev/spate"
)

// envelope lists the fields every type has, in column order.
var envelope = []string{"type", "event_id", "occurred_at", "received_at", "user_id", "anonymous_id", "session_id", "platform", "app_version", "attrs"}

var envelopeRequired = []string{"type", "platform"}

// Platforms a client may report.
var Platforms = []string{"web", "ios", "android", "tv", "other"}

type typeDef struct {
	name, doc          string
	required, optional []string
}

func typeDefs() []typeDef {
	return []typeDef{
		{"page_view", "A page or view of an app was shown.", []string{"page"}, []string{"referrer"}},
		{"impression", "A content card with a thumbnail variant was shown.", []string{"content_id", "image_variant"}, []string{"list_id", "position"}},
		{"click", "A content card was clicked or tapped.", []string{"content_id"}, []string{"image_variant", "list_id", "position"}},
		{"play_start", "Playback started.", []string{"content_id"}, []string{"image_variant", "position_ms", "live"}},
		{"play_progress", "Playback heartbeat.", []string{"content_id", "position_ms"}, []string{"duration_ms"}},
		{"play_end", "Playback ended.", []string{"content_id", "position_ms"}, []string{"reason"}},
	}
}

// fieldDefs is every field, in canonical order: the envelope first.
func fieldDefs() []Field {
	return []Field{
		{Name: "type", Kind: String, Doc: "Event type; selects the schema.", MaxLen: 32, LowCardinality: true, str: func(e *spate.Event) string { return e.Type }},
		{Name: "event_id", Kind: String, Doc: "Client-generated UUID for deduplication; the server assigns a UUIDv7 when missing.", MaxLen: 36, str: func(e *spate.Event) string { return e.EventID }},
		{Name: "occurred_at", Kind: Timestamp, Doc: "When it happened on the client (RFC 3339 with offset); defaults to receipt time; at most 24 h in the future, 30 days in the past.", time: func(e *spate.Event) time.Time { return e.OccurredAt }},
		{Name: "received_at", Kind: Timestamp, Doc: "Set by the server: when ingest received it (UTC, ms). Not accepted from clients.", time: func(e *spate.Event) time.Time { return e.ReceivedAt }},
		{Name: "user_id", Kind: String, Doc: "Signed-in user. user_id or anonymous_id is required.", MaxLen: 128, str: func(e *spate.Event) string { return e.UserID }},
		{Name: "anonymous_id", Kind: String, Doc: "Device or browser identifier for users not signed in.", MaxLen: 128, str: func(e *spate.Event) string { return e.AnonymousID }},
		{Name: "session_id", Kind: String, Doc: "Viewing session; the partition key when present, so a session's events stay in order.", MaxLen: 128, str: func(e *spate.Event) string { return e.SessionID }},
		{Name: "platform", Kind: String, Doc: "Client platform.", Enum: Platforms, LowCardinality: true, str: func(e *spate.Event) string { return e.Platform }},
		{Name: "app_version", Kind: String, Doc: "Client application version.", MaxLen: 64, LowCardinality: true, str: func(e *spate.Event) string { return e.AppVersion }},
		{Name: "attrs", Kind: StringMap, Doc: "Free-form string attributes, at most 20 keys; keys and values at most 256 bytes.", MaxLen: 256, smap: func(e *spate.Event) map[string]string { return e.Attrs }},
		{Name: "page", Kind: String, Doc: "Page path or app view name.", MaxLen: 2048, str: func(e *spate.Event) string { return e.Page }},
		{Name: "referrer", Kind: String, Doc: "Referring page.", MaxLen: 2048, str: func(e *spate.Event) string { return e.Referrer }},
		{Name: "content_id", Kind: String, Doc: "Programme, episode or clip identifier.", MaxLen: 128, str: func(e *spate.Event) string { return e.ContentID }},
		{Name: "image_variant", Kind: String, Doc: "Thumbnail variant shown; what the reward models learn over.", MaxLen: 64, LowCardinality: true, str: func(e *spate.Event) string { return e.ImageVariant }},
		{Name: "list_id", Kind: String, Doc: "Recommendation list or shelf the content was in.", MaxLen: 128, LowCardinality: true, str: func(e *spate.Event) string { return e.ListID }},
		{Name: "position", Kind: Int64, Doc: "Zero-based position in the list.", i64: func(e *spate.Event) *int64 { return e.Position }},
		{Name: "position_ms", Kind: Int64, Doc: "Playback position in milliseconds.", i64: func(e *spate.Event) *int64 { return e.PositionMs }},
		{Name: "duration_ms", Kind: Int64, Doc: "Content duration in milliseconds.", i64: func(e *spate.Event) *int64 { return e.DurationMs }},
		{Name: "live", Kind: Bool, Doc: "Whether playback is of a live broadcast.", bool: func(e *spate.Event) *bool { return e.Live }},
		{Name: "reason", Kind: String, Doc: "Why playback ended (e.g. completed, stopped, error).", MaxLen: 64, LowCardinality: true, str: func(e *spate.Event) string { return e.Reason }},
	}
}
