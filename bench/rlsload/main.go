// Command rlsload compares meshguard's rate-limit service with the
// reference, envoyproxy/ratelimit, on one Redis: both serve the same
// configuration; a load of ShouldRateLimit calls runs against each in
// turn (rounds alternate, so the machine's noise falls on both), for one
// hot key and for 10,000 keys, at each concurrency. Per run it records
// requests per second, latency percentiles, and the server process's CPU
// time, so the figure compared is requests per second per core of the
// rate-limit process. It first checks exactness: 300 calls at a 100/s
// limit must get exactly 100 OKs from each.
//
//	go run ./bench/rlsload -meshguard bin/meshguard -reference ~/.cache/meshguard/bin/service_cmd
//	go run ./bench/rlsload -meshguard bin/meshguard -baseline bin/meshguard-old   # A/B of two builds
//	go run ./bench/rlsload -meshguard bin/meshguard -baseline bin/meshguard -baseline-args "--redis-pipelines 2"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	meshguardBin = flag.String("meshguard", "bin/meshguard", "meshguard binary")
	referenceBin = flag.String("reference", "service_cmd", "envoyproxy/ratelimit service binary")
	redisBin     = flag.String("redis", "redis-server", "redis-server binary")
	duration     = flag.Duration("duration", 8*time.Second, "length of one load run")
	rounds       = flag.Int("rounds", 3, "alternating rounds per scenario")
	concurrency  = flag.String("c", "16,64", "concurrent callers, comma-separated")
	connections  = flag.Int("connections", 4, "gRPC connections the callers share")
	only         = flag.String("only", "", `run one scenario: "hot" (one hot key) or "keys" (10,000 keys)`)
	profile      = flag.String("profile", "", "write a CPU profile of meshguard's first load run to this file")
	extraArgs    = flag.String("meshguard-args", "", "more flags for meshguard ratelimit, space-separated")
	baseline     = flag.String("baseline", "", "a meshguard binary to run in the reference's place: an A/B of two builds, or of one build with -baseline-args")
	baselineArgs = flag.String("baseline-args", "", "with -baseline: its flags instead of -meshguard-args, space-separated")
)

const limits = `domain: bench
descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 1000000000}
  - key: exact
    rate_limit: {unit: second, requests_per_unit: 100}
`

