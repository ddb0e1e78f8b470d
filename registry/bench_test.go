package registry_test

import (
	"testing"

	"github.com/spate-dev/spate/registry"
)

// BenchmarkDecode is the ingest hot path's validation alone: one
// impression as players send it, parsed, validated and normalised.
func BenchmarkDecode(b *testing.B) {
	reg := registry.New(registry.Limits{})
	raw := []byte(`{"type":"impression","event_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","occurred_at":"2026-11-27T11:59:58.120+02:00","user_id":"u-1234567","session_id":"0190a3c4-1111-7000-8000-000000000001","platform":"web","app_version":"2026.6.0","content_id":"1-52345","image_variant":"hero_b","list_id":"front-page/recommended","position":7,"attrs":{"experiment":"thumbs-v2"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := reg.Decode(raw, now); err != nil {
			b.Fatal(err)
		}
	}
}
