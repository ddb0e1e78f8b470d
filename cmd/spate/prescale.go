package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/spate-dev/spate/appscaling"
	"github.com/spate-dev/spate/internal/clock"
	"github.com/spate-dev/spate/kinesis"
	"github.com/spate-dev/spate/plan"
)

// TFVarsVariable is the terraform variable prescale's --tfvars file sets:
// a list of {name, schedule, min_capacity, max_capacity} objects, one
// Application Auto Scaling scheduled action each (docs/capacity.md).
const TFVarsVariable = "ecs_scheduled_actions"

// prescaleClients are the AWS clients prescale drives.
type prescaleClients struct {
	scaling appscaling.API
	kinesis kinesis.CapacityAPI
}

type clientFactory func(ctx context.Context, region string) (prescaleClients, error)

func awsClients(ctx context.Context, region string) (prescaleClients, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return prescaleClients{}, fmt.Errorf("aws config: %w", err)
	}
	return prescaleClients{scaling: aas.NewFromConfig(cfg), kinesis: awskinesis.NewFromConfig(cfg)}, nil
}

func runPrescale(ctx context.Context, env *environment, args []string) error {
	return prescale(ctx, env, args, awsClients)
}

func prescale(ctx context.Context, env *environment, args []string, clients clientFactory) error {
	fs := flag.NewFlagSet("prescale", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	opts := addPlanFlags(fs, env.getenv)
	cluster := fs.String("cluster", env.getenv("SPATE_ECS_CLUSTER"), "ECS cluster of the ingest service (default $SPATE_ECS_CLUSTER)")
	service := fs.String("service", env.getenv("SPATE_ECS_SERVICE"), "ECS ingest service (default $SPATE_ECS_SERVICE)")
	stream := fs.String("stream", env.getenv("SPATE_STREAM"), "Kinesis stream name or ARN (default $SPATE_STREAM)")
	dry := fs.Bool("dry-run", false, "print what would change and change nothing")
	tfvars := fs.String("tfvars", "", "also write the scheduled actions as a terraform variables file (.tfvars, or .tfvars.json)")
	nowFlag := fs.String("now", "", "act as if it were this time (RFC 3339); default: the clock")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "Usage: spate prescale --schedule FILE [--cluster C --service S] [--stream NAME] [--tfvars FILE] [--dry-run] [settings]\n\nApplies the plan of `spate plan`: the ECS service's scheduled actions due within\n--horizon (stale ones of its own removed), one Kinesis capacity step if one is due,\nand/or a terraform variables file. Idempotent: run it on a schedule, at least\nevery --reshard-time so shard steps follow one another.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("prescale: unexpected argument %q", fs.Arg(0))
	}
	if (*cluster == "") != (*service == "") {
		return errors.New("prescale: give both --cluster and --service, or neither")
	}
	if *cluster == "" && *stream == "" && *tfvars == "" {
		return errors.New("prescale: nothing to do: give --cluster and --service, --stream, and/or --tfvars")
	}
	now := clock.Or(env.now)().UTC()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("prescale: --now: %w", err)
		}
		now = t.UTC()
	}
	p, err := opts.build(ctx)
	if err != nil {
		return fmt.Errorf("prescale: %w", err)
	}
	for _, w := range p.Warnings {
		env.log.Warn("plan warning", "warning", w)
	}
	settings, _ := opts.settings()
	say := func(format string, a ...any) {
		if *dry {
			format = "[dry-run] " + format
		}
		fmt.Fprintf(env.stdout, format+"\n", a...)
	}

	budget := settings.Quotas.ScheduledActionsPerTarget - settings.ReservedScheduledActions
	if *tfvars != "" {
		acts := futureActions(p, now, 0, budget)
		if n := len(futureActions(p, now, 0, 0)); n > len(acts) {
			env.log.Warn("tfvars holds the first scheduled actions only; write it again as they run", "written", len(acts), "planned", n)
		}
		data, err := encodeTFVars(acts, *tfvars, opts.schedule)
		if err != nil {
			return fmt.Errorf("prescale: %w", err)
		}
		if *dry {
			say("would write %s:", *tfvars)
			env.stdout.Write(data)
		} else {
			if err := os.WriteFile(*tfvars, data, 0o644); err != nil {
				return fmt.Errorf("prescale: write tfvars: %w", err)
			}
			say("wrote %s: %d scheduled actions in %s", *tfvars, len(acts), TFVarsVariable)
		}
	}
	if *cluster == "" && *stream == "" {
		return nil
	}
	cli, err := clients(ctx, settings.Region)
	if err != nil {
		return fmt.Errorf("prescale: %w", err)
	}
	var errs []error
	if *cluster != "" {
		errs = append(errs, syncECS(ctx, env, cli.scaling, appscaling.ECSService(*cluster, *service), opts.prefix, futureActions(p, now, settings.Horizon, budget), *dry, say))
	}
	if *stream != "" {
		errs = append(errs, stepKinesis(ctx, cli.kinesis, *stream, p, settings, now, *dry, say))
	}
	return errors.Join(errs...)
}

