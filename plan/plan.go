package plan

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// DefaultActionPrefix names prescale's scheduled actions, so it can tell
// its own (and remove the stale ones) from anyone else's.
const DefaultActionPrefix = "spate-prescale-"

// Action kinds.
const (
	ActionECS            = "ecs_scheduled_action"
	ActionShardCount     = "kinesis_update_shard_count"
	ActionWarmThroughput = "kinesis_warm_throughput"
)

// Action is one change the plan makes ahead of (or after) a broadcast.
type Action struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	// Name and Schedule are the ECS scheduled action's (Schedule is
	// Application Auto Scaling's at() expression, in UTC).
	Name        string `json:"name,omitempty"`
	Schedule    string `json:"schedule,omitempty"`
	MinCapacity int    `json:"min_capacity,omitempty"`
	MaxCapacity int    `json:"max_capacity,omitempty"`
	FromShards  int    `json:"from_shards,omitempty"`
	// TargetShards is UpdateShardCount's TargetShardCount.
	TargetShards int `json:"target_shards,omitempty"`
	// WarmThroughputMiBps is UpdateStreamWarmThroughput's target.
	WarmThroughputMiBps int    `json:"warm_throughput_mibps,omitempty"`
	Reason              string `json:"reason"`
}

// Window is a stretch of time at one planned capacity.
type Window struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Broadcasts []string  `json:"broadcasts"`
	Capacity
}

// Plan is the capacity, the actions and the cost for a schedule.
type Plan struct {
	Region      string      `json:"region"`
	KinesisMode KinesisMode `json:"kinesis_mode"`
	Baseline    Capacity    `json:"baseline"`
	Windows     []Window    `json:"windows"`
	Actions     []Action    `json:"actions"`
	MonthlyCost Cost        `json:"monthly_cost_usd"`
	// Warnings are the plan's own: quota and limit findings that are not
	// tied to one window (those are in the window's quota_warnings).
	Warnings []string `json:"warnings"`

	settings Settings
}

// Build plans capacity for the broadcasts; the ECS scheduled actions are
// named prefix + their UTC time (DefaultActionPrefix when prefix is empty).
func Build(bs []Broadcast, s Settings, prefix string) (*Plan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		return nil, errors.New("plan: no broadcasts")
	}
	if prefix == "" {
		prefix = DefaultActionPrefix
	}
	bs = slices.Clone(bs)
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].Start.Before(bs[j].Start) })
	p := &Plan{Region: s.Region, KinesisMode: s.KinesisMode, Warnings: []string{}, settings: s}
	base := s.BaselineRequestsPerMinute
	p.Baseline = s.CapacityAt(base)

	segs := demand(bs, base, s.LeadTime, s.ScaleInDelay)

	// ECS: one scheduled action per level change; merge close
	// broadcasts until any 2 × horizon holds at most the budget.
	baseTasks := p.Baseline.FargateTasks
	ecs := levels(segs, func(rpm float64) int { return s.CapacityAt(rpm).FargateTasks }, baseTasks)
	budget := s.Quotas.ScheduledActionsPerTarget - s.ReservedScheduledActions
	ecs, ok := fit(fillDips(ecs, s.MergeGap), ecsCheck(s.Horizon, budget))
	if !ok {
		p.Warnings = append(p.Warnings, fmt.Sprintf("ecs: cannot fit the scheduled actions into %d per %s even after merging every broadcast", budget, 2*s.Horizon))
	}

	// Kinesis: shard-count steps (provisioned) or warm throughput.
	var kin []level
	baseKin := p.Baseline.KinesisShards
	if s.KinesisMode == Provisioned {
		kin = levels(segs, func(rpm float64) int { return s.CapacityAt(rpm).KinesisShards }, baseKin)
		kin, ok = fit(fillDips(kin, s.MergeGap), shardCheck(baseKin, s.ReshardTime, s.Quotas.ShardUpdatesPerDay))
		if !ok {
			p.Warnings = append(p.Warnings, fmt.Sprintf("kinesis: the shard steps do not fit %d UpdateShardCount calls per rolling 24 h even with every broadcast merged; raise the baseline shards (--min-shards)", s.Quotas.ShardUpdatesPerDay))
		}
	} else {
		baseKin = p.Baseline.KinesisWriteMiBps
		kin = fillDips(levels(segs, func(rpm float64) int { return s.CapacityAt(rpm).KinesisWriteMiBps }, baseKin), s.MergeGap)
	}

	p.Windows = s.windows(segs, ecs, kin, baseTasks, baseKin)
	p.Actions = s.ecsActions(ecs, baseTasks, prefix, p)
	if s.KinesisMode == Provisioned {
		p.Actions = append(p.Actions, s.shardActions(kin, baseKin, p)...)
	} else {
		p.Actions = append(p.Actions, s.warmActions(kin, baseKin, p)...)
	}
	sort.SliceStable(p.Actions, func(i, j int) bool { return p.Actions[i].At.Before(p.Actions[j].At) })
	p.MonthlyCost = s.monthlyCost(p, demand(bs, base, 0, 0), ecs, kin, baseTasks, baseKin)
	if len(s.Prices.Unverified) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("cost: %d default prices for %s are not confirmed from a public source (%s): check them (docs/capacity.md) or pass them as --price-* flags", len(s.Prices.Unverified), s.Region, strings.Join(s.Prices.Unverified, ", ")))
	}
	return p, nil
}

