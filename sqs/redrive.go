package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/time/rate"

	"github.com/spate-dev/spate"
)

// RedriveAPI is the part of the SQS client the Redriver uses: it receives
// and deletes DLQ messages, re-enqueues what the stream refused again, and
// hands back messages it received but did not get to.
type RedriveAPI interface {
	SendAPI
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// PermanentReason starts the reason of a message whose records the stream
// refused for good (too large, invalid). The Redriver never puts such a
// message again: it stays in the queue for the queue's own redrive policy
// to move aside, where an operator can read why.
const PermanentReason = "permanent: "

// RedriveConfig holds the Redriver's knobs; zero values take the defaults.
type RedriveConfig struct {
	// MaxMessages per ReceiveMessage, 1 to 10 (default 10).
	MaxMessages int
	// WaitTime is the long poll of one receive, at most 20 s (default
	// 20 s); negative receives without waiting.
	WaitTime time.Duration
	// VisibilityTimeout hides a received message from other consumers
	// while it is redriven; whole seconds, 0 takes the queue's own.
	VisibilityTimeout time.Duration
	// Rate bounds records put per second, so a just-recovered stream is
	// not hit by a retry storm (default 500). Burst is how many may go at
	// once (default Rate, at least 1).
	Rate  float64
	Burst int
	// Healthy reports whether the stream can take records; while it says
	// no, nothing is received. Nil means always healthy.
	Healthy func() bool
	// HealthPoll is how often Healthy is asked again (default 1 s).
	HealthPoll time.Duration
	// MinBackoff and MaxBackoff bound the pause after the stream refused a
	// whole message or SQS failed a call (defaults 1 s and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// MessageTimeout bounds the put, re-enqueue and delete of one message;
	// it is not cut short by Run's context, so a message being redriven
	// when the service stops is finished, not half-done (default 30 s).
	MessageTimeout time.Duration
	// StopWhenEmpty makes Run return once a receive comes back empty.
	StopWhenEmpty bool
	// Limit stops Run after this many messages were handled (0: none).
	Limit int
	// DryRun decodes and counts without putting or deleting; messages are
	// made visible again when Run returns.
	DryRun bool
	// DLQ configures how refused records are re-enqueued.
	DLQ DLQConfig
	// Payloads reads the payloads of records a message points at in S3
	// (records too big for the queue). Without it such a message is left
	// as poison.
	Payloads PayloadReader
	// OnMessage, when set, sees every handled message (progress output).
	OnMessage func(MessageResult)
}

// Outcome is what became of one received message.
type Outcome string

// Outcomes of a received message.
const (
	// Redriven: every record is in the stream; the message is deleted.
	Redriven Outcome = "redriven"
	// Requeued: the records the stream refused went back to the queue in
	// a new message; the original is deleted.
	Requeued Outcome = "requeued"
	// Retained: the stream took none of the records, or the re-enqueue or
	// delete failed; the message stays and comes back after its
	// visibility timeout.
	Retained Outcome = "retained"
	// Poison: the message could not be decoded or holds records the
	// stream refuses for good; it stays for the queue's redrive policy.
	Poison Outcome = "poison"
	// Counted: a dry run read the message.
	Counted Outcome = "counted"
	// Released: received but handed back untouched (stopping, or the
	// stream turned unhealthy).
	Released Outcome = "released"
)

// MessageResult describes one handled message, without payloads.
type MessageResult struct {
	MessageID    string
	Outcome      Outcome
	Records      int // records in the message
	Put          int // records the stream took
	Requeued     int // records re-enqueued
	ReceiveCount int // SQS ApproximateReceiveCount
	Reason       string
	Err          error
}

// RedriveStats is a snapshot of the Redriver's counters.
type RedriveStats struct {
	Receives        int64 `json:"receives"`         // ReceiveMessage calls
	Messages        int64 `json:"messages"`         // messages received
	Redriven        int64 `json:"redriven"`         // messages fully redriven and deleted
	Requeued        int64 `json:"requeued"`         // messages replaced by a smaller one
	Retained        int64 `json:"retained"`         // messages left because nothing or not all was done
	Poison          int64 `json:"poison"`           // undecodable or permanently refused messages seen
	Released        int64 `json:"released"`         // messages handed back untouched
	Records         int64 `json:"records"`          // records put in the stream (or counted, in a dry run)
	RequeuedRecords int64 `json:"requeued_records"` // records re-enqueued
	Errors          int64 `json:"errors"`           // failed SQS calls
}

// Redriver moves DLQ messages back into the stream.
type Redriver struct {
	api      RedriveAPI
	queueURL string
	sink     spate.Sink
	requeue  *DLQ
	cfg      RedriveConfig
	limiter  *rate.Limiter
	log      *slog.Logger

	mu   sync.Mutex
	held map[string]string // dry run: message id → receipt handle
	// poison remembers undecodable messages already reported, so one that
	// keeps coming back is logged once and does not keep a run going.
	poisonSeen map[string]bool

	receives, messages, redriven, requeued, retained, poison, released atomic.Int64
	records, requeuedRecords, errs                                     atomic.Int64
}

// NewRedriver returns a Redriver that puts the records of queueURL's
// messages into sink (the stream itself, not its fallback to this queue).
func NewRedriver(api RedriveAPI, queueURL string, sink spate.Sink, cfg RedriveConfig, log *slog.Logger) (*Redriver, error) {
	if queueURL == "" {
		return nil, errors.New("redrive: queue URL required")
	}
	if cfg.MaxMessages == 0 {
		cfg.MaxMessages = 10
	}
	if cfg.MaxMessages < 1 || cfg.MaxMessages > 10 {
		return nil, fmt.Errorf("redrive: max messages %d: want 1 to 10", cfg.MaxMessages)
	}
	if cfg.WaitTime == 0 {
		cfg.WaitTime = 20 * time.Second
	}
	if cfg.WaitTime < 0 {
		cfg.WaitTime = 0
	} else if cfg.WaitTime > 20*time.Second {
		return nil, fmt.Errorf("redrive: wait time %s: want at most 20s", cfg.WaitTime)
	}
	if cfg.VisibilityTimeout < 0 || cfg.VisibilityTimeout > 12*time.Hour {
		return nil, fmt.Errorf("redrive: visibility timeout %s: want 0 to 12h", cfg.VisibilityTimeout)
	}
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("redrive: rate %g: want a positive rate", cfg.Rate)
	}
	if cfg.Rate == 0 {
		cfg.Rate = 500
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(int(cfg.Rate), 1)
	}
	if cfg.HealthPoll <= 0 {
		cfg.HealthPoll = time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.MessageTimeout <= 0 {
		cfg.MessageTimeout = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Redriver{
		api: api, queueURL: queueURL, sink: sink, cfg: cfg, log: log,
		requeue:    NewDLQ(api, queueURL, cfg.DLQ),
		limiter:    rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst),
		held:       map[string]string{},
		poisonSeen: map[string]bool{},
	}, nil
}

// Stats returns a snapshot of the counters.
func (r *Redriver) Stats() RedriveStats {
	return RedriveStats{
		Receives: r.receives.Load(), Messages: r.messages.Load(), Redriven: r.redriven.Load(),
		Requeued: r.requeued.Load(), Retained: r.retained.Load(), Poison: r.poison.Load(),
		Released: r.released.Load(), Records: r.records.Load(),
		RequeuedRecords: r.requeuedRecords.Load(), Errors: r.errs.Load(),
	}
}

func (r *Redriver) healthy() bool { return r.cfg.Healthy == nil || r.cfg.Healthy() }

// Run redrives until ctx ends (then it returns nil), the queue is empty
// with StopWhenEmpty, or Limit messages were handled. Messages received but
// not handled are made visible again before it returns.
func (r *Redriver) Run(ctx context.Context) error {
	defer r.releaseHeld()
	backoff := r.cfg.MinBackoff
	handled := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		if r.cfg.Limit > 0 && handled >= r.cfg.Limit {
			return nil
		}
		if !r.healthy() {
			if !wait(ctx, r.cfg.HealthPoll) {
				return nil
			}
			continue
		}
		want := r.cfg.MaxMessages
		if r.cfg.Limit > 0 {
			want = min(want, r.cfg.Limit-handled)
		}
		msgs, err := r.receive(ctx, want)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.errs.Add(1)
			r.log.Warn("dlq receive failed", "err", err, "backoff", backoff.String())
			if !wait(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, r.cfg.MaxBackoff)
			continue
		}
		if len(msgs) == 0 || r.allPoison(msgs) {
			if r.cfg.StopWhenEmpty {
				return nil
			}
			continue
		}
		if r.cfg.DryRun && r.allSeen(msgs) {
			// Their visibility timeout ran out during the dry run: every
			// message has been counted.
			return nil
		}
		stalled := false
		for i, m := range msgs {
			if ctx.Err() != nil || !r.healthy() {
				r.release(msgs[i:])
				break
			}
			res := r.handle(ctx, m)
			handled++
			if r.cfg.OnMessage != nil {
				r.cfg.OnMessage(res)
			}
			if res.Outcome == Released {
				// Only a context that ended, or whose deadline comes
				// before the rate allows the message, releases one.
				r.release(msgs[i+1:])
				return nil
			}
			if res.Outcome == Retained {
				// The stream or SQS is failing: hand the rest back and
				// pause, rather than hammer a service that is down.
				r.release(msgs[i+1:])
				stalled = true
				break
			}
		}
		if stalled {
			if !wait(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, r.cfg.MaxBackoff)
		} else {
			backoff = r.cfg.MinBackoff
		}
	}
}

