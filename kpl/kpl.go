// Package kpl reads and writes the Kinesis Producer Library's aggregated
// record format: many user records (spate's events) carried in one Kinesis
// record, which AWS's deaggregation libraries, the KCL and Firehose (with a
// Kinesis source) unpack. A record is the 4 magic bytes F3 89 9A C2, a
// protobuf AggregatedRecord and the 16-byte MD5 of the protobuf bytes:
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag { required string key = 1; optional string value = 2; }
//
// (amazon-kinesis-producer, aggregation-format.md). The protobuf wire
// format is google.golang.org/protobuf's protowire; nothing else is needed
// for three flat messages.
package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/spate-dev/spate"
)

// Magic starts every aggregated record.
var Magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

// overhead is what an aggregated record adds around its protobuf: magic
// and MD5 trailer.
const overhead = len(Magic) + md5.Size

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed aggregated record")

// Record is one user record: an event and the partition key it was
// written with, and the explicit hash key when it had one.
type Record struct {
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
}

// Field numbers.
const (
	fAggPartitionKeys  protowire.Number = 1
	fAggExplicitHashes protowire.Number = 2
	fAggRecords        protowire.Number = 3

	fRecPartitionKeyIndex protowire.Number = 1
	fRecExplicitHashIndex protowire.Number = 2
	fRecData              protowire.Number = 3
	fRecTags              protowire.Number = 4

	fTagKey   protowire.Number = 1
	fTagValue protowire.Number = 2
)

// IsAggregated reports whether data starts with the magic bytes and is long
// enough to hold the trailer. It does not check the MD5: Unmarshal does.
func IsAggregated(data []byte) bool {
	return len(data) >= overhead && bytes.Equal(data[:len(Magic)], Magic[:])
}

// Builder accumulates user records into one aggregated record, knowing its
// encoded size at every step so a producer can cut at a size target. The
// zero value is ready to use; Reset reuses its memory.
type Builder struct {
	keys    []string
	keyIdx  map[string]uint64
	hashes  []string
	hashIdx map[string]uint64
	recs    []pending // in order
	size    int       // encoded size of the records
	tables  int       // encoded size of both tables
}

// pending is one added record: its indexes and data, encoded at AppendTo
// so the data is copied once.
type pending struct {
	pk, eh uint64
	hasEH  bool
	data   []byte
}

// Len returns how many user records the builder holds.
func (b *Builder) Len() int { return len(b.recs) }

// Size returns the encoded size of the aggregated record so far.
func (b *Builder) Size() int { return overhead + b.tables + b.size }

// SizeWith returns what Size would be after adding r.
func (b *Builder) SizeWith(r Record) int { return b.Size() + b.slot(r).grow }

// Add appends r. Its Data is referenced, not copied, until Reset: it must
// not change before the record is encoded.
func (b *Builder) Add(r Record) { b.commit(r, b.slot(r)) }

// AddWithin appends r, as Add does, if the record's Size stays within
// limit afterwards, and reports whether it did: one lookup of r's keys
// where SizeWith then Add take two.
func (b *Builder) AddWithin(r Record, limit int) bool {
	sl := b.slot(r)
	if b.Size()+sl.grow > limit {
		return false
	}
	b.commit(r, sl)
	return true
}

// slot is where a user record goes: its table indexes, whether it adds
// table entries, and how many bytes it adds to the encoded record.
type slot struct {
	pk, eh       uint64
	newPK, newEH bool
	grow         int
}

func (b *Builder) slot(r Record) slot {
	var sl slot
	var ok bool
	if sl.pk, ok = b.keyIdx[r.PartitionKey]; !ok {
		sl.pk, sl.newPK = uint64(len(b.keys)), true
		sl.grow += protowire.SizeTag(fAggPartitionKeys) + protowire.SizeBytes(len(r.PartitionKey))
	}
	hasEH := r.ExplicitHashKey != ""
	if hasEH {
		if sl.eh, ok = b.hashIdx[r.ExplicitHashKey]; !ok {
			sl.eh, sl.newEH = uint64(len(b.hashes)), true
			sl.grow += protowire.SizeTag(fAggExplicitHashes) + protowire.SizeBytes(len(r.ExplicitHashKey))
		}
	}
	sl.grow += protowire.SizeTag(fAggRecords) + protowire.SizeBytes(recordSize(sl.pk, sl.eh, hasEH, len(r.Data)))
	return sl
}

