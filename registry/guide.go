package registry

// schemaGuide is the hand-written part of docs/events.md: how the schema
// files work. It lives here so the generated file has one source.
const schemaGuide = `
## Schema files

Event types are data: ` + "`schemas/<name>/<MODEL>-<REVISION>-<ADDITION>.json`" + `, one JSON Schema
(draft 2020-12) document per [SchemaVer](https://docs.snowplow.io/docs/api-reference/iglu/common-architecture/schemaver/)
version. The defaults in ` + "`schemas/`" + ` are embedded in the binary; ` + "`spate local --schemas DIR`" + `,
` + "`spate schema check --schemas DIR`" + `, ` + "`spate recover --schemas DIR`" + ` and ` + "`SPATE_SCHEMAS=DIR`" + ` (ingest, and
each Lambda) replace them with a directory. A deployment ships its own by copying the directory into the
container image (` + "`COPY schemas /schemas`" + `, ` + "`SPATE_SCHEMAS=/schemas`" + `) and into each Lambda zip (` + "`SPATE_SCHEMAS=/var/task/schemas`" + `); every
component must read the same files, so they ship with the release, never fetched at run time.

- ` + "`envelope/1-0-0.json`" + ` holds the fields every event has. It is what spate's own code reads
  (identity, partition key, time), so its fields are fixed in Go; a type schema refers to it with
  ` + "`\"$ref\"`" + ` to its ` + "`$id`" + `.
- A type schema has ` + "`\"$schema\": \"https://json-schema.org/draft/2020-12/schema\"`" + `, an ` + "`$id`" + ` ending in
  ` + "`/<name>/<version>.json`" + `, ` + "`\"$ref\"`" + ` to the envelope, ` + "`\"type\": \"object\"`" + `, ` + "`properties`" + ` (its ` + "`type`" + ` property is
  ` + "`{\"const\": \"<name>\"}`" + `), ` + "`required`" + ` and ` + "`\"unevaluatedProperties\": false`" + `. Its columns are the envelope's, then its
  own properties in the order the file lists them.
- Clients send ` + "`type`" + ` and are validated against the newest version of that type.

**Supported subset.** Anything else is refused when the schemas load, naming the file, the JSON pointer
and the keyword; nothing is silently ignored.

| keyword | where |
|---|---|
| ` + "`type`" + ` | ` + "`string`" + `, ` + "`integer`" + `, ` + "`boolean`" + `, or ` + "`object`" + ` for an object of strings (the envelope's ` + "`attrs`" + `) |
| ` + "`format`" + ` | ` + "`date-time`" + ` (RFC 3339; envelope only) and ` + "`uuid`" + `, asserted |
| ` + "`enum`" + `, ` + "`maxLength`" + ` | strings (` + "`maxLength`" + ` counts characters) |
| ` + "`const`" + ` | a type's ` + "`type`" + ` property |
| ` + "`minimum`" + `, ` + "`maximum`" + ` | integers (always also within int64) |
| ` + "`maxProperties`" + `, ` + "`propertyNames`" + ` (` + "`minLength`" + ` 1, ` + "`maxLength`" + `), ` + "`additionalProperties`" + ` (` + "`type: string`" + `, same ` + "`maxLength`" + `) | objects of strings |
| ` + "`required`" + `, ` + "`properties`" + `, ` + "`unevaluatedProperties: false`" + `, ` + "`$ref`" + ` (to the envelope), ` + "`$schema`" + `, ` + "`$id`" + `, ` + "`title`" + `, ` + "`description`" + ` | as above |

One field name has one type across all schemas (one lake column type per name). Rules JSON Schema cannot
state are the envelope's, in Go: ` + "`null`" + ` and ` + "`\"\"`" + ` count as absent; ` + "`user_id`" + ` or ` + "`anonymous_id`" + ` is required;
` + "`occurred_at`" + ` within the window above (leap seconds refused); integers written without fraction or exponent
(` + "`1e3`" + ` and ` + "`1.0`" + ` are refused, as before) and within int64; duplicate keys refused; the event size bound.
The compiled validator is held to [santhosh-tekuri/jsonschema](https://github.com/santhosh-tekuri/jsonschema)
v6 by a differential fuzz test (` + "`registry.FuzzMatchesReference`" + `).

**Annotations** (` + "`x-spate-…`" + `; unknown ones are refused like any other keyword):

| annotation | on | meaning |
|---|---|---|
| ` + "`x-spate-dictionary: true`" + ` | string property | low cardinality: dictionary-encode the Parquet column |
| ` + "`x-spate-personal: true`" + ` | property | a personal identifier (privacy reviews, erasure) |
| ` + "`x-spate-aggregate-key: \"content_id\"`" + ` | property | the part of the real-time aggregate key it fills: ` + "`content_id`" + `, ` + "`image_variant`" + ` or ` + "`platform`" + ` |
| ` + "`x-spate-aggregate-counts: \"clicks\"`" + ` | type schema | the aggregates count this type as ` + "`impressions`" + `, ` + "`clicks`" + ` or ` + "`plays`" + ` (events with every key part set) |
| ` + "`x-spate-order: 10`" + ` | type schema | documentation order (default 1000, then by name) |
| ` + "`x-spate-load-weight: 8`" + ` | type schema | its share of the events ` + "`spate loadgen`" + ` and the k6 scripts generate (default 0: none) |
| ` + "`x-spate-server-set: {…}`" + ` | envelope | columns ingest sets and clients may not send (` + "`received_at`" + `) |

### Versions and compatibility

Versions order by MODEL, then REVISION, then ADDITION, numerically (` + "`1-0-10`" + ` follows ` + "`1-0-9`" + `). A type starts at
` + "`1-0-0`" + ` and each version bumps exactly one number by one (a REVISION resets ADDITION, a MODEL resets both).
` + "`spate schema check`" + ` and every component at start refuse a version that breaks its rule:

- **ADDITION** (` + "`1-0-1`" + `): every event valid before stays valid. Only new optional properties; nothing removed,
  no type or format changed, nothing newly required, no limit narrowed (` + "`maxLength`" + `, ` + "`minimum`" + `, ` + "`maximum`" + `,
  ` + "`maxProperties`" + `, an ` + "`enum`" + ` value removed). Same lake table; the new column is null in older rows.
- **REVISION** (` + "`1-1-0`" + `): same lake table, so every property stays with the same type; rules may change
  (limits, ` + "`required`" + `, ` + "`enum`" + `). Some historical events would now fail.
- **MODEL** (` + "`2-0-0`" + `): anything. It lands in a new lake table ` + "`<name>_v2`" + ` (own Glue table and Firehose stream,
  generated), so no Parquet file mixes incompatible columns; the old table keeps its history. Clients are
  validated against the new MODEL as soon as it ships.

## Failed events

An event that fails validation, and every undecodable element of a batch, is answered exactly as before
and also kept: locally as Parquet under ` + "`<data>/failed/dt=YYYY-MM-DD/hour=HH/`" + `, in AWS through the
` + "`failed`" + ` Firehose stream to the lake bucket's ` + "`failed/`" + ` prefix. Columns: ` + "`received_at`" + ` (timestamp), ` + "`reason`" + `
(the rule), ` + "`field`" + `, ` + "`schema_id`" + ` (the ` + "`$id`" + ` validated against, when the type was known), ` + "`event_type`" + `, ` + "`event_id`" + `
(when the client sent one), ` + "`payload`" + ` (the event's bytes, at most 32 KiB; ` + "`truncated`" + ` says when cut). Failed
events are personal data: same encryption, retention and erasure as the lake, never logged.

` + "`spate recover --from DIR|s3://bucket/failed/ --to URL [--schemas DIR] [--since T]`" + ` re-validates them against the
current schemas and POSTs those that now pass, with their ` + "`event_id`" + ` (assigned from the failed record's id
when the client sent none) and ` + "`occurred_at`" + `. Recovering twice sends the same ` + "`event_id`" + `s again, so the lake
holds each at most once after deduplication on ` + "`event_id`" + ` (the lake's key, as for client retries); the
second run reports them as already recovered from its ledger (` + "`<from>/recovered.log`" + `) and sends nothing.
`