func (r *Redriver) receive(ctx context.Context, n int) ([]types.Message, error) {
	in := &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(r.queueURL),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(r.cfg.WaitTime / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		// The older name too: SQS accepts both, some emulators only it.
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeName(types.MessageSystemAttributeNameApproximateReceiveCount)},
	}
	if r.cfg.VisibilityTimeout > 0 {
		in.VisibilityTimeout = int32((r.cfg.VisibilityTimeout + time.Second - 1) / time.Second)
	}
	r.receives.Add(1)
	out, err := r.api.ReceiveMessage(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("sqs receive %s: %w", r.queueURL, err)
	}
	msgs := dedupe(out.Messages)
	r.messages.Add(int64(len(msgs)))
	return msgs, nil
}

// dedupe keeps one entry per message, with its latest receipt handle (the
// one SQS honours). SQS itself never repeats a message within a response,
// but an emulator may, and handling it twice would put its records twice.
func dedupe(msgs []types.Message) []types.Message {
	at := make(map[string]int, len(msgs))
	out := msgs[:0:0]
	for _, m := range msgs {
		id := aws.ToString(m.MessageId)
		if i, ok := at[id]; ok {
			out[i] = m
			continue
		}
		at[id] = len(out)
		out = append(out, m)
	}
	return out
}