func (b *Builder) commit(r Record, sl slot) {
	if b.keyIdx == nil {
		b.keyIdx = map[string]uint64{}
		b.hashIdx = map[string]uint64{}
	}
	tables := 0
	if sl.newPK {
		b.keyIdx[r.PartitionKey] = sl.pk
		b.keys = append(b.keys, r.PartitionKey)
		tables += protowire.SizeTag(fAggPartitionKeys) + protowire.SizeBytes(len(r.PartitionKey))
	}
	if sl.newEH {
		b.hashIdx[r.ExplicitHashKey] = sl.eh
		b.hashes = append(b.hashes, r.ExplicitHashKey)
		tables += protowire.SizeTag(fAggExplicitHashes) + protowire.SizeBytes(len(r.ExplicitHashKey))
	}
	b.tables += tables
	b.size += sl.grow - tables
	b.recs = append(b.recs, pending{pk: sl.pk, eh: sl.eh, hasEH: r.ExplicitHashKey != "", data: r.Data})
}

func recordSize(pkIdx, ehIdx uint64, hasEH bool, dataLen int) int {
	n := protowire.SizeTag(fRecPartitionKeyIndex) + protowire.SizeVarint(pkIdx) +
		protowire.SizeTag(fRecData) + protowire.SizeBytes(dataLen)
	if hasEH {
		n += protowire.SizeTag(fRecExplicitHashIndex) + protowire.SizeVarint(ehIdx)
	}
	return n
}

// AppendTo appends the aggregated record (magic, protobuf, MD5) to dst.
func (b *Builder) AppendTo(dst []byte) []byte {
	dst = append(dst, Magic[:]...)
	start := len(dst)
	for _, k := range b.keys {
		dst = protowire.AppendTag(dst, fAggPartitionKeys, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
	}
	for _, h := range b.hashes {
		dst = protowire.AppendTag(dst, fAggExplicitHashes, protowire.BytesType)
		dst = protowire.AppendString(dst, h)
	}
	for _, r := range b.recs {
		dst = protowire.AppendTag(dst, fAggRecords, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(recordSize(r.pk, r.eh, r.hasEH, len(r.data))))
		dst = protowire.AppendTag(dst, fRecPartitionKeyIndex, protowire.VarintType)
		dst = protowire.AppendVarint(dst, r.pk)
		if r.hasEH {
			dst = protowire.AppendTag(dst, fRecExplicitHashIndex, protowire.VarintType)
			dst = protowire.AppendVarint(dst, r.eh)
		}
		dst = protowire.AppendTag(dst, fRecData, protowire.BytesType)
		dst = protowire.AppendBytes(dst, r.data)
	}
	sum := md5.Sum(dst[start:])
	return append(dst, sum[:]...)
}

// Bytes returns the aggregated record in a new slice.
func (b *Builder) Bytes() []byte { return b.AppendTo(make([]byte, 0, b.Size())) }

// Reset empties the builder, keeping its memory.
func (b *Builder) Reset() {
	b.keys = b.keys[:0]
	b.hashes = b.hashes[:0]
	clear(b.keyIdx)
	clear(b.hashIdx)
	clear(b.recs) // drop the references to the data
	b.recs = b.recs[:0]
	b.size = 0
	b.tables = 0
}

// Marshal returns the aggregated record holding recs.
func Marshal(recs []Record) []byte {
	var b Builder
	for _, r := range recs {
		b.Add(r)
	}
	return b.Bytes()
}

// Unmarshal decodes an aggregated record. It checks the magic bytes, the
// MD5 trailer, the protobuf (proto2: required fields present, unknown
// fields skipped, the last of a repeated scalar wins) and that every index
// names an entry of its table. The records' Data alias data.
func Unmarshal(data []byte) ([]Record, error) {
	if !IsAggregated(data) {
		return nil, fmt.Errorf("%w: no magic bytes or too short (%d bytes)", ErrMalformed, len(data))
	}
	body := data[len(Magic) : len(data)-md5.Size]
	if sum := md5.Sum(body); !bytes.Equal(sum[:], data[len(data)-md5.Size:]) {
		return nil, fmt.Errorf("%w: MD5 trailer does not match", ErrMalformed)
	}
	var keys, hashes []string
	type raw struct {
		pk, eh uint64
		hasEH  bool
		data   []byte
	}
	var raws []raw
	for len(body) > 0 {
		num, typ, n := consumeTag(body)
		if n < 0 {
			return nil, malformed("AggregatedRecord", n)
		}
		body = body[n:]
		switch {
		case num == fAggPartitionKeys && typ == protowire.BytesType, num == fAggExplicitHashes && typ == protowire.BytesType:
			s, n := protowire.ConsumeString(body)
			if n < 0 {
				return nil, malformed("key table", n)
			}
			body = body[n:]
			if num == fAggPartitionKeys {
				keys = append(keys, s)
			} else {
				hashes = append(hashes, s)
			}
		case num == fAggRecords && typ == protowire.BytesType:
			msg, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return nil, malformed("Record", n)
			}
			body = body[n:]
			var r raw
			if err := decodeRecord(msg, &r.pk, &r.eh, &r.hasEH, &r.data); err != nil {
				return nil, err
			}
			raws = append(raws, r)
		default:
			n := protowire.ConsumeFieldValue(num, typ, body)
			if n < 0 {
				return nil, malformed("AggregatedRecord field", n)
			}
			body = body[n:]
		}
	}
	out := make([]Record, len(raws))
	for i, r := range raws {
		if r.pk >= uint64(len(keys)) {
			return nil, fmt.Errorf("%w: record %d: partition key index %d of %d", ErrMalformed, i, r.pk, len(keys))
		}
		out[i] = Record{PartitionKey: keys[r.pk], Data: r.data}
		if r.hasEH {
			if r.eh >= uint64(len(hashes)) {
				return nil, fmt.Errorf("%w: record %d: explicit hash key index %d of %d", ErrMalformed, i, r.eh, len(hashes))
			}
			out[i].ExplicitHashKey = hashes[r.eh]
		}
	}
	return out, nil
}

