package spatetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spate-dev/spate"
)

// UserRecord is one record as AWS's aws-kinesis-agg deaggregated it.
type UserRecord struct {
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber *int   `json:"subSequenceNumber"` // nil for a plain record
	PartitionKey      string `json:"partitionKey"`
	ExplicitHashKey   string `json:"explicitHashKey"`
	Aggregated        bool   `json:"aggregated"`
	Data              []byte `json:"data"`
}

// kplNode runs emulators/kpl.js, the independent check of the KPL
// aggregated-record format with AWS's npm aws-kinesis-agg, installed by
// `make emulators` like the emulators (missing: skipped, failed under CI).
func kplNode(tb testing.TB, ctx context.Context, stdin []byte, args ...string) []byte {
	tb.Helper()
	dir := filepath.Join(RepoRoot(tb), "emulators")
	if _, err := exec.LookPath("node"); err != nil {
		missing(tb, "node not found on PATH")
	}
	check := exec.Command("node", "-e", "require('aws-kinesis-agg')")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		missing(tb, "aws-kinesis-agg not installed (`make emulators`): "+string(out))
	}
	cmd := exec.CommandContext(ctx, "node", append([]string{"kpl.js"}, args...)...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("node kpl.js %s: %v\n%s", args[0], err, stderr.String())
	}
	return out
}

// NodeDeaggregate reads every record of stream from kinesalite at endpoint
// with aws-kinesis-agg's deaggregateSync (MD5 checked) and returns the user
// records, aggregated or plain.
func NodeDeaggregate(tb testing.TB, ctx context.Context, endpoint, stream string) []UserRecord {
	tb.Helper()
	out := kplNode(tb, ctx, nil, "read", endpoint, stream)
	var recs []UserRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		var u UserRecord
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
			tb.Fatalf("kpl.js read printed %q: %v", sc.Text(), err)
		}
		recs = append(recs, u)
	}
	return recs
}

// NodeAggregate aggregates recs with aws-kinesis-agg's RecordAggregator
// and puts the aggregated records into stream; it returns how many Kinesis
// records that made.
func NodeAggregate(tb testing.TB, ctx context.Context, endpoint, stream string, recs []spate.Record) int {
	tb.Helper()
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, r := range recs {
		if err := enc.Encode(struct {
			PartitionKey string `json:"partitionKey"`
			Data         []byte `json:"data"`
		}{r.PartitionKey, r.Data}); err != nil {
			tb.Fatal(err)
		}
	}
	var res struct{ Records, UserRecords int }
	if err := json.Unmarshal(kplNode(tb, ctx, in.Bytes(), "write", endpoint, stream), &res); err != nil {
		tb.Fatal(err)
	}
	if res.UserRecords != len(recs) {
		tb.Fatalf("aws-kinesis-agg aggregated %d of %d records", res.UserRecords, len(recs))
	}
	return res.Records
}