func (r *Redriver) handle(ctx context.Context, m types.Message) MessageResult {
	res := MessageResult{MessageID: aws.ToString(m.MessageId)}
	res.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if r.cfg.DryRun {
		// Held until Run returns, then made visible again: a dry run
		// leaves the queue as it found it.
		r.mu.Lock()
		r.held[res.MessageID] = aws.ToString(m.ReceiptHandle)
		r.mu.Unlock()
	}
	msg, recs, err := DecodeMessage([]byte(aws.ToString(m.Body)))
	res.Records, res.Reason = len(recs), msg.Reason
	if err == nil && strings.HasPrefix(msg.Reason, PermanentReason) {
		err = errors.New("records refused for good: " + msg.Reason)
	}
	if err != nil {
		// Deleting it would lose whatever it holds; the queue's redrive
		// policy moves it aside after maxReceiveCount receives.
		r.poison.Add(1)
		res.Outcome, res.Err = Poison, err
		if !r.poisonSeen[res.MessageID] {
			if len(r.poisonSeen) >= maxPoisonSeen {
				clear(r.poisonSeen)
			}
			r.poisonSeen[res.MessageID] = true
			r.log.Error("dlq message cannot be redriven; left for the queue's redrive policy",
				"message_id", res.MessageID, "receive_count", res.ReceiveCount, "err", err)
		}
		return res
	}
	if r.cfg.DryRun {
		r.records.Add(int64(len(recs)))
		res.Outcome = Counted
		return res
	}
	if err := r.fetch(ctx, msg, recs); err != nil {
		if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrPayloadOmitted) {
			// Nothing to put: a letter of coordinates only is read from
			// the stream by an operator while it still holds the record.
			r.poison.Add(1)
			res.Outcome, res.Err = Poison, err
			r.log.Error("dlq message points at a payload it cannot have; left for the queue's redrive policy",
				"message_id", res.MessageID, "err", err)
			return res
		}
		r.errs.Add(1)
		r.retained.Add(1)
		res.Outcome, res.Err = Retained, err
		r.log.Warn("dlq payload read failed; message retained", "message_id", res.MessageID, "err", err)
		return res
	}
	for left := len(recs); left > 0; {
		n := min(left, r.limiter.Burst())
		if err := r.limiter.WaitN(ctx, n); err != nil {
			r.release([]types.Message{m})
			res.Outcome = Released
			return res
		}
		left -= n
	}

	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.MessageTimeout)
	defer cancel()
	errs := spate.ItemErrors(r.sink.Put(mctx, recs), len(recs))
	var retry, permanent []spate.Record
	var retryWhy, permWhy string
	for i, e := range errs {
		switch {
		case e == nil:
			res.Put++
		case errors.Is(e, spate.ErrTooLarge) || errors.Is(e, spate.ErrInvalid):
			permanent = append(permanent, recs[i])
			if permWhy == "" {
				permWhy = PermanentReason + e.Error()
			}
		default:
			retry = append(retry, recs[i])
			if retryWhy == "" {
				retryWhy = "redrive: " + e.Error()
			}
		}
	}
	r.records.Add(int64(res.Put))
	if res.Put == 0 && len(retry) > 0 {
		// The stream took nothing: keep the message as it is; it comes
		// back after its visibility timeout.
		r.retained.Add(1)
		res.Outcome, res.Err = Retained, errs[0]
		r.log.Warn("stream refused a dlq message; retained", "message_id", res.MessageID, "records", len(recs), "err", errs[0])
		return res
	}
	// Only the refused records go back, so what the stream took is not
	// put again when the queue is redriven next.
	for _, part := range []struct {
		recs []spate.Record
		why  string
	}{{retry, retryWhy}, {permanent, permWhy}} {
		if len(part.recs) == 0 {
			continue
		}
		if err := r.requeue.PutReason(mctx, part.recs, part.why); err != nil {
			// Keeping the original loses nothing; what the stream took
			// from it is put again next time (at least once).
			r.errs.Add(1)
			r.retained.Add(1)
			res.Outcome, res.Err = Retained, err
			r.log.Error("re-enqueue of refused records failed; message retained", "message_id", res.MessageID, "records", len(part.recs), "err", err)
			return res
		}
		res.Requeued += len(part.recs)
	}
	if _, err := r.api.DeleteMessage(mctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		r.errs.Add(1)
		r.retained.Add(1)
		res.Outcome, res.Err = Retained, fmt.Errorf("sqs delete: %w", err)
		r.log.Error("dlq delete failed; its records will be redriven again", "message_id", res.MessageID, "err", err)
		return res
	}
	if res.Requeued > 0 {
		r.requeued.Add(1)
		r.requeuedRecords.Add(int64(res.Requeued))
		res.Outcome = Requeued
		return res
	}
	r.redriven.Add(1)
	res.Outcome = Redriven
	return res
}