type server struct {
	name  string
	addr  string
	admin string // meshguard's admin listener
	cmd   *exec.Cmd
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "rlsload")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	redisPort := freePort()
	redis := start("redis", exec.Command(*redisBin, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"), "")
	defer stop(redis)
	waitTCP(fmt.Sprintf("127.0.0.1:%d", redisPort))

	// The reference reads <RUNTIME_ROOT>/<RUNTIME_SUBDIRECTORY>/config/*.yaml.
	refConf := filepath.Join(dir, "runtime", "ratelimit", "config")
	must(os.MkdirAll(refConf, 0o755))
	must(os.WriteFile(filepath.Join(refConf, "bench.yaml"), []byte(limits), 0o644))
	mgConf := filepath.Join(dir, "meshguard.yaml")
	must(os.WriteFile(mgConf, []byte(limits), 0o644))

	refPort := freePort()
	ref := exec.Command(*referenceBin)
	ref.Env = append(os.Environ(), "REDIS_SOCKET_TYPE=tcp", fmt.Sprintf("REDIS_URL=127.0.0.1:%d", redisPort), "USE_STATSD=false",
		"RUNTIME_ROOT="+filepath.Join(dir, "runtime"), "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false",
		"RUNTIME_IGNOREDOTFILES=true", "LOG_LEVEL=error", "LIMIT_RESPONSE_HEADERS_ENABLED=true",
		// No stats sink at all: the reference does less than meshguard,
		// which keeps Prometheus counters (USE_STATSD=false alone selects
		// a sink that logs every sample).
		"DISABLE_STATS=true",
		"HOST=127.0.0.1", fmt.Sprintf("PORT=%d", freePort()), "DEBUG_HOST=127.0.0.1", fmt.Sprintf("DEBUG_PORT=%d", freePort()),
		"GRPC_HOST=127.0.0.1", fmt.Sprintf("GRPC_PORT=%d", refPort))
	first := func() *server {
		if *baseline != "" {
			return startMeshguard("baseline", *baseline, *baselineArgs, mgConf, redisPort, false)
		}
		return start("envoyproxy/ratelimit", ref, fmt.Sprintf("127.0.0.1:%d", refPort))
	}
	servers := []*server{first(), startMeshguard("meshguard", *meshguardBin, *extraArgs, mgConf, redisPort, *profile != "")}
	for _, s := range servers {
		defer stop(s)
		waitTCP(s.addr)
	}

	fmt.Printf("## Exactness: 300 concurrent calls at a 100/s limit, in one window\n\n| server | OK | OVER_LIMIT |\n|---|---:|---:|\n")
	for _, s := range servers {
		ok, over := exactness(s)
		fmt.Printf("| %s | %d | %d |\n", s.name, ok, over)
	}

	type key struct {
		scenario, server string
		c                int
	}
	results := map[key][]run{}
	var cs []int
	for _, f := range strings.Split(*concurrency, ",") {
		n, err := strconv.Atoi(f)
		must(err)
		cs = append(cs, n)
	}
	scenarios := []string{"hot key", "10,000 keys"}
	switch *only {
	case "":
	case "hot":
		scenarios = scenarios[:1]
	case "keys":
		scenarios = scenarios[1:]
	default:
		log.Fatalf("-only %q: want hot or keys", *only)
	}
	for r := range *rounds {
		for _, sc := range scenarios {
			for _, c := range cs {
				order := servers
				if r%2 == 1 {
					order = []*server{servers[1], servers[0]}
				}
				for _, s := range order {
					res := load(s, sc == "hot key", c)
					log.Printf("round %d %-12s c=%-3d %-22s %8.0f rps  %8.0f rps/core  p50 %v  p99 %v", r+1, sc, c, s.name, res.rps, res.perCore, res.p50, res.p99)
					k := key{sc, s.name, c}
					results[k] = append(results[k], res)
				}
			}
		}
	}
	fmt.Printf("\n## Load: medians of %d rounds of %s, %d connections\n\n", *rounds, *duration, *connections)
	fmt.Printf("| scenario | callers | server | rps | rps per core | p50 | p99 | per core vs reference | p99 vs reference |\n|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range scenarios {
		for _, c := range cs {
			ref := median(results[key{sc, servers[0].name, c}])
			for _, s := range servers {
				m := median(results[key{sc, s.name, c}])
				fmt.Printf("| %s | %d | %s | %.0f | %.0f | %v | %v | %.2f× | %.2f× |\n", sc, c, s.name, m.rps, m.perCore,
					m.p50.Round(10*time.Microsecond), m.p99.Round(10*time.Microsecond), m.perCore/ref.perCore, float64(m.p99)/float64(ref.p99))
			}
		}
	}
}

type run struct {
	rps, perCore float64
	p50, p99     time.Duration
}

// median takes each figure's median over the rounds separately.
func median(rs []run) run {
	pick := func(f func(run) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return run{
		rps:     pick(func(r run) float64 { return r.rps }),
		perCore: pick(func(r run) float64 { return r.perCore }),
		p50:     time.Duration(pick(func(r run) float64 { return float64(r.p50) })),
		p99:     time.Duration(pick(func(r run) float64 { return float64(r.p99) })),
	}
}

func dial(addr string, n int) []rlsv3.RateLimitServiceClient {
	var out []rlsv3.RateLimitServiceClient
	for range n {
		// Envoy's HTTP/2 windows (256 MiB, its defaults) and so, as
		// Envoy, no BDP pings: gRPC-Go's own client would ping on every
		// round of responses and make both servers answer the pings.
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(256<<20), grpc.WithInitialConnWindowSize(256<<20))
		must(err)
		out = append(out, rlsv3.NewRateLimitServiceClient(conn))
	}
	return out
}

func request(key, value string) *rlsv3.RateLimitRequest {
	return &rlsv3.RateLimitRequest{Domain: "bench", Descriptors: []*ratelimitv3.RateLimitDescriptor{{
		Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: key, Value: value}}}}}
}

