// Package kinesisstub is a Kinesis endpoint that accepts every PutRecords
// and PutRecord call, for benchmarks that must not measure an emulator. It
// has one shard (ListShards), which owns every hash key. Integration tests
// use kinesalite instead.
package kinesisstub

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
)

// Stub counts what it accepted.
type Stub struct {
	*httptest.Server
	Calls   atomic.Int64
	Records atomic.Int64
}

// New starts a stub on 127.0.0.1.
func New() *Stub {
	s := &Stub{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

var partitionKey = []byte(`"PartitionKey"`)

func (s *Stub) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	s.Calls.Add(1)
	switch target := r.Header.Get("X-Amz-Target"); {
	case strings.HasSuffix(target, ".PutRecords"):
		n := bytes.Count(body, partitionKey)
		s.Records.Add(int64(n))
		var b strings.Builder
		b.WriteString(`{"FailedRecordCount":0,"Records":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"SequenceNumber":"%d","ShardId":"shardId-000000000000"}`, i)
		}
		b.WriteString(`]}`)
		_, _ = io.WriteString(w, b.String())
	case strings.HasSuffix(target, ".ListShards"):
		_, _ = io.WriteString(w, `{"Shards":[{"ShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}}]}`)
	case strings.HasSuffix(target, ".PutRecord"):
		s.Records.Add(1)
		_, _ = io.WriteString(w, `{"SequenceNumber":"1","ShardId":"shardId-000000000000"}`)
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"UnknownOperationException"}`)
	}
}
