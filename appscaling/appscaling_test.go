package appscaling_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"

	"github.com/spate-dev/spate/appscaling"
	"github.com/spate-dev/spate/internal/fakeappscaling"
	"github.com/spate-dev/spate/internal/spatetest"
)

const prefix = "spate-prescale-"

func setup(t *testing.T) (*fakeappscaling.Server, *aas.Client, appscaling.Target) {
	t.Helper()
	fake := fakeappscaling.New()
	t.Cleanup(fake.Close)
	client := aas.NewFromConfig(spatetest.AWSConfig(), func(o *aas.Options) {
		o.BaseEndpoint = aws.String(fake.URL)
		o.HTTPClient = fake.HTTPClient()
	})
	target := appscaling.ECSService("spate", "ingest")
	fake.Register(string(target.Namespace), target.ResourceID, string(target.Dimension))
	return fake, client, target
}

func action(i int, min int32) appscaling.Action {
	at := time.Date(2027, 4, 18, 14, 0, 0, 0, time.UTC).Add(time.Duration(i) * 30 * time.Minute)
	return appscaling.Action{
		Name:        prefix + at.Format("20060102T1504Z"),
		Schedule:    "at(" + at.Format("2006-01-02T15:04:05") + ")",
		MinCapacity: min,
		MaxCapacity: 2 * min,
	}
}

func count(changes []appscaling.Change) map[appscaling.Op]int {
	n := map[appscaling.Op]int{}
	for _, c := range changes {
		n[c.Op]++
	}
	return n
}