// exactness fires 300 calls at the "exact" limit (100/s) right after a
// second begins, so that all fall in one window.
func exactness(s *server) (ok, over int64) {
	clients := dial(s.addr, 4)
	req := request("exact", s.name)
	_, _ = clients[0].ShouldRateLimit(context.Background(), request("user", "warm"))
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	var wg sync.WaitGroup
	var okN, overN atomic.Int64
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := clients[i%len(clients)].ShouldRateLimit(context.Background(), req)
			switch {
			case err != nil:
				log.Printf("%s: %v", s.name, err)
			case resp.GetOverallCode() == rlsv3.RateLimitResponse_OK:
				okN.Add(1)
			default:
				overN.Add(1)
			}
		}()
	}
	wg.Wait()
	return okN.Load(), overN.Load()
}

// startMeshguard starts bin's rate-limit service on free ports.
func startMeshguard(name, bin, extra, conf string, redisPort int, pprof bool) *server {
	admin, addr := fmt.Sprintf("127.0.0.1:%d", freePort()), fmt.Sprintf("127.0.0.1:%d", freePort())
	args := []string{"ratelimit", "--config", conf, "--log-level", "error",
		"--redis-addr", fmt.Sprintf("127.0.0.1:%d", redisPort), "--listen", addr, "--admin", admin}
	if pprof {
		args = append(args, "--admin-pprof")
	}
	args = append(args, strings.Fields(extra)...)
	s := start(name, exec.Command(bin, args...), addr)
	s.admin = admin
	return s
}

// load runs c callers for the duration and measures the server.
func load(s *server, hot bool, c int) run {
	clients := dial(s.addr, *connections)
	reqs := make([]*rlsv3.RateLimitRequest, 10000)
	for i := range reqs {
		v := "hot"
		if !hot {
			v = "k" + strconv.Itoa(i)
		}
		reqs[i] = request("user", v)
	}
	// Warm up connections and the server.
	for i := range 200 {
		_, _ = clients[i%len(clients)].ShouldRateLimit(context.Background(), reqs[i%len(reqs)])
	}
	cpu0 := cpuSeconds(s.cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	if *profile != "" && s.admin != "" {
		go writeProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.admin, int(duration.Seconds())-1), *profile)
		*profile = "" // the first run only
	}
	lat := make([][]time.Duration, c)
	var n atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := clients[w%len(clients)]
			i := w * 7919
			for ctx.Err() == nil {
				t0 := time.Now()
				if _, err := cl.ShouldRateLimit(context.Background(), reqs[i%len(reqs)]); err != nil {
					log.Fatalf("%s: %v", s.name, err)
				}
				lat[w] = append(lat[w], time.Since(t0))
				n.Add(1)
				i++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuSeconds(s.cmd.Process.Pid) - cpu0
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	total := float64(n.Load())
	return run{rps: total / elapsed.Seconds(), perCore: total / cpu, p50: all[len(all)/2], p99: all[len(all)*99/100]}
}

// writeProfile saves the CPU profile at url to path.
func writeProfile(url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		log.Printf("profile: %s %v", resp.Status, err)
		return
	}
	must(os.WriteFile(path, b, 0o644))
}

// cpuSeconds is a process's user+system CPU time (/proc/PID/stat).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

func start(name string, cmd *exec.Cmd, addr string) *server {
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	must(cmd.Start())
	return &server{name: name, addr: addr, cmd: cmd}
}

func stop(s *server) {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func waitTCP(addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s did not listen within 30s", addr)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
