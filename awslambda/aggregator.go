package awslambda

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/aggregate"
)

// AggregatorHandler is the aggregator Lambda: an event source mapping on
// the ingest stream with TumblingWindowInSeconds invokes it with each
// shard's batches and the state of the window so far; it folds the batch
// into the state and, at the window's final invocation (or when Lambda
// ends the window early), writes the window's aggregates to the
// aggregates stream. It never calls reward APIs: a slow API cannot stall
// the events stream.
type AggregatorHandler struct {
	folder *aggregate.Folder
	sink   spate.Sink
	log    *slog.Logger
}

// NewAggregatorHandler returns the handler folding with f and writing
// aggregate records to sink (a kinesis.Sink on the aggregates stream).
func NewAggregatorHandler(f *aggregate.Folder, sink spate.Sink, log *slog.Logger) *AggregatorHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AggregatorHandler{folder: f, sink: sink, log: log}
}

// Handle folds ev's records into ev's state. Aggregates are written when
// the window ends, when Lambda terminated it early, and when the state
// reached its size budget mid-window. A failed write returns an error:
// Lambda then retries the invocation with the same state and records, the
// fold emits the same aggregate IDs, and the reward side drops what was
// already delivered. Records are never reported as item failures: a record
// the fold cannot read is counted and skipped.
func (h *AggregatorHandler) Handle(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	recs := records(ev.Records)
	st, err := aggregate.DecodeState(ev.State)
	if err != nil {
		// Only a state this code did not write gets here. Failing would
		// hand back the same state forever; starting afresh loses this
		// window's counts so far on this shard, and says so.
		h.log.Error("aggregator: unreadable state, starting the window afresh", "shard", ev.ShardID, "error", err.Error())
		st = nil
	}
	if st == nil {
		st = aggregate.NewState(aggregatorSource(ev, recs), aggregate.Window{Start: ev.Window.Start.UTC(), End: ev.Window.End.UTC()})
	}
	out := h.folder.Fold(st, recs)
	closing := ev.IsFinalInvokeForWindow || ev.IsWindowTerminatedEarly
	if closing {
		out = append(out, h.folder.Close(st, !ev.IsFinalInvokeForWindow)...)
	}
	if err := h.write(ctx, out); err != nil {
		return events.KinesisTimeWindowEventResponse{}, err
	}
	resp := events.KinesisTimeWindowEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	// Lambda requires a state in every response; an empty one ends the window.
	resp.State = map[string]string{}
	if !closing {
		resp.State = st.Encode()
	}
	if len(out) > 0 || closing {
		h.log.Debug("aggregator", "shard", ev.ShardID, "records", len(recs), "aggregates", len(out),
			"final", ev.IsFinalInvokeForWindow, "terminated_early", ev.IsWindowTerminatedEarly, "state_bytes", st.Size())
	}
	return resp, nil
}

// aggregatorSource names the shard in aggregate IDs: the stream ARN and
// shard ID, so shards of different streams never share IDs.
func aggregatorSource(ev events.KinesisTimeWindowEvent, recs []spate.Record) string {
	shard := ev.ShardID
	if shard == "" && len(recs) > 0 {
		shard = recs[0].ShardID
	}
	if ev.EventSourceARN == "" {
		return shard
	}
	return ev.EventSourceARN + "/" + shard
}

func (h *AggregatorHandler) write(ctx context.Context, aggs []aggregate.Aggregate) error {
	if len(aggs) == 0 {
		return nil
	}
	recs := make([]spate.Record, len(aggs))
	for i, a := range aggs {
		data, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("aggregator encode %s: %w", a.ID, err)
		}
		recs[i] = spate.Record{PartitionKey: a.ID, Data: data}
	}
	if err := h.sink.Put(ctx, recs); err != nil {
		failed := 0
		for _, e := range spate.ItemErrors(err, len(recs)) {
			if e != nil {
				failed++
			}
		}
		h.log.Warn("aggregator: write failed, invocation will be retried", "aggregates", len(recs), "failed", failed, "error", err.Error())
		return fmt.Errorf("aggregator put %d aggregates: %w", len(recs), err)
	}
	return nil
}
