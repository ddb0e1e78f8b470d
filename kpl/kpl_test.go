package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/spate-dev/spate"
)

// reference is AggregatedRecord as the full protobuf runtime reads it,
// built from the messages.proto of amazon-kinesis-producer: the
// differential oracle for Unmarshal, independent of protowire-level code.
func reference(tb testing.TB) protoreflect.MessageDescriptor {
	tb.Helper()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	req := descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	u64 := descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum()
	byt := descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	field := func(name string, num int32, l *descriptorpb.FieldDescriptorProto_Label, t *descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: l, Type: t}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("messages.proto"), Package: proto.String("aws.kinesis.protobuf"), Syntax: proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Tag"), Field: []*descriptorpb.FieldDescriptorProto{
				field("key", 1, req, str, ""), field("value", 2, opt, str, ""),
			}},
			{Name: proto.String("Record"), Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_index", 1, req, u64, ""), field("explicit_hash_key_index", 2, opt, u64, ""),
				field("data", 3, req, byt, ""), field("tags", 4, rep, msg, ".aws.kinesis.protobuf.Tag"),
			}},
			{Name: proto.String("AggregatedRecord"), Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_table", 1, rep, str, ""), field("explicit_hash_key_table", 2, rep, str, ""),
				field("records", 3, rep, msg, ".aws.kinesis.protobuf.Record"),
			}},
		},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return file.Messages().ByName("AggregatedRecord")
}

// refDecode decodes body with the reference and resolves the indexes as
// Unmarshal does; ok is false where Unmarshal must fail.
func refDecode(md protoreflect.MessageDescriptor, body []byte) (recs []Record, ok bool) {
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, false
	}
	keys := m.Get(md.Fields().ByNumber(1)).List()
	hashes := m.Get(md.Fields().ByNumber(2)).List()
	list := m.Get(md.Fields().ByNumber(3)).List()
	rd := md.Fields().ByNumber(3).Message()
	for i := range list.Len() {
		r := list.Get(i).Message()
		pk := r.Get(rd.Fields().ByNumber(1)).Uint()
		if pk >= uint64(keys.Len()) {
			return nil, false
		}
		rec := Record{PartitionKey: keys.Get(int(pk)).String(), Data: r.Get(rd.Fields().ByNumber(3)).Bytes()}
		if ehf := rd.Fields().ByNumber(2); r.Has(ehf) {
			eh := r.Get(ehf).Uint()
			if eh >= uint64(hashes.Len()) {
				return nil, false
			}
			rec.ExplicitHashKey = hashes.Get(int(eh)).String()
		}
		recs = append(recs, rec)
	}
	return recs, true
}

func wrap(body []byte) []byte {
	sum := md5.Sum(body)
	return append(append(append([]byte{}, Magic[:]...), body...), sum[:]...)
}

func equal(a, b []Record) bool {
	return slices.EqualFunc(a, b, func(x, y Record) bool {
		return x.PartitionKey == y.PartitionKey && x.ExplicitHashKey == y.ExplicitHashKey && bytes.Equal(x.Data, y.Data)
	})
}

