package router

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"sync"

	"github.com/spate-dev/spate"
)

// Defaults of the memory of recently delivered event_ids.
const (
	DefaultRecentIDs    = 100_000
	DefaultRecentShards = 8
)

// RecentBytesPerID bounds what one remembered event_id costs: its 128-bit
// hash in the ring and in the set, with the map's overhead. Measured with
// full rings that keep turning over: 65.6 B (4 × 20,000 ids, 3 turns,
// TestRecentBytesPerIDHolds) to 88.7 B (8 × 100,000 ids, 2–10 turns).
const RecentBytesPerID = 90

// idHash is a 128-bit hash of an event_id: two keyed 64-bit hashes, so that
// two different ids collide (and the second is wrongly skipped) with odds
// of about n/2^128 per lookup.
type idHash [2]uint64

// recent remembers, per shard, the event_ids whose records the destination
// accepted lately, so that records redelivered after a partial failure (a
// Lambda batch resumed from its first failed record, a local consumer re-reading after a crash)
// are not delivered twice. It holds at most perShard ids for each of at
// most maxShards shards, forgetting the oldest id first and the least
// recently used shard first: bounded at about
// maxShards × perShard × RecentBytesPerID bytes.
type recent struct {
	seeds               [2]maphash.Seed
	perShard, maxShards int

	mu     sync.Mutex
	shards map[string]*shardIDs
	tick   uint64
}

type shardIDs struct {
	ring []idHash
	next int
	set  map[idHash]struct{}
	used uint64
}

func newRecent(perShard, maxShards int) *recent {
	return &recent{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, perShard: perShard, maxShards: maxShards,
		shards: map[string]*shardIDs{}}
}

func (r *recent) hash(id []byte) idHash {
	return idHash{maphash.Bytes(r.seeds[0], id), maphash.Bytes(r.seeds[1], id)}
}

// seen reports, for each i with ok[i], whether shard delivered ids[i].
func (r *recent) seen(shard string, ids []idHash, ok []bool, out []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shards[shard]
	if s == nil {
		return
	}
	for i := range ids {
		if ok[i] {
			_, out[i] = s.set[ids[i]]
		}
	}
}

// add remembers ids as delivered by shard.
func (r *recent) add(shard string, ids []idHash) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shards[shard]
	if s == nil {
		if len(r.shards) >= r.maxShards {
			r.evict()
		}
		s = &shardIDs{ring: make([]idHash, 0, min(r.perShard, 1024)), set: make(map[idHash]struct{}, min(r.perShard, 1024))}
		r.shards[shard] = s
	}
	r.tick++
	s.used = r.tick
	for _, h := range ids {
		if _, dup := s.set[h]; dup {
			continue
		}
		if len(s.ring) < r.perShard {
			s.ring = append(s.ring, h)
		} else {
			delete(s.set, s.ring[s.next])
			s.ring[s.next] = h
			s.next = (s.next + 1) % r.perShard
		}
		s.set[h] = struct{}{}
	}
}

// evict forgets the least recently used shard.
func (r *recent) evict() {
	var oldest string
	var at uint64
	for k, s := range r.shards {
		if oldest == "" || s.used < at {
			oldest, at = k, s.used
		}
	}
	delete(r.shards, oldest)
}

// size is how many ids are remembered.
func (r *recent) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.shards {
		n += len(s.ring)
	}
	return n
}

// canonicalID is what follows the type in an event as
// spate.Event.AppendJSON writes it.
const canonicalID = `","event_id":"`

// eventID finds the top-level event_id of an event the decoder accepted
// (one JSON object). ok is false when it has none, or it is not a string.
func eventID(event []byte) (id []byte, ok bool) {
	if rest, found := bytes.CutPrefix(event, []byte(canonicalPrefix)); found {
		if end := bytes.IndexByte(rest, '"'); end >= 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			if v, found := bytes.CutPrefix(rest[end:], []byte(canonicalID)); found {
				if e := bytes.IndexByte(v, '"'); e >= 0 && bytes.IndexByte(v[:e], '\\') < 0 {
					return v[:e], true
				}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(event))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, false
		}
		if key != "event_id" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil, false
			}
			continue
		}
		var raw json.RawMessage
		var s string
		if dec.Decode(&raw) != nil || len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		return []byte(s), true
	}
	return nil, false
}

// batchIDs follows the event_ids of one Route call: which records to skip
// as delivered already, and which to remember once delivered.
type batchIDs struct {
	r      *Router
	hashes []idHash
	ok     []bool
	first  map[idHash]int // the record of each id's first copy in the batch
	dupOf  map[int]int    // later copies in the batch -> the first
}

// newBatchIDs returns nil when the router remembers nothing; the methods
// of a nil *batchIDs do nothing.
func (r *Router) newBatchIDs(n int) *batchIDs {
	if r.recent == nil {
		return nil
	}
	return &batchIDs{r: r, hashes: make([]idHash, n), ok: make([]bool, n), first: make(map[idHash]int, n)}
}

// skip reports whether record i, an event of shard, is a copy: of an event
// the shard delivered lately, or of one earlier in this batch (which then
// decides its fate).
func (b *batchIDs) skip(i int, shard string, event []byte) bool {
	if b == nil {
		return false
	}
	id, ok := eventID(event)
	if !ok || len(id) == 0 {
		return false
	}
	h := b.r.recent.hash(id)
	b.hashes[i], b.ok[i] = h, true
	if j, dup := b.first[h]; dup {
		if b.dupOf == nil {
			b.dupOf = map[int]int{}
		}
		b.dupOf[i] = j
		b.r.stats.duplicates.Add(1)
		return true
	}
	b.first[h] = i
	known := []bool{false}
	b.r.recent.seen(shard, b.hashes[i:i+1], b.ok[i:i+1], known)
	if known[0] {
		b.ok[i] = false // nothing to remember again
		b.r.stats.duplicates.Add(1)
		return true
	}
	return false
}

// delivered remembers the ids of records idx, which the destination has
// accepted.
func (b *batchIDs) delivered(idx []int, recs []spate.Record) {
	if b == nil {
		return
	}
	for _, i := range idx {
		if b.ok[i] {
			b.r.recent.add(recs[i].ShardID, b.hashes[i:i+1])
		}
	}
}

// settle gives later copies in the batch the outcome of their first.
func (b *batchIDs) settle(errs []error) {
	if b == nil {
		return
	}
	for i, j := range b.dupOf {
		errs[i] = errs[j]
	}
}

func (r *Router) remembered() int64 {
	if r.recent == nil {
		return 0
	}
	return int64(r.recent.size())
}
