package faulttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/spatetest"
)

// buildSpate builds the real binary once for the run, without the race
// detector: what is measured (memory, throughput) is what ships.
func buildSpate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/spate")
	cmd.Dir = spatetest.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/spate: %v\n%s", err, out)
	}
	return bin
}

// proc is one running `spate ingest`.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd
	URL string
	// MetricsURL serves GET /metrics (SPATE_METRICS_ADDR), apart from URL.
	MetricsURL string
	done       chan struct{}
	err        error // exit status, once done

	mu   sync.Mutex
	logs bytes.Buffer
}

// startIngest runs `spate ingest` with exactly env (no inherited AWS
// settings) and returns once it listens.
func startIngest(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	p := &proc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "ingest")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start spate ingest: %v", err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			var l struct{ Msg, Addr string }
			if json.Unmarshal(line, &l) == nil && l.Msg == "metrics listening" {
				// Logged before "listening": set before URL is.
				p.MetricsURL = "http://" + l.Addr
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "listening" {
				select {
				case listening <- l.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("spate ingest log (last 4 KiB):\n%s", p.tail(4096))
		}
	})
	select {
	case addr := <-listening:
		p.URL = "http://" + addr
	case <-p.done:
		t.Fatalf("spate ingest exited before listening: %v\n%s", p.err, p.tail(4096))
	case <-time.After(30 * time.Second):
		t.Fatalf("spate ingest not listening after 30s\n%s", p.tail(4096))
	}
	return p
}

func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.logs.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// logged reports whether a log line has msg.
func (p *proc) logged(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Contains(p.logs.Bytes(), []byte(`"msg":"`+msg+`"`))
}

// PeakRSS is the process's resident-set high-water mark (VmHWM) in bytes.
func (p *proc) PeakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatalf("read VmHWM: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				p.t.Fatalf("parse VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	p.t.Fatal("no VmHWM in /proc status")
	return 0
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(time.Minute)
	if p.err != nil {
		p.t.Fatalf("spate ingest exited with %v after SIGTERM\n%s", p.err, p.tail(4096))
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Kill()
	p.wait(10 * time.Second)
}

func (p *proc) wait(d time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("spate ingest still running after %s", d)
	}
}
