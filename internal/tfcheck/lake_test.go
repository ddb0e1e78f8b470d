package tfcheck

import (
	"strings"
	"testing"
)

// TestLakeMaintenanceLeastPrivilege: the lake maintenance task may touch
// the lake bucket and its objects and use the data key, nothing else; the
// scheduler may only start its tasks and pass its roles.
func TestLakeMaintenanceLeastPrivilege(t *testing.T) {
	m := loadRepoModule(t)
	doc, ok := m.Data["aws_iam_policy_document.lake_maintenance_task"]
	if !ok {
		t.Fatal("no aws_iam_policy_document.lake_maintenance_task")
	}
	allowed := map[string][]string{
		"[aws_s3_bucket.lake.arn]":        {"s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning"},
		`["${aws_s3_bucket.lake.arn}/*"]`: {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload"},
		"[aws_kms_key.data.arn]":          {"kms:Decrypt", "kms:GenerateDataKey"},
	}
	n := 0
	for _, st := range doc.Body.Blocks {
		if st.Type != "statement" {
			continue
		}
		n++
		res := attrSource(t, m, st.Body, "resources")
		acts := attrSource(t, m, st.Body, "actions")
		if strings.HasPrefix(acts, `["kms:`) && !strings.Contains(m.Source(st.Body.Range()), `"s3.${var.region}.amazonaws.com"`) {
			t.Errorf("%s: the data key is usable beyond S3", st.Range())
		}
		want, ok := allowed[res]
		if !ok {
			t.Errorf("%s: resources %s are not the lake bucket, its objects or the data key", st.Range(), res)
			continue
		}
		for _, a := range strings.Split(strings.Trim(acts, "[]"), ",") {
			a = strings.Trim(a, `"`)
			found := false
			for _, w := range want {
				found = found || w == a
			}
			if !found {
				t.Errorf("%s: %s on %s is more than lake maintenance needs", st.Range(), a, res)
			}
		}
	}
	if n != len(allowed) {
		t.Errorf("%d statements, want %d", n, len(allowed))
	}
	if _, ok := m.Resources["aws_scheduler_schedule.lake"]; !ok {
		t.Error("no scheduled lake maintenance")
	}
}
