package awslambda

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/spate-dev/spate/aggregate"
	"github.com/spate-dev/spate/reward"
)

// RewardSender delivers aggregates; reward.Sender is one.
type RewardSender interface {
	Deliver(ctx context.Context, a aggregate.Aggregate) error
	Discard(ctx context.Context, data []byte, reason string) error
}

// RewardHandler is the reward Lambda: an event source mapping on the
// aggregates stream (ReportBatchItemFailures on) invokes it; it delivers
// each aggregate to every reward API and reports the first one it could
// not finish, so the mapping redelivers from there.
type RewardHandler struct {
	sender RewardSender
	margin time.Duration
	log    *slog.Logger
}

var _ RewardSender = (*reward.Sender)(nil)

// NewRewardHandler returns the handler delivering with s. margin is kept
// free before the invocation's deadline to return the failure report
// (default 2 s): a timed-out invocation reports nothing and the whole
// batch comes back.
func NewRewardHandler(s RewardSender, margin time.Duration, log *slog.Logger) *RewardHandler {
	if margin <= 0 {
		margin = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RewardHandler{sender: s, margin: margin, log: log}
}

// Handle delivers ev's aggregates in order. A record that can never
// succeed — not an aggregate, or refused by an API with a 4xx — is
// dead-lettered and skipped on its first attempt. At the first aggregate still
// owed to some API it stops and reports that record: those before it are
// done, those after it come back with it (their idempotency keys make
// repeats harmless). It never returns an error, which would retry the
// whole batch.
func (h *RewardHandler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-h.margin))
		defer cancel()
	}
	for i, r := range streamRecords(ev.Records) {
		seq := r.SequenceNumber
		// Dead letters name the record they came from.
		rctx := reward.WithSource(ctx, reward.Source{Shard: r.ShardID, Sequence: seq, ArrivedAt: r.ArrivedAt})
		err := h.handle(rctx, r.Data)
		if err == nil {
			continue
		}
		h.log.Warn("reward: batch item failure", "records", len(ev.Records), "done", i, "error", err.Error())
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: seq})
		return resp, nil
	}
	return resp, nil
}

func (h *RewardHandler) handle(ctx context.Context, data []byte) error {
	a, err := aggregate.Decode(data)
	if err != nil {
		return h.sender.Discard(ctx, data, err.Error())
	}
	return h.sender.Deliver(ctx, a)
}

// RewardURL is one reward API of one model.
type RewardURL struct {
	Model, URL string
}

// ParseRewardURLs reads SPATE_REWARD_ENDPOINTS: "model=url,model=url", a
// model may appear more than once (one call per URL). URLs must be https:
// rewards carry content ids and counts a model is trained on, and cross
// networks. allowHTTP (SPATE_REWARD_ALLOW_HTTP=true) admits http:// for
// tests against loopback stand-ins.
func ParseRewardURLs(v string, allowHTTP bool) ([]RewardURL, error) {
	var out []RewardURL
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		model, u, ok := strings.Cut(pair, "=")
		model, u = strings.TrimSpace(model), strings.TrimSpace(u)
		if !ok || model == "" || u == "" {
			return nil, fmt.Errorf("reward endpoint %q: want model=url", pair)
		}
		if !strings.HasPrefix(u, "https://") && !(allowHTTP && strings.HasPrefix(u, "http://")) {
			return nil, fmt.Errorf("reward endpoint for model %q: want an https:// URL (http:// only with SPATE_REWARD_ALLOW_HTTP=true)", model)
		}
		out = append(out, RewardURL{Model: model, URL: u})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no reward endpoints in %q", v)
	}
	return out, nil
}