func decodeRecord(b []byte, pk, eh *uint64, hasEH *bool, data *[]byte) error {
	var hasPK, hasData bool
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformed("Record", n)
		}
		b = b[n:]
		switch {
		case (num == fRecPartitionKeyIndex || num == fRecExplicitHashIndex) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed("Record index", n)
			}
			b = b[n:]
			if num == fRecPartitionKeyIndex {
				*pk, hasPK = v, true
			} else {
				*eh, *hasEH = v, true
			}
		case num == fRecData && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("Record data", n)
			}
			b = b[n:]
			*data, hasData = v, true
		case num == fRecTags && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("Tag", n)
			}
			b = b[n:]
			if err := checkTag(v); err != nil {
				return err
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return malformed("Record field", n)
			}
			b = b[n:]
		}
	}
	if !hasPK || !hasData {
		return fmt.Errorf("%w: Record lacks its required partition_key_index or data", ErrMalformed)
	}
	if *data == nil {
		*data = []byte{}
	}
	return nil
}

// checkTag validates a Tag (spate writes none and ignores them).
func checkTag(b []byte) error {
	hasKey := false
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformed("Tag", n)
		}
		b = b[n:]
		if (num == fTagKey || num == fTagValue) && typ == protowire.BytesType {
			_, n = protowire.ConsumeBytes(b)
			hasKey = hasKey || num == fTagKey
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return malformed("Tag field", n)
		}
		b = b[n:]
	}
	if !hasKey {
		return fmt.Errorf("%w: Tag lacks its required key", ErrMalformed)
	}
	return nil
}

// consumeTag is protowire.ConsumeTag with the protobuf runtime's bound on
// field numbers.
// errCodeFieldNumber is protowire's (unexported) code for a bad field
// number, so ParseError names it.
const errCodeFieldNumber = -2

func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, errCodeFieldNumber
	}
	return num, typ, n
}

func malformed(what string, n int) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, protowire.ParseError(n))
}

// Split replaces every aggregated record of recs by the events it carries,
// in order. They keep the enclosing record's shard, sequence number and
// arrival time: the sequence number is what a Lambda batch item failure
// names, so a failure inside an aggregated record redelivers that record
// whole. Plain records pass unchanged (streams are mixed while a rollout
// turns aggregation on), and so does an aggregated record that cannot be
// decoded, counted in bad: its reader then treats it as the undecodable
// record it is, dead-lettered or counted, never guessed at.
func Split(recs []spate.Record) (out []spate.Record, bad int) {
	agg := false
	for _, r := range recs {
		if IsAggregated(r.Data) {
			agg = true
			break
		}
	}
	if !agg {
		return recs, 0
	}
	out = make([]spate.Record, 0, len(recs)*8)
	for _, r := range recs {
		if !IsAggregated(r.Data) {
			out = append(out, r)
			continue
		}
		users, err := Unmarshal(r.Data)
		if err != nil {
			bad++
			out = append(out, r)
			continue
		}
		for _, u := range users {
			out = append(out, spate.Record{
				PartitionKey: u.PartitionKey, Data: u.Data,
				ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, ArrivedAt: r.ArrivedAt,
			})
		}
	}
	return out, bad
}
