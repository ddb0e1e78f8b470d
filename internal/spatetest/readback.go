package spatetest

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/kpl"
)

// KinesisReader is the part of the Kinesis client the read-back helpers use.
type KinesisReader interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// ReadRecords returns every Kinesis record in stream as stored, aggregated
// or not, shard by shard (closed shards included) from the trim horizon to
// the tip.
func ReadRecords(ctx context.Context, api KinesisReader, stream string) ([]spate.Record, error) {
	var shards []ktypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards %s: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	var recs []spate.Record
	for _, sh := range shards {
		it, err := api.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("shard iterator %s: %w", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return nil, fmt.Errorf("get records %s: %w", aws.ToString(sh.ShardId), err)
			}
			for _, r := range out.Records {
				recs = append(recs, spate.Record{
					PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data, ShardID: aws.ToString(sh.ShardId),
					SequenceNumber: aws.ToString(r.SequenceNumber), ArrivedAt: aws.ToTime(r.ApproximateArrivalTimestamp),
				})
			}
			// An open shard always has a next iterator; at the tip
			// nothing more is behind it. A closed shard's ends.
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs, nil
}

// ReadEvents returns every event in stream: plain records as they are and
// the events inside aggregated records (package kpl), each with its
// enclosing record's shard and sequence number. An aggregated record that
// does not decode is an error: spate never writes one.
func ReadEvents(ctx context.Context, api KinesisReader, stream string) ([]spate.Record, error) {
	recs, err := ReadRecords(ctx, api, stream)
	if err != nil {
		return nil, err
	}
	events, bad := kpl.Split(recs)
	if bad > 0 {
		return nil, fmt.Errorf("stream %s holds %d undecodable aggregated records", stream, bad)
	}
	return events, nil
}
