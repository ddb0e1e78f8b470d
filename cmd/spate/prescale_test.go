package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/spate-dev/spate/internal/fakeappscaling"
	"github.com/spate-dev/spate/internal/fakekinesisctl"
	"github.com/spate-dev/spate/internal/spatetest"
)

type prescaleFakes struct {
	scaling *fakeappscaling.Server
	kinesis *fakekinesisctl.Server
	clients clientFactory
}

// newPrescaleFakes starts both fakes and returns a factory of the real
// SDK clients pointed at them.
func newPrescaleFakes(t *testing.T) *prescaleFakes {
	t.Helper()
	f := &prescaleFakes{scaling: fakeappscaling.New(), kinesis: fakekinesisctl.New(fakekinesisctl.Config{})}
	t.Cleanup(f.scaling.Close)
	t.Cleanup(f.kinesis.Close)
	f.scaling.Register("ecs", "service/spate/ingest", "ecs:service:DesiredCount")
	f.kinesis.AddStream("events", 13)
	cfg := spatetest.AWSConfig()
	f.clients = func(ctx context.Context, region string) (prescaleClients, error) {
		return prescaleClients{
			scaling: aas.NewFromConfig(cfg, func(o *aas.Options) {
				o.BaseEndpoint = aws.String(f.scaling.URL)
				o.HTTPClient = f.scaling.HTTPClient()
			}),
			kinesis: awskinesis.NewFromConfig(cfg, func(o *awskinesis.Options) {
				o.BaseEndpoint = aws.String(f.kinesis.URL)
				o.HTTPClient = f.kinesis.HTTPClient()
			}),
		}, nil
	}
	return f
}

func (f *prescaleFakes) run(t *testing.T, now string, extra ...string) string {
	t.Helper()
	env, out, errs := planEnv(nil)
	// One event a record: the shard steps these tests script are the
	// record-bound ones.
	args := append([]string{"--schedule", electionSchedule(t), "--events-per-record", "1", "--cluster", "spate", "--service", "ingest", "--stream", "events", "--now", now}, extra...)
	if err := prescale(t.Context(), env, args, f.clients); err != nil {
		t.Fatalf("prescale at %s: %v\n%s", now, err, errs)
	}
	return out.String()
}

func (f *prescaleFakes) names() []string {
	var names []string
	for _, a := range f.scaling.Actions("ecs", "service/spate/ingest", "ecs:service:DesiredCount") {
		names = append(names, a.Name)
	}
	return names
}

func TestPrescaleAppliesThePlanIdempotently(t *testing.T) {
	f := newPrescaleFakes(t)
	// Someone else's action on the same target stays.
	f.scaling.Register("ecs", "service/spate/ingest", "ecs:service:DesiredCount")
	cli, _ := f.clients(t.Context(), "us-east-1")
	_, err := cli.scaling.PutScheduledAction(t.Context(), &aas.PutScheduledActionInput{
		ServiceNamespace: "ecs", ResourceId: aws.String("service/spate/ingest"), ScalableDimension: "ecs:service:DesiredCount",
		ScheduledActionName: aws.String("nightly"), Schedule: aws.String("cron(0 2 * * ? *)"),
	})
	if err != nil {
		t.Fatal(err)
	}

	out := f.run(t, "2027-04-18T12:00:00Z")
	if n := strings.Count(out, ": put spate-prescale-"); n != 5 {
		t.Errorf("first run put %d actions, want 5:\n%s", n, out)
	}
	if !strings.Contains(out, "put spate-prescale-20270418T1630Z at(2027-04-18T16:30:00) min=22 max=44") {
		t.Errorf("peak action missing:\n%s", out)
	}
	if !strings.Contains(out, "Kinesis events: at 13 shards as planned") {
		t.Errorf("kinesis before the steps:\n%s", out)
	}
	puts := f.scaling.Calls("PutScheduledAction")

	out = f.run(t, "2027-04-18T12:00:00Z")
	if strings.Contains(out, "put ") || !strings.Contains(out, "5 scheduled actions as planned") || f.scaling.Calls("PutScheduledAction") != puts {
		t.Errorf("second run was not a no-op:\n%s", out)
	}

	// 14:20: the first reshard step (due 14:15) runs.
	out = f.run(t, "2027-04-18T14:20:00Z")
	if !strings.Contains(out, "UpdateShardCount 13→18") {
		t.Errorf("14:20:\n%s", out)
	}
	f.kinesis.Settle("events")

	// 16:40: three actions have run and are removed; the stream, at 18,
	// must reach 55: double to 36 now, the rest on a later run.
	out = f.run(t, "2027-04-18T16:40:00Z")
	if n := strings.Count(out, ": delete spate-prescale-"); n != 3 {
		t.Errorf("16:40 deleted %d, want 3:\n%s", n, out)
	}
	if !strings.Contains(out, "UpdateShardCount 18→36 (plan: 55 shards now)") {
		t.Errorf("16:40 kinesis:\n%s", out)
	}
	out = f.run(t, "2027-04-18T16:45:00Z")
	if !strings.Contains(out, "still running") {
		t.Errorf("while resharding:\n%s", out)
	}
	f.kinesis.Settle("events")
	out = f.run(t, "2027-04-18T16:50:00Z")
	if !strings.Contains(out, "UpdateShardCount 36→55") {
		t.Errorf("16:50:\n%s", out)
	}
	f.kinesis.Settle("events")
	want := "[nightly spate-prescale-20270418T1930Z spate-prescale-20270418T2230Z]"
	if got := strings.Join(f.names(), " "); "["+got+"]" != want {
		t.Errorf("actions %s, want %s", got, want)
	}

	// A dry run the next morning says what it would do and does nothing.
	calls := f.kinesis.Calls("UpdateShardCount")
	deletes := f.scaling.Calls("DeleteScheduledAction")
	out = f.run(t, "2027-04-19T08:00:00Z", "--dry-run")
	if !strings.Contains(out, "[dry-run] ECS service/spate/ingest: delete spate-prescale-20270418T2230Z") || !strings.Contains(out, "[dry-run] Kinesis events: UpdateShardCount 55→28") {
		t.Errorf("dry run:\n%s", out)
	}
	if f.kinesis.Calls("UpdateShardCount") != calls || f.scaling.Calls("DeleteScheduledAction") != deletes || f.kinesis.Stream("events").OpenShards != 55 {
		t.Error("dry run changed something")
	}
}

