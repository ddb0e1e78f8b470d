package tfcheck

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/spate-dev/spate/sqs"
)

// TestDeadLetterGrant: the router and reward roles may write the lake
// bucket under the dead-letter prefix and nowhere else, the prefix is the
// one the Go code writes, and both functions are told the bucket.
func TestDeadLetterGrant(t *testing.T) {
	m := loadRepoModule(t)
	if got := attrSource(t, m, &hclsyntax.Body{Attributes: hclsyntax.Attributes{"p": m.Locals["dead_letter_prefix"]}}, "p"); got != `"`+sqs.DeadLetterPrefix+`"` {
		t.Errorf("local.dead_letter_prefix = %s, want %q (sqs.DeadLetterPrefix)", got, sqs.DeadLetterPrefix)
	}
	doc := m.Data["aws_iam_policy_document.dead_letters"]
	if doc == nil {
		t.Fatal("no aws_iam_policy_document.dead_letters")
	}
	s3Grants := 0
	for _, st := range doc.Body.Blocks {
		if st.Type != "statement" {
			continue
		}
		actions := attrSource(t, m, st.Body, "actions")
		if !strings.Contains(actions, `"s3:`) {
			continue
		}
		s3Grants++
		if actions != `["s3:PutObject"]` {
			t.Errorf("dead-letter S3 actions %s, want only s3:PutObject", actions)
		}
		if got := attrSource(t, m, st.Body, "resources"); got != `["${aws_s3_bucket.lake.arn}/${local.dead_letter_prefix}*"]` {
			t.Errorf("dead-letter S3 resources %s, want the dead-letter prefix only", got)
		}
	}
	if s3Grants != 1 {
		t.Errorf("%d S3 statements in the dead-letter policy, want 1", s3Grants)
	}
	// No other policy of those roles touches S3.
	for _, fn := range []string{"router", "reward"} {
		if src := m.Source(m.Data["aws_iam_policy_document."+fn].Range()); strings.Contains(src, `"s3:`) {
			t.Errorf("the %s policy grants S3 actions besides the dead-letter prefix", fn)
		}
		env := child(t, m.Resources["aws_lambda_function."+fn].Body, "environment")
		vars := attrSource(t, m, env, "variables")
		if !strings.Contains(vars, `SPATE_DEAD_LETTER_BUCKET=aws_s3_bucket.lake.id`) {
			t.Errorf("aws_lambda_function.%s is not given the lake bucket for dead letters: %s", fn, vars)
		}
		if res := m.Resources["aws_cloudwatch_metric_alarm.dead_letters_without_payload"]; res == nil {
			t.Error("no alarm on dead letters without payload")
		}
	}
}