// levelAt is the level in force at t (base outside the timeline).
func levelAt(tl []level, t time.Time, base int) int {
	for _, l := range tl {
		if !t.Before(l.Start) && t.Before(l.End) {
			return l.N
		}
	}
	return base
}

// windows cuts time at every demand, ECS and Kinesis boundary and keeps
// the stretches that differ from the baseline.
func (s Settings) windows(segs []segment, ecs, kin []level, baseTasks, baseKin int) []Window {
	var edges []time.Time
	for _, sg := range segs {
		edges = append(edges, sg.Start, sg.End)
	}
	for _, tl := range [][]level{ecs, kin} {
		for _, l := range tl {
			edges = append(edges, l.Start, l.End)
		}
	}
	sort.Slice(edges, func(i, j int) bool { return edges[i].Before(edges[j]) })
	edges = slices.CompactFunc(edges, func(a, b time.Time) bool { return a.Equal(b) })
	base := s.BaselineRequestsPerMinute
	var out []Window
	for i := 0; i+1 < len(edges); i++ {
		start, end := edges[i], edges[i+1]
		rpm, titles := base, []string{}
		for _, sg := range segs {
			if !start.Before(sg.Start) && start.Before(sg.End) {
				rpm, titles = sg.RPM, append(titles, sg.Titles...)
			}
		}
		tasks := levelAt(ecs, start, baseTasks)
		k := levelAt(kin, start, baseKin)
		if rpm == base && tasks == baseTasks && k == baseKin {
			continue
		}
		w := Window{Start: start, End: end, Broadcasts: titles, Capacity: s.CapacityAt(rpm)}
		w.FargateTasks = max(w.FargateTasks, tasks)
		w.FargateMaxTasks = max(w.FargateMaxTasks, ceilN(float64(w.FargateTasks)*s.MaxTasksFactor))
		w.FargateVCPU = float64(w.FargateTasks) * s.TaskVCPU
		if s.KinesisMode == Provisioned {
			w.KinesisShards = max(w.KinesisShards, k)
		} else {
			w.KinesisWriteMiBps = max(w.KinesisWriteMiBps, k)
		}
		w.RouterConcurrency = w.KinesisShards * s.ParallelizationFactor
		w.LambdaConcurrency = w.RouterConcurrency * s.StreamConsumers
		dRecords := w.EventsPerSecond * (1 + s.Headroom) / s.eventsPerRecord()
		w.RouterInvocationsPerSecond = routerInvocations(s, dRecords, w.RouterConcurrency)
		w.Firehose = s.firehoseStreams(w.EventsPerSecond*(1+s.Headroom), w.RouterInvocationsPerSecond)
		w.QuotaWarnings = s.quotaWarnings(w.Capacity, dRecords)
		out = append(out, w)
	}
	return out
}

func (s Settings) ecsActions(tl []level, base int, prefix string, p *Plan) []Action {
	var out []Action
	for b := 0; b <= len(tl) && len(tl) > 0; b++ {
		from, to := boundaryLevels(tl, b, base)
		at := boundaryAt(tl, b)
		a := Action{
			At:          at,
			Kind:        ActionECS,
			Name:        prefix + at.UTC().Format("20060102T1504Z"),
			Schedule:    "at(" + at.UTC().Format("2006-01-02T15:04:05") + ")",
			MinCapacity: to,
			MaxCapacity: max(to, ceilN(float64(to)*s.MaxTasksFactor)),
		}
		if to > from {
			a.Reason = fmt.Sprintf("scale out %d→%d tasks for %s", from, to, strings.Join(p.titlesAt(at), " + "))
			if need := s.launchTime(to - from); need > s.LeadTime {
				p.Warnings = append(p.Warnings, fmt.Sprintf("ecs: %s launches %d tasks, %s at %.0f tasks/min per service, longer than the %s lead time", a.Name, to-from, need, s.Quotas.TaskLaunchesPerMinute, s.LeadTime))
			}
		} else {
			a.Reason = fmt.Sprintf("scale in %d→%d tasks", from, to)
		}
		out = append(out, a)
	}
	return out
}

