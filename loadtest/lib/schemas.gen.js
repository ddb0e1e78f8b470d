// Generated from schemas/ by `go test ./loadgen -update`. Do not edit.
// The event types, their load weights (x-spate-load-weight) and own fields.

export const PLATFORMS = ["web","ios","android","tv","other"];

export const TYPES = [
  {
    "name": "page_view",
    "weight": 12,
    "fields": [
      {
        "name": "page",
        "kind": "string",
        "required": true,
        "maxLength": 2048
      },
      {
        "name": "referrer",
        "kind": "string",
        "maxLength": 2048
      }
    ]
  },
  {
    "name": "impression",
    "weight": 20,
    "fields": [
      {
        "name": "content_id",
        "kind": "string",
        "required": true,
        "maxLength": 128
      },
      {
        "name": "image_variant",
        "kind": "string",
        "required": true,
        "maxLength": 64
      },
      {
        "name": "list_id",
        "kind": "string",
        "maxLength": 128
      },
      {
        "name": "position",
        "kind": "integer",
        "minimum": 0
      }
    ]
  },
  {
    "name": "click",
    "weight": 8,
    "fields": [
      {
        "name": "content_id",
        "kind": "string",
        "required": true,
        "maxLength": 128
      },
      {
        "name": "image_variant",
        "kind": "string",
        "maxLength": 64
      },
      {
        "name": "list_id",
        "kind": "string",
        "maxLength": 128
      },
      {
        "name": "position",
        "kind": "integer",
        "minimum": 0
      }
    ]
  },
  {
    "name": "play_start",
    "weight": 6,
    "fields": [
      {
        "name": "content_id",
        "kind": "string",
        "required": true,
        "maxLength": 128
      },
      {
        "name": "image_variant",
        "kind": "string",
        "maxLength": 64
      },
      {
        "name": "position_ms",
        "kind": "integer",
        "minimum": 0
      },
      {
        "name": "live",
        "kind": "boolean"
      }
    ]
  },
  {
    "name": "play_progress",
    "weight": 45,
    "fields": [
      {
        "name": "content_id",
        "kind": "string",
        "required": true,
        "maxLength": 128
      },
      {
        "name": "position_ms",
        "kind": "integer",
        "required": true,
        "minimum": 0
      },
      {
        "name": "duration_ms",
        "kind": "integer",
        "minimum": 0
      }
    ]
  },
  {
    "name": "play_end",
    "weight": 4,
    "fields": [
      {
        "name": "content_id",
        "kind": "string",
        "required": true,
        "maxLength": 128
      },
      {
        "name": "position_ms",
        "kind": "integer",
        "required": true,
        "minimum": 0
      },
      {
        "name": "reason",
        "kind": "string",
        "maxLength": 64
      }
    ]
  }
];