// fetch reads the payloads msg keeps in S3 into recs, within
// MessageTimeout.
func (r *Redriver) fetch(ctx context.Context, msg Message, recs []spate.Record) error {
	fctx, cancel := context.WithTimeout(ctx, r.cfg.MessageTimeout)
	defer cancel()
	return FetchPayloads(fctx, r.cfg.Payloads, msg, recs)
}

// maxPoisonSeen bounds the memory of reported poison messages.
const maxPoisonSeen = 10_000

// allPoison reports whether every message is poison already reported:
// nothing left to do but wait for the queue's redrive policy.
func (r *Redriver) allPoison(msgs []types.Message) bool {
	for _, m := range msgs {
		if !r.poisonSeen[aws.ToString(m.MessageId)] {
			return false
		}
	}
	r.poison.Add(int64(len(msgs)))
	return true
}

func (r *Redriver) allSeen(msgs []types.Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		if _, ok := r.held[aws.ToString(m.MessageId)]; !ok {
			return false
		}
	}
	// Only the latest receipt handle can change a message's visibility.
	for _, m := range msgs {
		r.held[aws.ToString(m.MessageId)] = aws.ToString(m.ReceiptHandle)
	}
	return true
}

// release makes messages visible again at once, for this or another
// redriver; it runs on the way out, so not under the caller's context.
func (r *Redriver) release(msgs []types.Message) {
	for _, m := range msgs {
		r.changeVisibility(aws.ToString(m.MessageId), m.ReceiptHandle)
	}
}

func (r *Redriver) releaseHeld() {
	r.mu.Lock()
	held := r.held
	r.held = map[string]string{}
	r.mu.Unlock()
	for id, receipt := range held {
		r.changeVisibility(id, aws.String(receipt))
	}
}

func (r *Redriver) changeVisibility(id string, receipt *string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := r.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(r.queueURL), ReceiptHandle: receipt, VisibilityTimeout: 0,
	})
	if err != nil {
		r.errs.Add(1)
		r.log.Warn("dlq release failed; message returns after its visibility timeout", "message_id", id, "err", err)
		return
	}
	r.released.Add(1)
}

// wait pauses for d or until ctx ends; false means ctx ended.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