func (s Settings) shardActions(tl []level, base int, p *Plan) []Action {
	var out []Action
	for _, c := range shardCalls(tl, base, s.ReshardTime) {
		a := Action{At: c.At, Kind: ActionShardCount, FromShards: c.From, TargetShards: c.To}
		if c.To > c.From {
			a.Reason = fmt.Sprintf("reshard up %d→%d, done by %s", c.From, c.To, c.At.Add(s.ReshardTime).UTC().Format("15:04Z"))
		} else {
			a.Reason = fmt.Sprintf("reshard down %d→%d", c.From, c.To)
		}
		// Resharding splits or merges shards; the short-lived parents
		// count against the account's shard quota while it runs.
		if c.From+c.To > s.Quotas.KinesisShards {
			p.Warnings = append(p.Warnings, fmt.Sprintf("kinesis: resharding %d→%d at %s briefly holds about %d shards, over the quota of %d", c.From, c.To, c.At.UTC().Format(time.RFC3339), c.From+c.To, s.Quotas.KinesisShards))
		}
		out = append(out, a)
	}
	return out
}

// warmActions sets on-demand warm throughput ahead of each rise (when the
// account can) or warns where a rise is beyond what on-demand absorbs
// from its recent peak.
func (s Settings) warmActions(tl []level, base int, p *Plan) []Action {
	var out []Action
	if len(tl) == 0 {
		return nil
	}
	type peak struct {
		at time.Time
		n  int
	}
	var history []peak
	for b := 0; b <= len(tl); b++ {
		from, to := boundaryLevels(tl, b, base)
		at := boundaryAt(tl, b)
		recent := max(base, OnDemandDefaultMiBps)
		for _, h := range history {
			if at.Sub(h.at) <= OnDemandPeakMemory {
				recent = max(recent, h.n)
			}
		}
		if to > from {
			if s.WarmThroughput {
				out = append(out, Action{At: at.Add(-s.ReshardTime), Kind: ActionWarmThroughput, WarmThroughputMiBps: to, Reason: fmt.Sprintf("warm %d→%d MiB/s for %s", from, to, strings.Join(p.titlesAt(at), " + "))})
			} else if to > OnDemandBurstFactor*recent {
				p.Warnings = append(p.Warnings, fmt.Sprintf("kinesis: at %s the on-demand stream needs %d MiB/s but absorbs only %d× its recent peak (%d MiB/s) without warm throughput: enable warm throughput (--warm-throughput) or use provisioned mode", at.UTC().Format(time.RFC3339), to, OnDemandBurstFactor, recent))
			}
		} else if s.WarmThroughput {
			out = append(out, Action{At: at, Kind: ActionWarmThroughput, WarmThroughputMiBps: to, Reason: fmt.Sprintf("release warm throughput %d→%d MiB/s", from, to)})
		}
		if b < len(tl) {
			history = append(history, peak{at: tl[b].End, n: tl[b].N})
		}
	}
	return out
}

// titlesAt names the broadcasts a window starting at t is for.
func (p *Plan) titlesAt(t time.Time) []string {
	for _, w := range p.Windows {
		if !t.Before(w.Start) && t.Before(w.End) && len(w.Broadcasts) > 0 {
			return w.Broadcasts
		}
	}
	for _, w := range p.Windows {
		if !w.Start.Before(t) && len(w.Broadcasts) > 0 {
			return w.Broadcasts
		}
	}
	return []string{"merged broadcasts"}
}

// ECSActions returns the plan's ECS scheduled actions.
func (p *Plan) ECSActions() []Action { return p.actions(ActionECS) }

func (p *Plan) actions(kind string) []Action {
	var out []Action
	for _, a := range p.Actions {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// ShardsAt is the shard count the stream should be at, or be moving to,
// at t: the target of the last shard step due by then.
func (p *Plan) ShardsAt(t time.Time) int {
	n := p.Baseline.KinesisShards
	for _, a := range p.actions(ActionShardCount) {
		if !a.At.After(t) {
			n = a.TargetShards
		}
	}
	return n
}

// WarmThroughputAt is the on-demand warm throughput due at t (0 when the
// plan sets none).
func (p *Plan) WarmThroughputAt(t time.Time) int {
	n := 0
	for _, a := range p.actions(ActionWarmThroughput) {
		if !a.At.After(t) {
			n = a.WarmThroughputMiBps
		}
	}
	return n
}
