package awslambda

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/spate-dev/spate"
)

// RecordRouter routes a batch of stream records; router.Router is one.
// It returns nil, or per-record errors in a *spate.BatchError.
type RecordRouter interface {
	Route(ctx context.Context, recs []spate.Record) error
}

// RouterHandler is the router Lambda: Kinesis batches in, the records still
// to be redelivered out, as ReportBatchItemFailures expects.
type RouterHandler struct {
	router RecordRouter
	log    *slog.Logger
}

// NewRouterHandler returns the handler routing with r.
func NewRouterHandler(r RecordRouter, log *slog.Logger) *RouterHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RouterHandler{router: r, log: log}
}

// Handle routes ev's records within ctx's deadline. When some are left, it
// reports the one with the lowest sequence number: the event source mapping
// checkpoints before it and redelivers from it, so what came before is not
// sent again and the shard is never held by the whole batch. It never
// returns an error, which would make Lambda retry the whole batch.
func (h *RouterHandler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	recs := records(ev.Records)
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	err := h.router.Route(ctx, recs)
	if err == nil {
		return resp, nil
	}
	lowest, failed := -1, 0
	for i, e := range spate.ItemErrors(err, len(recs)) {
		if e == nil {
			continue
		}
		failed++
		if lowest < 0 || routerSeqLess(recs[i].SequenceNumber, recs[lowest].SequenceNumber) {
			lowest = i
		}
	}
	if lowest < 0 {
		return resp, nil
	}
	h.log.Warn("router: batch item failure", "records", len(recs), "failed", failed,
		"shard", recs[lowest].ShardID, "error", fmt.Sprint(err))
	resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: recs[lowest].SequenceNumber})
	return resp, nil
}

// routerSeqLess orders Kinesis sequence numbers, decimal strings of up to
// 128 bits, numerically.
func routerSeqLess(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// RouterStreams reads the delivery stream of each type from the
// environment: SPATE_FIREHOSE_PREFIX + type (prefix default "spate-"),
// overridden per type by SPATE_FIREHOSE_STREAMS="type=stream,…".
func RouterStreams(types []string, getenv func(string) string) (map[string]string, error) {
	prefix := getenv("SPATE_FIREHOSE_PREFIX")
	if prefix == "" {
		prefix = "spate-"
	}
	known := map[string]bool{}
	streams := map[string]string{}
	for _, t := range types {
		known[t] = true
		streams[t] = prefix + t
	}
	if v := getenv("SPATE_FIREHOSE_STREAMS"); v != "" {
		for _, pair := range strings.Split(v, ",") {
			typ, stream, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || stream == "" || !known[typ] {
				return nil, fmt.Errorf("SPATE_FIREHOSE_STREAMS: %q is not type=stream for a known type", pair)
			}
			streams[typ] = stream
		}
	}
	return streams, nil
}
