package s3_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spate-dev/spate/internal/lakegen"
	"github.com/spate-dev/spate/internal/laketest"
	"github.com/spate-dev/spate/internal/spatetest"
	"github.com/spate-dev/spate/lakeedit"
	"github.com/spate-dev/spate/s3"
)

// fake is gofakes3 in process, with an SDK client pointed at it.
type fake struct {
	client *awss3.Client
	n      atomic.Int64
}

func newFake(t *testing.T) *fake {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	return &fake{client: awss3.NewFromConfig(spatetest.AWSConfig(), func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})}
}

// bucket creates a bucket, versioned or not, and opens the store on
// s3://bucket/prefix.
func (f *fake) bucket(t *testing.T, versioned bool, prefix string) *s3.Store {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("lake-%d", f.n.Add(1))
	if _, err := f.client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if _, err := f.client.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: aws.String(name),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s3.Open(ctx, f.client, "s3://"+name+"/"+prefix, s3.Config{TempDir: t.TempDir(), ReadBufferSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if st.Versioned() != versioned {
		t.Fatalf("versioned = %v, want %v", st.Versioned(), versioned)
	}
	return st
}

func TestForgetS3(t *testing.T) {
	f := newFake(t)
	t.Run("versioned", func(t *testing.T) {
		laketest.Forget(t, func(t *testing.T) lakeedit.Store { return f.bucket(t, true, "") })
	})
	t.Run("unversioned, under a prefix", func(t *testing.T) {
		laketest.Forget(t, func(t *testing.T) lakeedit.Store { return f.bucket(t, false, "spate/lake") })
	})
}

func TestCompactS3(t *testing.T) {
	f := newFake(t)
	laketest.Compact(t, func(t *testing.T) lakeedit.Store { return f.bucket(t, true, "") })
}

// versions lists every version of every key.
func versions(t *testing.T, st lakeedit.Store) map[string][]lakeedit.Object {
	t.Helper()
	out := map[string][]lakeedit.Object{}
	if err := st.Walk(context.Background(), "", func(o lakeedit.Object) error {
		out[o.Key] = append(out[o.Key], o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestForgetLeavesNoVersions: on a versioned bucket, forget leaves no
// version behind that holds a forgotten row — not the versions its
// rewrites replace, not older versions written before it ran — and a key
// whose every row is forgotten is gone with all its versions.
func TestForgetLeavesNoVersions(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	st := f.bucket(t, true, "")
	cfg := lakegen.Config{Dir: filepath.Join(t.TempDir(), "lake"), Rows: 3000, Hours: 1, FilesPerHour: 2}
	if _, err := lakegen.Generate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	laketest.Put(t, st, cfg.Dir)
	reqs, match := laketest.Requests(cfg, 20)
	// Overwrite every file with itself: each now has a noncurrent version
	// holding the same rows, as a crashed earlier run could leave.
	laketest.Put(t, st, cfg.Dir)
	// One key whose only content is a forgotten person, over an older
	// version holding someone else.
	only := lakegen.Event(cfg, 0)
	keyOnly := "_errors/click/dt=2026-03-01/hour=10/only.json"
	if err := laketest.PutBytes(ctx, st, keyOnly, []byte(`{"type":"click","user_id":"nobody-asked"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	if err := laketest.PutBytes(ctx, st, keyOnly, only.AppendJSON(nil)); err != nil {
		t.Fatal(err)
	}

	rep, err := lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.NoncurrentDeleted == 0 || rep.FilesRewritten == 0 {
		t.Fatalf("nothing to test: %+v", rep)
	}
	vs := versions(t, st)
	if _, ok := vs[keyOnly]; ok {
		t.Errorf("%s: versions left: %+v", keyOnly, vs[keyOnly])
	}
	// Every version left, current or not, is clean.
	db := laketest.DB(t)
	for key, list := range vs {
		for _, o := range list {
			if filepath.Ext(key) != ".parquet" {
				continue
			}
			one := &single{Store: st, o: o}
			d, _ := laketest.Dump(t, one)
			if n, _ := laketest.Rows(t, db, d, match); n != 0 {
				t.Errorf("%s version %s (noncurrent %v) holds %d forgotten rows", key, o.Version, o.Noncurrent, n)
			}
		}
	}
	rep2, err := lakeedit.Forget(ctx, st, reqs, lakeedit.ForgetConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.RowsRemoved != 0 || rep2.NoncurrentDeleted != 0 || rep2.FilesRewritten != 0 {
		t.Errorf("second run: %+v", rep2)
	}
}

// single is a store that lists one version, as if current.
type single struct {
	lakeedit.Store
	o lakeedit.Object
}

func (s *single) Walk(ctx context.Context, prefix string, fn func(lakeedit.Object) error) error {
	o := s.o
	o.Noncurrent = false
	return fn(o)
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct{ uri, bucket, prefix string }{
		{"s3://b", "b", ""}, {"s3://b/", "b", ""}, {"s3://b/lake", "b", "lake/"}, {"s3://b/a/b/", "b", "a/b/"},
	} {
		b, p, err := s3.ParseURI(tc.uri)
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("%s: %q %q %v", tc.uri, b, p, err)
		}
	}
	for _, bad := range []string{"b/lake", "s3://", "s3:///lake", "/tmp/lake"} {
		if _, _, err := s3.ParseURI(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