func TestPrescaleReportsServiceErrors(t *testing.T) {
	f := newPrescaleFakes(t)
	f.kinesis.Fail("UpdateShardCount", "LimitExceededException", 400, 1)
	env, _, _ := planEnv(nil)
	err := prescale(t.Context(), env, []string{"--schedule", electionSchedule(t), "--events-per-record", "1", "--stream", "events", "--now", "2027-04-18T14:20:00Z"}, f.clients)
	if err == nil || !strings.Contains(err.Error(), "LimitExceededException") || !strings.Contains(err.Error(), "13→18") {
		t.Errorf("err %v, want the LimitExceededException with the step", err)
	}
	env, _, _ = planEnv(nil)
	err = prescale(t.Context(), env, []string{"--schedule", electionSchedule(t), "--cluster", "spate", "--service", "missing", "--now", "2027-04-18T12:00:00Z"}, f.clients)
	if err == nil || !strings.Contains(err.Error(), "ObjectNotFoundException") {
		t.Errorf("unregistered service: %v, want ObjectNotFoundException", err)
	}
	for _, args := range [][]string{
		{"--schedule", electionSchedule(t)},
		{"--schedule", electionSchedule(t), "--cluster", "spate"},
		{"--schedule", electionSchedule(t), "--stream", "events", "--now", "yesterday"},
	} {
		env, _, _ := planEnv(nil)
		if err := prescale(t.Context(), env, args, f.clients); err == nil {
			t.Errorf("prescale %v: no error", args)
		}
	}
}

func TestPrescaleTFVars(t *testing.T) {
	dir := t.TempDir()
	hclPath := filepath.Join(dir, "prescale.auto.tfvars")
	jsonPath := filepath.Join(dir, "prescale.auto.tfvars.json")
	for _, path := range []string{hclPath, jsonPath} {
		env, out, _ := planEnv(nil)
		err := prescale(t.Context(), env, []string{"--schedule", electionSchedule(t), "--tfvars", path, "--now", "2027-04-18T15:00:00Z"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "4 scheduled actions in ecs_scheduled_actions") {
			t.Errorf("output %q", out)
		}
	}
	f, diags := hclparse.NewParser().ParseHCLFile(hclPath)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	attrs, _ := f.Body.JustAttributes()
	attr, ok := attrs[TFVarsVariable]
	if !ok {
		t.Fatalf("no %s in the tfvars", TFVarsVariable)
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if n := v.LengthInt(); n != 4 {
		t.Fatalf("%d actions, want 4 (those after 15:00)", n)
	}
	first := v.AsValueSlice()[0].GetAttr("schedule").AsString()
	if first != "at(2027-04-18T15:30:00)" {
		t.Errorf("first schedule %s", first)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]struct {
		Name        string `json:"name"`
		Schedule    string `json:"schedule"`
		MinCapacity int    `json:"min_capacity"`
		MaxCapacity int    `json:"max_capacity"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	acts := doc[TFVarsVariable]
	if len(acts) != 4 || acts[1].Name != "spate-prescale-20270418T1630Z" || acts[1].MinCapacity != 22 || acts[1].MaxCapacity != 44 {
		t.Errorf("json tfvars %+v", acts)
	}
}