func TestRoundTripMatchesReference(t *testing.T) {
	md := reference(t)
	recs := []Record{
		{PartitionKey: "sess-1", Data: []byte(`{"type":"click"}`)},
		{PartitionKey: "sess-2", ExplicitHashKey: "170141183460469231731687303715884105728", Data: []byte(`{"type":"impression"}`)},
		{PartitionKey: "sess-1", Data: []byte{}},
		{PartitionKey: "", Data: bytes.Repeat([]byte("x"), 300)},
	}
	var b Builder
	for i, r := range recs {
		want := b.SizeWith(r)
		b.Add(r)
		if b.Size() != want || len(b.Bytes()) != want {
			t.Fatalf("after record %d: SizeWith %d, Size %d, encoded %d", i, want, b.Size(), len(b.Bytes()))
		}
	}
	data := b.Bytes()
	if !bytes.Equal(data, Marshal(recs)) {
		t.Fatal("Builder and Marshal disagree")
	}
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got, recs) {
		t.Fatalf("round trip: got %+v", got)
	}
	ref, ok := refDecode(md, data[4:len(data)-16])
	if !ok || !equal(ref, recs) {
		t.Fatalf("the reference reads %+v (ok %v)", ref, ok)
	}
	// The tables hold each key once.
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(data[4:len(data)-16], m); err != nil {
		t.Fatal(err)
	}
	if n := m.Get(md.Fields().ByNumber(1)).List().Len(); n != 3 {
		t.Errorf("partition key table has %d entries, want 3", n)
	}
	b.Reset()
	if b.Len() != 0 || b.Size() != 20 {
		t.Errorf("after Reset: %d records, %d bytes", b.Len(), b.Size())
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := Marshal([]Record{{PartitionKey: "k", Data: []byte("v")}})
	badSum := slices.Clone(good)
	badSum[len(badSum)-1] ^= 1
	idx := protowire.AppendTag(nil, 1, protowire.BytesType)
	idx = protowire.AppendString(idx, "k")
	rec := protowire.AppendTag(nil, 1, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 1) // index 1 of a 1-entry table
	rec = protowire.AppendTag(rec, 3, protowire.BytesType)
	rec = protowire.AppendBytes(rec, []byte("v"))
	outOfRange := protowire.AppendTag(slices.Clone(idx), 3, protowire.BytesType)
	outOfRange = protowire.AppendBytes(outOfRange, rec)
	noData := protowire.AppendTag(slices.Clone(idx), 3, protowire.BytesType)
	noData = protowire.AppendBytes(noData, protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 0))
	for name, data := range map[string][]byte{
		"plain JSON":          []byte(`{"type":"click"}`),
		"magic only":          Magic[:],
		"bad MD5":             badSum,
		"truncated protobuf":  wrap(good[4 : len(good)-17]),
		"index out of range":  wrap(outOfRange),
		"missing data":        wrap(noData),
		"not protobuf at all": wrap([]byte{0xff, 0xff, 0xff}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Unmarshal(data); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	agg := Marshal([]Record{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}})
	broken := slices.Clone(agg)
	broken[len(broken)-1] ^= 1
	in := []spate.Record{
		{PartitionKey: "p", Data: []byte("plain"), ShardID: "s0", SequenceNumber: "10"},
		{PartitionKey: "a", Data: agg, ShardID: "s0", SequenceNumber: "11"},
		{PartitionKey: "x", Data: broken, ShardID: "s0", SequenceNumber: "12"},
	}
	out, bad := Split(in)
	if bad != 1 {
		t.Errorf("bad = %d, want 1", bad)
	}
	want := []string{"p/plain/10", "a/1/11", "b/2/11", "x/" + string(broken) + "/12"}
	var got []string
	for _, r := range out {
		got = append(got, r.PartitionKey+"/"+string(r.Data)+"/"+r.SequenceNumber)
		if r.ShardID != "s0" {
			t.Errorf("record %q lost its shard", r.PartitionKey)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Split = %q, want %q", got, want)
	}
	plain := in[:1]
	if out, _ := Split(plain); &out[0] != &plain[0] {
		t.Error("a batch without aggregated records is not passed through as is")
	}
}

// FuzzUnmarshal checks Unmarshal against the protobuf runtime on arbitrary
// protobuf bodies: both accept the same inputs and read the same records.
func FuzzUnmarshal(f *testing.F) {
	md := reference(f)
	seed := Marshal([]Record{{PartitionKey: "k", Data: []byte("v")}, {PartitionKey: "k2", ExplicitHashKey: "1", Data: []byte("w")}})
	f.Add(seed[4 : len(seed)-16])
	f.Add([]byte{})
	f.Add([]byte{0x1a, 0x02, 0x08, 0x00})
	// A record with a tag and an unknown field, and a group.
	tag := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("t"))
	rec := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 0)
	rec = protowire.AppendBytes(protowire.AppendTag(rec, 4, protowire.BytesType), tag)
	rec = protowire.AppendVarint(protowire.AppendTag(rec, 9, protowire.VarintType), 7)
	rec = protowire.AppendBytes(protowire.AppendTag(rec, 3, protowire.BytesType), []byte("d"))
	body := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "k")
	body = protowire.AppendBytes(protowire.AppendTag(body, 3, protowire.BytesType), rec)
	body = protowire.AppendTag(body, 5, protowire.StartGroupType)
	body = protowire.AppendTag(body, 5, protowire.EndGroupType)
	f.Add(body)
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Unmarshal(wrap(body))
		want, ok := refDecode(md, body)
		if ok != (err == nil) {
			t.Fatalf("Unmarshal err = %v, reference ok = %v", err, ok)
		}
		if ok && !equal(got, want) {
			t.Fatalf("Unmarshal = %+v, reference = %+v", got, want)
		}
	})
}

// FuzzRoundTrip: whatever records go in come out, and the Builder's size
// accounting is exact.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), 5)
	f.Add(uint64(42), 200)
	f.Fuzz(func(t *testing.T, seed uint64, n int) {
		n = n % 300
		if n < 0 {
			n = -n
		}
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		recs := make([]Record, n)
		var b Builder
		for i := range recs {
			data := make([]byte, rng.IntN(2000))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			recs[i] = Record{PartitionKey: fmt.Sprintf("pk-%d", rng.IntN(20)), Data: data}
			if rng.IntN(3) == 0 {
				recs[i].ExplicitHashKey = fmt.Sprint(rng.Uint64())
			}
			want := b.SizeWith(recs[i])
			b.Add(recs[i])
			if b.Size() != want {
				t.Fatalf("record %d: Size %d, SizeWith said %d", i, b.Size(), want)
			}
		}
		data := b.Bytes()
		if len(data) != b.Size() {
			t.Fatalf("encoded %d bytes, Size says %d", len(data), b.Size())
		}
		got, err := Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if !equal(got, recs) {
			t.Fatal("records changed in the round trip")
		}
	})
}
