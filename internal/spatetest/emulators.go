// Package spatetest holds helpers shared by spate's tests: the AWS API
// emulators (kinesalite, local-aws-sqs) started on 127.0.0.1, and AWS SDK
// configuration pointing at them.
package spatetest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Endpoints are the emulators' base URLs.
type Endpoints struct {
	Kinesis string `json:"kinesis"`
	SQS     string `json:"sqs"`
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("spatetest: cannot locate source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Emulators starts kinesalite and local-aws-sqs on ephemeral loopback ports
// for this test and stops them when it ends. When they are not installed
// (`make emulators`) the test is skipped, except under CI=true, where it
// fails: CI never skips an integration test silently.
func Emulators(tb testing.TB) Endpoints {
	tb.Helper()
	dir := filepath.Join(RepoRoot(tb), "emulators")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kinesalite")); err != nil {
		missing(tb, "emulators not installed: run `make emulators` (npm ci in emulators/)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing(tb, "node not found on PATH")
	}
	cmd := exec.Command("node", "start.js")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start emulators: %v", err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			tb.Fatal("emulators exited before listening")
		}
		var ep Endpoints
		if err := json.Unmarshal([]byte(l), &ep); err != nil {
			tb.Fatalf("emulators said %q: %v", l, err)
		}
		return ep
	case <-time.After(30 * time.Second):
		tb.Fatal("emulators did not start within 30s")
	}
	return Endpoints{}
}

func missing(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and %s", why)
	}
	tb.Skipf("skipping integration test: %s", why)
}

// AWSConfig returns an SDK configuration with static fake credentials in
// us-east-1 whose clients talk to endpoint (set BaseEndpoint per client).
// Its clients retry broken loopback connections only (ConnectionRetryer):
// every emulator-backed test gets that, not just the ones that flaked.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSPATETEST", "secret", ""),
		Retryer:     ConnectionRetryer,
	}
}

// ConnectionRetryer retries only what the SDK itself classes as a broken
// connection: on a loaded machine a loopback TCP reset now and then
// surfaces mid-response as "use of closed network connection", which the
// real SDK retries too. API errors are never retried, so tests that inject
// service errors and count calls stay exact.
func ConnectionRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		o.RateLimiter = ratelimit.None
	})
}

// Context returns a context cancelled when the test ends or after d.
func Context(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
