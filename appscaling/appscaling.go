// Package appscaling adapts Application Auto Scaling to prescaling: it
// keeps a scalable target's scheduled actions equal to a plan's, touching
// only the actions whose names carry its prefix.
package appscaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
)

// MaxScheduledActions is Application Auto Scaling's limit of scheduled
// actions per scalable target (not adjustable).
const MaxScheduledActions = 200

// API is the part of the Application Auto Scaling client prescale uses.
type API interface {
	PutScheduledAction(ctx context.Context, in *aas.PutScheduledActionInput, opts ...func(*aas.Options)) (*aas.PutScheduledActionOutput, error)
	DescribeScheduledActions(ctx context.Context, in *aas.DescribeScheduledActionsInput, opts ...func(*aas.Options)) (*aas.DescribeScheduledActionsOutput, error)
	DeleteScheduledAction(ctx context.Context, in *aas.DeleteScheduledActionInput, opts ...func(*aas.Options)) (*aas.DeleteScheduledActionOutput, error)
}

// Target is a scalable target.
type Target struct {
	Namespace  types.ServiceNamespace
	ResourceID string
	Dimension  types.ScalableDimension
}

// ECSService is an ECS service's desired count as a scalable target.
func ECSService(cluster, service string) Target {
	return Target{
		Namespace:  types.ServiceNamespaceEcs,
		ResourceID: "service/" + cluster + "/" + service,
		Dimension:  types.ScalableDimensionECSServiceDesiredCount,
	}
}

func (t Target) String() string { return t.ResourceID + " " + string(t.Dimension) }

// Action is a scheduled action: at Schedule (an at() expression in UTC),
// set the target's minimum and maximum capacity.
type Action struct {
	Name        string
	Schedule    string
	MinCapacity int32
	MaxCapacity int32
}

// Op is what Sync does to one action.
type Op string

// Sync's operations.
const (
	Put    Op = "put"    // created or changed
	Keep   Op = "keep"   // already as planned
	Delete Op = "delete" // prescale's, no longer planned
)

// Change is one action and what Sync did (or, dry, would do) to it.
type Change struct {
	Op     Op
	Action Action
}

// ErrTooManyActions is returned when the planned actions and the target's
// other actions together exceed MaxScheduledActions.
var ErrTooManyActions = errors.New("too many scheduled actions for the scalable target")

// Scheduler keeps one target's prefixed scheduled actions in line with a
// plan.
type Scheduler struct {
	api    API
	target Target
	prefix string
	log    *slog.Logger
}

// New returns a Scheduler for target managing the actions named prefix*.
func New(api API, target Target, prefix string, log *slog.Logger) (*Scheduler, error) {
	if prefix == "" {
		return nil, errors.New("appscaling: empty action name prefix would claim every action")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{api: api, target: target, prefix: prefix, log: log.With("target", target.ResourceID)}, nil
}

// List returns every scheduled action on the target.
func (s *Scheduler) List(ctx context.Context) ([]Action, error) {
	var out []Action
	in := &aas.DescribeScheduledActionsInput{
		ServiceNamespace:  s.target.Namespace,
		ResourceId:        aws.String(s.target.ResourceID),
		ScalableDimension: s.target.Dimension,
		MaxResults:        aws.Int32(50),
	}
	for {
		page, err := s.api.DescribeScheduledActions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("appscaling describe scheduled actions %s: %w", s.target, err)
		}
		for _, a := range page.ScheduledActions {
			act := Action{Name: aws.ToString(a.ScheduledActionName), Schedule: aws.ToString(a.Schedule)}
			if a.ScalableTargetAction != nil {
				act.MinCapacity = aws.ToInt32(a.ScalableTargetAction.MinCapacity)
				act.MaxCapacity = aws.ToInt32(a.ScalableTargetAction.MaxCapacity)
			}
			out = append(out, act)
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// Sync makes the target's prefixed actions exactly want: actions missing
// or different are put, prefixed actions not in want are deleted (stale
// ones, already run or dropped from the plan), others' actions are left
// alone. Running it twice changes nothing the second time. With dry it
// only reports. Deletes go first so the puts have room under the limit.
func (s *Scheduler) Sync(ctx context.Context, want []Action, dry bool) ([]Change, error) {
	for _, a := range want {
		if !strings.HasPrefix(a.Name, s.prefix) {
			return nil, fmt.Errorf("appscaling sync %s: action %q lacks the prefix %q", s.target, a.Name, s.prefix)
		}
	}
	have, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	others := 0
	mine := map[string]Action{}
	for _, a := range have {
		if strings.HasPrefix(a.Name, s.prefix) {
			mine[a.Name] = a
		} else {
			others++
		}
	}
	if others+len(want) > MaxScheduledActions {
		return nil, fmt.Errorf("appscaling sync %s: %w: %d planned + %d others > %d", s.target, ErrTooManyActions, len(want), others, MaxScheduledActions)
	}
	wanted := map[string]bool{}
	var changes []Change
	for _, a := range want {
		wanted[a.Name] = true
	}
	var stale []string
	for name := range mine {
		if !wanted[name] {
			stale = append(stale, name)
		}
	}
	slices.Sort(stale)
	for _, name := range stale {
		changes = append(changes, Change{Op: Delete, Action: mine[name]})
		if dry {
			continue
		}
		_, err := s.api.DeleteScheduledAction(ctx, &aas.DeleteScheduledActionInput{
			ServiceNamespace:    s.target.Namespace,
			ResourceId:          aws.String(s.target.ResourceID),
			ScalableDimension:   s.target.Dimension,
			ScheduledActionName: aws.String(name),
		})
		var nf *types.ObjectNotFoundException
		if err != nil && !errors.As(err, &nf) { // gone already: fine
			return changes, fmt.Errorf("appscaling delete scheduled action %s: %w", name, err)
		}
		s.log.Info("scheduled action deleted", "name", name)
	}
	for _, a := range want {
		if cur, ok := mine[a.Name]; ok && cur == a {
			changes = append(changes, Change{Op: Keep, Action: a})
			continue
		}
		changes = append(changes, Change{Op: Put, Action: a})
		if dry {
			continue
		}
		_, err := s.api.PutScheduledAction(ctx, &aas.PutScheduledActionInput{
			ServiceNamespace:    s.target.Namespace,
			ResourceId:          aws.String(s.target.ResourceID),
			ScalableDimension:   s.target.Dimension,
			ScheduledActionName: aws.String(a.Name),
			Schedule:            aws.String(a.Schedule),
			Timezone:            aws.String("UTC"),
			ScalableTargetAction: &types.ScalableTargetAction{
				MinCapacity: aws.Int32(a.MinCapacity),
				MaxCapacity: aws.Int32(a.MaxCapacity),
			},
		})
		if err != nil {
			return changes, fmt.Errorf("appscaling put scheduled action %s: %w", a.Name, err)
		}
		s.log.Info("scheduled action put", "name", a.Name, "schedule", a.Schedule, "min", a.MinCapacity, "max", a.MaxCapacity)
	}
	return changes, nil
}
