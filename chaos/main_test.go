//go:build chaos

// Package chaos breaks meshguard on purpose while it serves load, with its
// real processes: the control plane killed and restarted, a storm of
// NACKs, corrupt policy and mesh edits, the JWKS endpoint down, a full
// disk under the decision log, Redis lost — and a soak with reloads. Each
// case asserts that no request was wrongly allowed, nothing crashed and
// everything recovered by itself, and prints its counts.
//
//	make chaos                       (MESHGUARD_SOAK=10m for the long soak)
package chaos

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshguard/meshguard/internal/proctest"
)

// bin is the meshguard binary the cases run, built once.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshguard-chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "meshguard")
	build := exec.Command("go", "build", "-o", bin, "../cmd/meshguard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build meshguard:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a meshguard process under test.
type proc struct {
	t    *testing.T
	name string
	args []string
	// shell wraps the command (e.g. to set a ulimit first).
	shell string
	cmd   *exec.Cmd
	out   *proctest.Output
	done  chan error
}

func start(t *testing.T, name string, args ...string) *proc {
	p := &proc{t: t, name: name, args: args}
	p.start()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) start() {
	p.t.Helper()
	if p.shell != "" {
		p.cmd = exec.Command("sh", append([]string{"-c", p.shell + ` && exec "$0" "$@"`, bin}, p.args...)...)
	} else {
		p.cmd = exec.Command(bin, p.args...)
	}
	p.out = &proctest.Output{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	p.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(p.cmd, p.done)
}

// kill ends the process as a crash would (SIGKILL).
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// alive fails the test if the process exited by itself.
func (p *proc) alive() {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.t.Fatalf("%s exited (%v):\n%s", p.name, err, tail(p.out.String(), 40))
	default:
	}
}

// rssKiB is the process' resident set.
func (p *proc) rssKiB() int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %s", url, within)
}

// metric reads one sample (name with labels, as exposed) from /metrics.
func metric(t *testing.T, admin, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	total := 0.0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
