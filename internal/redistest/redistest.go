// Package redistest runs real redis-server (and redis-sentinel) processes
// for tests, on loopback ports of their own, stopped when the test ends.
// Tests kill and restart them to see what meshguard does without Redis.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process.
type Server struct {
	t    testing.TB
	dir  string
	port int
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs redis-server on a free loopback port, without persistence;
// extra are more `--directive value` arguments.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
	s.args = append([]string{bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--protected-mode", "no"}, extra...)
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Start (re)starts the process on its port and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.cmd = cmd
	waitPing(s.t, s.Addr(), 10*time.Second)
}

// Kill stops the process at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Client is a go-redis client for the server, closed with the test.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Sentinel is a set of Sentinels watching a master with one replica.
type Sentinel struct {
	Master, Replica *Server
	Sentinels       []*Server
	Name            string
}

// StartSentinel runs a master, a replica and three Sentinels (quorum 2)
// that fail over within a few seconds of the master's death.
func StartSentinel(t testing.TB, name string) *Sentinel {
	t.Helper()
	sentinelBin := lookPath(t, "redis-sentinel")
	master := Start(t)
	replica := Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	st := &Sentinel{Master: master, Replica: replica, Name: name}
	for range 3 {
		s := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
		conf := filepath.Join(s.dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
			s.port, s.dir, name, master.Port(), name, name, name)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s.args = []string{sentinelBin, conf}
		s.Start()
		t.Cleanup(s.Kill)
		st.Sentinels = append(st.Sentinels, s)
	}
	return st
}

// Addrs are the Sentinels' addresses.
func (st *Sentinel) Addrs() []string {
	var out []string
	for _, s := range st.Sentinels {
		out = append(out, s.Addr())
	}
	return out
}

// MasterAddr asks the first answering Sentinel where the master is now.
func (st *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, s := range st.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
		addr, err := c.GetMasterAddrByName(ctx, st.Name).Result()
		_ = c.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel knows master %s: %v", st.Name, last)
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		// Not a skip: .ci/run and `make redis` install it, and a test that
		// quietly skips would hide every Redis behaviour.
		t.Fatalf("%s not on PATH: install it (Debian: apt-get install redis-server redis-sentinel; `make redis` does)", name)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPing waits until addr answers PING, with PONG or an error (a server
// that requires authentication refuses it: it is up all the same).
func waitPing(t testing.TB, addr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if ping(addr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis at %s did not answer within %s", addr, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-"))
}