func TestSyncIsIdempotent(t *testing.T) {
	fake, client, target := setup(t)
	ctx := spatetest.Context(t, 30*time.Second)
	s, err := appscaling.New(client, target, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []appscaling.Action{action(0, 7), action(1, 16), action(2, 6)}
	changes, err := s.Sync(ctx, want, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(changes); n[appscaling.Put] != 3 {
		t.Fatalf("first sync: %v, want 3 puts", n)
	}
	got := fake.Actions("ecs", target.ResourceID, "ecs:service:DesiredCount")
	if len(got) != 3 || got[1].Schedule != "at(2027-04-18T14:30:00)" || *got[1].MinCapacity != 16 || *got[1].MaxCapacity != 32 || got[1].Timezone != "UTC" {
		t.Fatalf("stored %+v", got)
	}
	puts := fake.Calls("PutScheduledAction")
	changes, err = s.Sync(ctx, want, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(changes); n[appscaling.Keep] != 3 || n[appscaling.Put] != 0 || n[appscaling.Delete] != 0 {
		t.Errorf("second sync: %v, want 3 keeps", n)
	}
	if fake.Calls("PutScheduledAction") != puts {
		t.Error("second sync called PutScheduledAction")
	}
}

func TestSyncRemovesOnlyItsOwnStaleActions(t *testing.T) {
	fake, client, target := setup(t)
	ctx := spatetest.Context(t, 30*time.Second)
	// Someone else's action, put through the real client.
	_, err := client.PutScheduledAction(ctx, &aas.PutScheduledActionInput{
		ServiceNamespace: target.Namespace, ResourceId: aws.String(target.ResourceID), ScalableDimension: target.Dimension,
		ScheduledActionName: aws.String("nightly-floor"), Schedule: aws.String("cron(0 2 * * ? *)"),
		ScalableTargetAction: &types.ScalableTargetAction{MinCapacity: aws.Int32(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := appscaling.New(client, target, prefix, nil)
	if _, err := s.Sync(ctx, []appscaling.Action{action(0, 7), action(1, 16)}, false); err != nil {
		t.Fatal(err)
	}
	// The plan moved: action 0 ran and is gone from it, action 1 changed.
	changes, err := s.Sync(ctx, []appscaling.Action{action(1, 20), action(3, 6)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(changes); n[appscaling.Delete] != 1 || n[appscaling.Put] != 2 {
		t.Errorf("changes %v, want 1 delete and 2 puts", n)
	}
	var names []string
	for _, a := range fake.Actions("ecs", target.ResourceID, "ecs:service:DesiredCount") {
		names = append(names, a.Name)
	}
	want := fmt.Sprint([]string{"nightly-floor", action(1, 0).Name, action(3, 0).Name})
	if fmt.Sprint(names) != want {
		t.Errorf("actions %v, want %v", names, want)
	}
}

func TestSyncDryRunChangesNothing(t *testing.T) {
	fake, client, target := setup(t)
	ctx := spatetest.Context(t, 30*time.Second)
	s, _ := appscaling.New(client, target, prefix, nil)
	changes, err := s.Sync(ctx, []appscaling.Action{action(0, 7)}, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(changes); n[appscaling.Put] != 1 {
		t.Errorf("dry changes %v", n)
	}
	if fake.Calls("PutScheduledAction") != 0 || len(fake.Actions("ecs", target.ResourceID, "ecs:service:DesiredCount")) != 0 {
		t.Error("dry run changed the target")
	}
}

func TestSyncPagesThroughActions(t *testing.T) {
	fake, client, target := setup(t)
	ctx := spatetest.Context(t, 60*time.Second)
	s, _ := appscaling.New(client, target, prefix, nil)
	var want []appscaling.Action
	for i := range 120 {
		want = append(want, action(i, int32(3+i%5)))
	}
	if _, err := s.Sync(ctx, want, false); err != nil {
		t.Fatal(err)
	}
	have, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 120 {
		t.Fatalf("listed %d, want 120 (three pages of 50)", len(have))
	}
	if fake.Calls("DescribeScheduledActions") < 4 { // one list in Sync, three pages here
		t.Errorf("DescribeScheduledActions called %d times", fake.Calls("DescribeScheduledActions"))
	}
	changes, err := s.Sync(ctx, want, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(changes); n[appscaling.Keep] != 120 {
		t.Errorf("resync %v", n)
	}
}

func TestSyncRespectsTheLimit(t *testing.T) {
	fake, client, target := setup(t)
	ctx := spatetest.Context(t, 60*time.Second)
	for i := range 150 {
		_, err := client.PutScheduledAction(ctx, &aas.PutScheduledActionInput{
			ServiceNamespace: target.Namespace, ResourceId: aws.String(target.ResourceID), ScalableDimension: target.Dimension,
			ScheduledActionName: aws.String(fmt.Sprintf("team-%03d", i)), Schedule: aws.String("rate(1 day)"),
			ScalableTargetAction: &types.ScalableTargetAction{MinCapacity: aws.Int32(1)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s, _ := appscaling.New(client, target, prefix, nil)
	var want []appscaling.Action
	for i := range 60 {
		want = append(want, action(i, 5))
	}
	_, err := s.Sync(ctx, want, false)
	if !errors.Is(err, appscaling.ErrTooManyActions) {
		t.Fatalf("err %v, want ErrTooManyActions", err)
	}
	if fake.Calls("PutScheduledAction") != 150 {
		t.Error("Sync put actions despite the limit")
	}
	// The service's own limit, reached directly, is LimitExceededException.
	if _, err := s.Sync(ctx, want[:50], false); err != nil {
		t.Fatal(err)
	}
	_, err = client.PutScheduledAction(ctx, &aas.PutScheduledActionInput{
		ServiceNamespace: target.Namespace, ResourceId: aws.String(target.ResourceID), ScalableDimension: target.Dimension,
		ScheduledActionName: aws.String("one-too-many"), Schedule: aws.String("rate(1 day)"),
	})
	var le *types.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("201st action: %v, want LimitExceededException", err)
	}
}

func TestSyncErrors(t *testing.T) {
	fake, client, _ := setup(t)
	ctx := spatetest.Context(t, 30*time.Second)
	unregistered := appscaling.ECSService("spate", "nowhere")
	s, _ := appscaling.New(client, unregistered, prefix, nil)
	_, err := s.Sync(ctx, []appscaling.Action{action(0, 3)}, false)
	var nf *types.ObjectNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unregistered target: %v, want ObjectNotFoundException", err)
	}

	target := appscaling.ECSService("spate", "ingest")
	s, _ = appscaling.New(client, target, prefix, nil)
	fake.Fail("PutScheduledAction", "ConcurrentUpdateException", 400, 1)
	_, err = s.Sync(ctx, []appscaling.Action{action(0, 3)}, false)
	var cu *types.ConcurrentUpdateException
	if !errors.As(err, &cu) {
		t.Fatalf("injected: %v, want ConcurrentUpdateException", err)
	}

	bad := action(0, 3)
	bad.Schedule = "at(tomorrow)"
	_, err = s.Sync(ctx, []appscaling.Action{bad}, false)
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Fatalf("bad schedule: %v, want ValidationException", err)
	}

	if _, err := s.Sync(ctx, []appscaling.Action{{Name: "other-x", Schedule: "at(2027-01-01T00:00:00)"}}, false); err == nil {
		t.Error("Sync accepted an action without its prefix")
	}
	if _, err := appscaling.New(client, target, "", nil); err == nil {
		t.Error("New accepted an empty prefix")
	}
}

var _ appscaling.API = (*aas.Client)(nil)
