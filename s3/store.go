// Package s3 is the lake in S3 for lake maintenance: a lakeedit.Store over
// a bucket and prefix, through aws-sdk-go-v2. Reads are ranged GETs of the
// exact version listed; writes go through a local temporary file and one
// PutObject, which S3 makes visible whole; on a versioned bucket deletes
// name the version, so erased data does not linger as a noncurrent
// version until lifecycle expiry.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/spate-dev/spate/lakeedit"
)

// API is the part of the S3 client the store uses.
type API interface {
	GetBucketVersioning(ctx context.Context, in *awss3.GetBucketVersioningInput, opts ...func(*awss3.Options)) (*awss3.GetBucketVersioningOutput, error)
	ListObjectsV2(ctx context.Context, in *awss3.ListObjectsV2Input, opts ...func(*awss3.Options)) (*awss3.ListObjectsV2Output, error)
	ListObjectVersions(ctx context.Context, in *awss3.ListObjectVersionsInput, opts ...func(*awss3.Options)) (*awss3.ListObjectVersionsOutput, error)
	GetObject(ctx context.Context, in *awss3.GetObjectInput, opts ...func(*awss3.Options)) (*awss3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *awss3.PutObjectInput, opts ...func(*awss3.Options)) (*awss3.PutObjectOutput, error)
	DeleteObject(ctx context.Context, in *awss3.DeleteObjectInput, opts ...func(*awss3.Options)) (*awss3.DeleteObjectOutput, error)
}

// Config holds the store's knobs; zero values take the defaults.
type Config struct {
	// TempDir holds objects being written (default os.TempDir()).
	TempDir string
	// ReadBufferSize is the size of the ranged GETs Parquet pages are read
	// with (default 1 MiB).
	ReadBufferSize int
}

// Store is a lake under s3://Bucket/Prefix.
type Store struct {
	api       API
	bucket    string
	prefix    string // "" or ending in "/"
	versioned bool
	cfg       Config
}

var _ lakeedit.Store = (*Store)(nil)

// ParseURI splits s3://bucket[/prefix] into the bucket and the prefix
// (with a trailing slash when not empty).
func ParseURI(uri string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q: want s3://bucket[/prefix]", uri)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q: no bucket", uri)
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// Open returns the store for uri, s3://bucket[/prefix]. It asks once
// whether the bucket keeps versions (enabled or suspended: objects written
// before suspension keep theirs).
func Open(ctx context.Context, api API, uri string, cfg Config) (*Store, error) {
	bucket, prefix, err := ParseURI(uri)
	if err != nil {
		return nil, fmt.Errorf("s3 lake: %w", err)
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 1 << 20
	}
	v, err := api.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil {
		return nil, fmt.Errorf("s3 lake %s: get bucket versioning: %w", uri, err)
	}
	return &Store{api: api, bucket: bucket, prefix: prefix, cfg: cfg, versioned: v.Status != ""}, nil
}

// Versioned reports whether the bucket keeps versions.
func (s *Store) Versioned() bool { return s.versioned }

// ReadBufferSize tells lakeedit to read in large pieces.
func (s *Store) ReadBufferSize() int { return s.cfg.ReadBufferSize }

func (s *Store) key(k string) *string { return aws.String(s.prefix + k) }

// Walk lists the objects under prefix; on a versioned bucket every
// version, the noncurrent ones marked (delete markers are skipped: they
// hold no data).
func (s *Store) Walk(ctx context.Context, prefix string, fn func(lakeedit.Object) error) error {
	if s.versioned {
		return s.walkVersions(ctx, prefix, fn)
	}
	p := awss3.NewListObjectsV2Paginator(s.api, &awss3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: s.key(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 list %s/%s%s: %w", s.bucket, s.prefix, prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(lakeedit.Object{Key: strings.TrimPrefix(aws.ToString(o.Key), s.prefix), Size: aws.ToInt64(o.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) walkVersions(ctx context.Context, prefix string, fn func(lakeedit.Object) error) error {
	p := awss3.NewListObjectVersionsPaginator(s.api, &awss3.ListObjectVersionsInput{Bucket: aws.String(s.bucket), Prefix: s.key(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 list versions %s/%s%s: %w", s.bucket, s.prefix, prefix, err)
		}
		for _, v := range page.Versions {
			o := lakeedit.Object{Key: strings.TrimPrefix(aws.ToString(v.Key), s.prefix), Size: aws.ToInt64(v.Size),
				Version: aws.ToString(v.VersionId), Noncurrent: !aws.ToBool(v.IsLatest)}
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// object is an opened S3 object: every read a ranged GET of its version.
type object struct {
	ctx     context.Context
	s       *Store
	key     string
	version string
	size    int64
}

func (o *object) Size() int64  { return o.size }
func (o *object) Close() error { return nil }

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), o.size)
	in := &awss3.GetObjectInput{Bucket: aws.String(o.s.bucket), Key: o.s.key(o.key), Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1))}
	if o.version != "" {
		in.VersionId = aws.String(o.version)
	}
	out, err := o.s.api.GetObject(o.ctx, in)
	if err != nil {
		return 0, fmt.Errorf("s3 get %s: %w", o.key, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p[:end-off])
	if err != nil {
		return n, fmt.Errorf("s3 get %s: %w", o.key, err)
	}
	if end-off < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// Open opens o for ranged reads; the context is that of every read.
func (s *Store) Open(ctx context.Context, o lakeedit.Object) (lakeedit.File, error) {
	return &object{ctx: ctx, s: s, key: o.Key, version: o.Version, size: o.Size}, nil
}

type upload struct {
	s    *Store
	key  string
	f    *os.File
	done bool
}

// Create writes key to a temporary file; Commit puts it in one request.
func (s *Store) Create(ctx context.Context, key string) (lakeedit.Upload, error) {
	f, err := os.CreateTemp(s.cfg.TempDir, "spate-lake-*")
	if err != nil {
		return nil, fmt.Errorf("s3 create %s: %w", key, err)
	}
	return &upload{s: s, key: key, f: f}, nil
}

func (u *upload) Write(p []byte) (int, error) { return u.f.Write(p) }

func (u *upload) Commit(ctx context.Context) (lakeedit.Object, error) {
	if u.done {
		return lakeedit.Object{}, errors.New("s3: upload already finished")
	}
	defer u.Abort()
	size, err := u.f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = u.f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return lakeedit.Object{}, fmt.Errorf("s3 put %s: %w", u.key, err)
	}
	out, err := u.s.api.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(u.s.bucket), Key: u.s.key(u.key),
		Body: u.f, ContentLength: aws.Int64(size)})
	if err != nil {
		return lakeedit.Object{}, fmt.Errorf("s3 put %s: %w", u.key, err)
	}
	return lakeedit.Object{Key: u.key, Size: size, Version: aws.ToString(out.VersionId)}, nil
}

func (u *upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	_ = os.Remove(u.f.Name())
}

// Delete deletes o; on a versioned bucket that version, for good.
func (s *Store) Delete(ctx context.Context, o lakeedit.Object) error {
	in := &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: s.key(o.Key)}
	if o.Version != "" {
		in.VersionId = aws.String(o.Version)
	}
	if _, err := s.api.DeleteObject(ctx, in); err != nil {
		var nf *types.NoSuchKey
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("s3 delete %s: %w", o.Key, err)
	}
	return nil
}