// futureActions are the plan's ECS actions after now (and within horizon,
// when it is not zero), at most limit of them (when it is not zero).
func futureActions(p *plan.Plan, now time.Time, horizon time.Duration, limit int) []appscaling.Action {
	var out []appscaling.Action
	for _, a := range p.ECSActions() {
		if !a.At.After(now) || horizon > 0 && a.At.After(now.Add(horizon)) {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, appscaling.Action{Name: a.Name, Schedule: a.Schedule, MinCapacity: int32(a.MinCapacity), MaxCapacity: int32(a.MaxCapacity)})
	}
	return out
}

func syncECS(ctx context.Context, env *environment, api appscaling.API, target appscaling.Target, prefix string, want []appscaling.Action, dry bool, say func(string, ...any)) error {
	sched, err := appscaling.New(api, target, prefix, env.log)
	if err != nil {
		return err
	}
	changes, err := sched.Sync(ctx, want, dry)
	kept := 0
	for _, c := range changes {
		switch c.Op {
		case appscaling.Put:
			say("ECS %s: put %s %s min=%d max=%d", target.ResourceID, c.Action.Name, c.Action.Schedule, c.Action.MinCapacity, c.Action.MaxCapacity)
		case appscaling.Delete:
			say("ECS %s: delete %s (%s)", target.ResourceID, c.Action.Name, c.Action.Schedule)
		case appscaling.Keep:
			kept++
		}
	}
	if err == nil {
		say("ECS %s: %d scheduled actions as planned", target.ResourceID, kept)
	}
	return err
}

func stepKinesis(ctx context.Context, api kinesis.CapacityAPI, stream string, p *plan.Plan, s plan.Settings, now time.Time, dry bool, say func(string, ...any)) error {
	c := kinesis.NewCapacity(api, stream)
	var step *kinesis.Step
	var err error
	var want int
	unit := "shards"
	if s.KinesisMode == plan.Provisioned {
		want = p.ShardsAt(now)
		step, err = c.StepShards(ctx, want, dry)
	} else {
		unit = "MiB/s warm throughput"
		if want = p.WarmThroughputAt(now); want == 0 {
			say("Kinesis %s: on-demand, no warm throughput planned", stream)
			return nil
		}
		step, err = c.SetWarmThroughput(ctx, want, dry)
	}
	switch {
	case errors.Is(err, kinesis.ErrStreamBusy):
		say("Kinesis %s: a capacity change is still running; the next run continues toward %d %s", stream, want, unit)
		return nil
	case err != nil:
		return err
	case step == nil:
		say("Kinesis %s: at %d %s as planned", stream, want, unit)
	case s.KinesisMode == plan.Provisioned:
		say("Kinesis %s: UpdateShardCount %d→%d (plan: %d shards now)", stream, step.From, step.To, want)
	default:
		say("Kinesis %s: UpdateStreamWarmThroughput %d→%d MiB/s", stream, step.From, step.To)
	}
	return nil
}

// encodeTFVars renders the actions as terraform variables: HCL, or JSON
// for a .json file name.
func encodeTFVars(acts []appscaling.Action, path, schedule string) ([]byte, error) {
	if strings.HasSuffix(path, ".json") {
		type tfAction struct {
			Name        string `json:"name"`
			Schedule    string `json:"schedule"`
			MinCapacity int32  `json:"min_capacity"`
			MaxCapacity int32  `json:"max_capacity"`
		}
		list := make([]tfAction, 0, len(acts))
		for _, a := range acts {
			list = append(list, tfAction{a.Name, a.Schedule, a.MinCapacity, a.MaxCapacity})
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{TFVarsVariable: list}); err != nil {
			return nil, fmt.Errorf("encode tfvars: %w", err)
		}
		return buf.Bytes(), nil
	}
	objType := cty.Object(map[string]cty.Type{"name": cty.String, "schedule": cty.String, "min_capacity": cty.Number, "max_capacity": cty.Number})
	vals := make([]cty.Value, 0, len(acts))
	for _, a := range acts {
		vals = append(vals, cty.ObjectVal(map[string]cty.Value{
			"name":         cty.StringVal(a.Name),
			"schedule":     cty.StringVal(a.Schedule),
			"min_capacity": cty.NumberIntVal(int64(a.MinCapacity)),
			"max_capacity": cty.NumberIntVal(int64(a.MaxCapacity)),
		}))
	}
	list := cty.ListValEmpty(objType)
	if len(vals) > 0 {
		list = cty.ListVal(vals)
	}
	f := hclwrite.NewEmptyFile()
	f.Body().AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# Written by `spate prescale --tfvars` from " + schedule + "; see docs/capacity.md.\n")}})
	f.Body().SetAttributeValue(TFVarsVariable, list)
	return hclwrite.Format(f.Bytes()), nil
}
