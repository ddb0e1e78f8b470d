package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spate-dev/spate/loadgen"
)

// server is a process under load: spate local or the ceiling.
type server struct {
	name    string
	cmd     *exec.Cmd
	url     string
	log     *os.File
	exit    chan error
	stopped bool
}

// freeAddr finds a loopback port nobody listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs bin with args (where "ADDR" is replaced by a free loopback
// address) and waits until it answers GET /readyz.
func (r *run) start(ctx context.Context, name, bin string, args ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "ADDR", addr)
	}
	logf, err := os.Create(filepath.Join(r.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "SPATE_LOG_LEVEL=warn")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, url: "http://" + addr, log: logf, exit: make(chan error, 1)}
	go func() { s.exit <- cmd.Wait() }()
	r.logf("started %s (pid %d) on %s", name, cmd.Process.Pid, addr)
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.exit:
			return nil, fmt.Errorf("%s exited before it was ready: %v (log %s)", name, err, logf.Name())
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("%s not ready after 30s (log %s)", name, logf.Name())
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(timeout time.Duration) error {
	defer s.log.Close()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal %s: %w", s.name, err)
	}
	select {
	case err := <-s.exit:
		s.stopped = true
		if err != nil {
			return fmt.Errorf("%s exited: %w (log %s)", s.name, err, s.log.Name())
		}
		return nil
	case <-time.After(timeout):
		s.kill()
		return fmt.Errorf("%s did not stop within %v after SIGTERM", s.name, timeout)
	}
}

// kill ends s at once, if it still runs.
func (s *server) kill() {
	if s.stopped {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exit
	s.stopped = true
}

// cpu is the CPU time the server has used so far (user + system), from
// /proc: on a shared machine, per-CPU-second figures are steadier than
// wall-clock ones.
func (s *server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux this runs on.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// loadRun is one `spate loadgen` invocation and what it measured.
type loadRun struct {
	label   string
	cmdline string
	res     *loadgen.Result
	cpu     time.Duration // server CPU during the run
	genCPU  time.Duration // loadgen's own CPU
	load    string        // 1-minute load average as it started
	psi     string        // CPU pressure over the last 10 s as it ended
}

// loadgen runs the built spate loadgen against s with args, and reads its
// JSON report.
func (r *run) loadgen(ctx context.Context, s *server, label string, args ...string) (*loadRun, error) {
	// Capped so an overloaded target cannot make loadgen open thousands
	// of connections; beyond it requests wait or are dropped, and counted.
	args = append(args, "--max-in-flight", "2000")
	full := append([]string{"loadgen", "--url", s.url, "--output", "json"}, args...)
	shown := append([]string{"spate", "loadgen", "--url", "http://127.0.0.1:PORT"}, args...)
	lr := &loadRun{label: label, cmdline: strings.Join(shown, " "), load: strings.Fields(loadAvg())[0]}
	r.logf("%s: %s", s.name, lr.cmdline)
	cmd := exec.CommandContext(ctx, r.spateBin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cpu0 := s.cpu()
	err := cmd.Run()
	lr.cpu = s.cpu() - cpu0
	lr.psi = cpuPressure()
	r.runs++
	_ = os.WriteFile(filepath.Join(r.tmp, fmt.Sprintf("loadgen-%02d-%s-%s.json", r.runs, s.name, label)), stdout.Bytes(), 0o644)
	if cmd.ProcessState != nil {
		lr.genCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var res loadgen.Result
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		return nil, errors.Join(fmt.Errorf("%s: no report: %w", lr.cmdline, jerr), err, errors.New(stderr.String()))
	}
	// A failed threshold is a result to report, not a reason to stop.
	lr.res = &res
	return lr, nil
}

// settle waits until s is idle (under a fifth of a core for a second in a
// row), at most limit: a run right after a breakpoint must not start on
// the backlog the overload left.
func (s *server) settle(limit time.Duration) time.Duration {
	start := time.Now()
	quiet := 0
	prev := s.cpu()
	for time.Since(start) < limit && quiet < 2 {
		time.Sleep(500 * time.Millisecond)
		now := s.cpu()
		if now-prev < 100*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
		prev = now
	}
	return time.Since(start)
}

// cpuPressure is the share of the last 10 s in which some runnable task
// waited for a CPU (Linux PSI): how contended the machine was.
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v + " %"
		}
	}
	return "?"
}
