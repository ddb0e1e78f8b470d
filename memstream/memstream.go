// Package memstream is an in-memory stream with the durable stream's pull
// contract (Log): records hashed to shards by partition key as Kinesis
// hashes them, per-shard order, sequence numbers, arrival timestamps, and
// consumers that commit checkpoints. Nothing survives the process: it is
// for tests and benchmarks (`spate local --stream memory`); spate local's
// default is diskstream.
//
// It is deliberately single-process: users who outgrow local mode deploy
// the same consumers on Kinesis, not a home-made distributed stream.
package memstream

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/big"
)

// shardMap splits the 128-bit hash key space evenly over n shards, as a new
// Kinesis stream does, and maps a partition key by its MD5.
type shardMap struct {
	ids []string
	// bounds are the exclusive upper ends of each shard's range, as
	// 128-bit big-endian numbers; the last shard takes the rest.
	bounds [][md5.Size]byte
}

func newShardMap(n int) shardMap {
	var m shardMap
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	for i := range n {
		m.ids = append(m.ids, fmt.Sprintf("shardId-%012d", i))
		if i == n-1 {
			break // 2^128 does not fit; the last shard is the default
		}
		hi := new(big.Int).Mul(space, big.NewInt(int64(i+1)))
		hi.Div(hi, big.NewInt(int64(n)))
		var b [md5.Size]byte
		hi.FillBytes(b[:])
		m.bounds = append(m.bounds, b)
	}
	return m
}

// shardFor returns the index of the shard a partition key maps to.
func (m shardMap) shardFor(key string) int {
	sum := md5.Sum([]byte(key))
	for i := range m.bounds {
		if bytes.Compare(sum[:], m.bounds[i][:]) < 0 {
			return i
		}
	}
	return len(m.ids) - 1
}
