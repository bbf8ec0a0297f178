// Command authzload runs the ext_authz load benchmark: ghz against meshguard
// and against a no-op Check server (the transport floor), alternating, for
// four requests. It prints a markdown report with medians and ratios.
//
//	go run ./bench/authzload -meshguard bin/meshguard -noop bin/noopauthz -ghz $(which ghz)
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshguard/meshguard/internal/demoidp"
)

var (
	meshguardBin = flag.String("meshguard", "bin/meshguard", "meshguard binary")
	noopBin      = flag.String("noop", "bin/noopauthz", "no-op ext_authz server binary")
	ghzBin       = flag.String("ghz", "ghz", "ghz binary")
	quickstart   = flag.String("quickstart", "examples/quickstart", "quickstart directory (policies, keys)")
	duration     = flag.Duration("duration", 10*time.Second, "duration of each ghz run")
	concurrency  = flag.Int("c", 16, "ghz concurrency")
	connections  = flag.Int("connections", 2, "ghz connections")
	rounds       = flag.Int("rounds", 3, "alternating rounds per request")
	decisionLog  = flag.Bool("decision-log", true, "write meshguard's decision log (to a file) during the run")
	only         = flag.String("only", "", "run only the request whose name contains this")
	meshguardEnv envFlag
	noopEnv      envFlag
)

func init() {
	flag.Var(&meshguardEnv, "meshguard-env", "KEY=VALUE added to meshguard's environment only (repeatable), e.g. GOGC=100")
	flag.Var(&noopEnv, "noop-env", "KEY=VALUE added to the no-op server's environment only (repeatable)")
}

// envFlag collects KEY=VALUE settings for one server process.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

type ghzReport struct {
	Count   int64   `json:"count"`
	Rps     float64 `json:"rps"`
	Average int64   `json:"average"`
	Latency []struct {
		Percentage int   `json:"percentage"`
		Latency    int64 `json:"latency"`
	} `json:"latencyDistribution"`
	StatusCodeDistribution map[string]int64 `json:"statusCodeDistribution"`
	ErrorDistribution      map[string]int64 `json:"errorDistribution"`

	// serverCPU is the CPU time the server under load used during the
	// run (user + system, from /proc), per completed call.
	serverCPU time.Duration
}

func (r ghzReport) pct(p int) time.Duration {
	for _, l := range r.Latency {
		if l.Percentage == p {
			return time.Duration(l.Latency)
		}
	}
	return 0
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "authzload")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	qs, _ := filepath.Abs(*quickstart)
	mgAddr, adminAddr, noopAddr := freeAddr(), freeAddr(), freeAddr()
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
policies: %s/policies
entities: %s/entities.json
jwt:
  providers:
    - name: demo
      issuer: https://idp.meshguard.example
      audiences: [meshguard-demo]
      jwks_file: %s/jwks.json
      roles_claim: roles
log_level: warn
admin_pprof: true
`, mgAddr, adminAddr, qs, qs, qs)
	if *decisionLog {
		cfg += fmt.Sprintf("decision_log:\n  path: %s/decisions.jsonl\n", dir)
	}
	cfgPath := filepath.Join(dir, "authz.yaml")
	must(os.WriteFile(cfgPath, []byte(cfg), 0o644))

	mg := start(meshguardEnv, *meshguardBin, "authz", "--config", cfgPath)
	defer stop(mg)
	noopPprof := freeAddr()
	noop := start(noopEnv, *noopBin, "-listen", noopAddr, "-pprof", noopPprof)
	log.Printf("no-op server pprof at http://%s/debug/pprof/", noopPprof)
	defer stop(noop)
	waitReady("http://" + adminAddr + "/readyz")
	waitTCP(noopAddr)
	log.Printf("meshguard admin (pprof) at http://%s/debug/pprof/", adminAddr)

	iss, err := demoidp.Load(filepath.Join(qs, "demo-issuer.jwk"))
	must(err)
	tok, err := iss.Mint(demoidp.Claims("https://idp.meshguard.example", "alice", []string{"meshguard-demo"}, nil, time.Hour))
	must(err)
	forged := tok[:strings.LastIndex(tok, ".")+1] + strings.Repeat("A", 86)

	orders := map[string]string{"meshguard.service": "orders", "meshguard.policy": "orders", "meshguard.route": "orders/api"}
	cases := []struct {
		name, method, path, token string
		want                      codes.Code // the decision, checked once before the load
	}{
		{"anonymous allow", "GET", "/catalog/books", "", codes.OK},
		{"anonymous deny", "DELETE", "/orders/42", "", codes.PermissionDenied},
		{"valid JWT allow", "GET", "/orders/42", tok, codes.OK},
		{"forged JWT deny", "GET", "/orders/42", forged, codes.Unauthenticated},
	}

	var out bytes.Buffer
	fmt.Fprintf(&out, "Machine: %d CPUs (%s), %s. ghz: -c %d --connections %d, %s per run, %d alternating rounds (no-op first in odd rounds, meshguard first in even ones); medians shown. Paired ratio: the median of each round's meshguard/no-op rps ratio, with its range; a round's two runs are adjacent in time, so a slow period on this shared machine affects both. Decision log: %v. CPU/call: the server's CPU time (user + system) during a run over the calls it completed.\n\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), *concurrency, *connections, *duration, *rounds, *decisionLog)
	if len(meshguardEnv)+len(noopEnv) > 0 {
		fmt.Fprintf(&out, "Environment: meshguard %q, no-op %q.\n\n", meshguardEnv.String(), noopEnv.String())
	}
	fmt.Fprintln(&out, "| request | no-op rps | meshguard rps | rps ratio | paired ratio (range) | no-op p50 | meshguard p50 | no-op p99 | meshguard p99 | p99 ratio | no-op CPU/call | meshguard CPU/call | CPU ratio (no-op/meshguard) | checked |")
	fmt.Fprintln(&out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, c := range cases {
		if *only != "" && !strings.Contains(c.name, *only) {
			continue
		}
		req := checkRequest(c.method, c.path, c.token, orders)
		decided := checkOnce(mgAddr, req, c.want)
		reqPath := filepath.Join(dir, "req.json")
		must(os.WriteFile(reqPath, req, 0o644))
		var noopRuns, mgRuns []ghzReport
		for r := range *rounds {
			log.Printf("%s: round %d/%d", c.name, r+1, *rounds)
			if r%2 == 0 {
				noopRuns = append(noopRuns, runGhz(noopAddr, reqPath, noop.Process.Pid))
				mgRuns = append(mgRuns, runGhz(mgAddr, reqPath, mg.Process.Pid))
			} else {
				mgRuns = append(mgRuns, runGhz(mgAddr, reqPath, mg.Process.Pid))
				noopRuns = append(noopRuns, runGhz(noopAddr, reqPath, noop.Process.Pid))
			}
		}
		paired := make([]float64, len(mgRuns))
		for i := range mgRuns {
			paired[i] = mgRuns[i].Rps / noopRuns[i].Rps
		}
		slices.Sort(paired)
		nr, mr := median(noopRuns, rps), median(mgRuns, rps)
		np50, mp50 := median(noopRuns, p50), median(mgRuns, p50)
		np99, mp99 := median(noopRuns, p99), median(mgRuns, p99)
		ncpu, mcpu := median(noopRuns, cpuPerCall), median(mgRuns, cpuPerCall)
		fmt.Fprintf(&out, "| %s | %.0f | %.0f | %.2f | %.2f (%.2f–%.2f) | %s | %s | %s | %s | %.2f | %.1f µs | %.1f µs | %.2f | %s |\n", c.name, nr, mr, mr/nr,
			paired[len(paired)/2], paired[0], paired[len(paired)-1], dur(np50), dur(mp50), dur(np99), dur(mp99), mp99/np99, ncpu/1e3, mcpu/1e3, ncpu/mcpu, decided+"; "+errorsSeen(mgRuns))
	}
	fmt.Fprintf(&out, "\nPeak RSS over the whole run (VmHWM): no-op %s, meshguard %s.\n", peakRSS(noop.Process.Pid), peakRSS(mg.Process.Pid))
	fmt.Print(out.String())
}

// peakRSS is a process's peak resident set size so far.
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb); err == nil {
				return fmt.Sprintf("%d MiB", kb>>10)
			}
		}
	}
	return "unknown"
}

func rps(r ghzReport) float64        { return r.Rps }
func cpuPerCall(r ghzReport) float64 { return float64(r.serverCPU) }
func p50(r ghzReport) float64        { return float64(r.pct(50)) }
func p99(r ghzReport) float64        { return float64(r.pct(99)) }

func median(rs []ghzReport, f func(ghzReport) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func dur(ns float64) string { return time.Duration(ns).Round(time.Microsecond).String() }

// errorsSeen counts calls that did not complete. ghz cancels the calls in
// flight when a run's duration ends; those show up as Canceled/Unavailable.
func errorsSeen(rs []ghzReport) string {
	var total, failed int64
	for _, r := range rs {
		total += r.Count
		failed += r.Count - r.StatusCodeDistribution["OK"]
	}
	return fmt.Sprintf("%d of %d calls cut off at run end", failed, total)
}

// checkOnce sends req with a real client and checks the decision's code.
func checkOnce(addr string, req []byte, want codes.Code) string {
	var cr authv3.CheckRequest
	must(protojson.Unmarshal(req, &cr))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &cr)
	must(err)
	if got := codes.Code(resp.GetStatus().GetCode()); got != want {
		log.Fatalf("decision %s, want %s", got, want)
	}
	return "decision " + want.String()
}

// runGhz loads the server at addr (process pid) for one run.
func runGhz(addr, reqPath string, pid int) ghzReport {
	cpuBefore := processCPU(pid)
	cmd := exec.Command(*ghzBin, "--insecure",
		"--call", "envoy.service.auth.v3.Authorization.Check",
		"--data-file", reqPath,
		"-c", fmt.Sprint(*concurrency), "--connections", fmt.Sprint(*connections),
		"--duration", duration.String(), "--skipFirst", "1000",
		"--format", "json", addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("ghz: %v\n%s", err, stderr.String())
	}
	cpu := processCPU(pid) - cpuBefore
	var r ghzReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		log.Fatalf("ghz output: %v", err)
	}
	if r.Count > 0 {
		r.serverCPU = cpu / time.Duration(r.Count)
	}
	return r
}

// processCPU is the user + system CPU time a process has used, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s, the value
// of USER_HZ on Linux).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatalf("server CPU time: %v", err)
	}
	// The command name (field 2) may contain spaces; fields follow its ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var utime, stime int64
	if _, err := fmt.Sscan(fields[11]+" "+fields[12], &utime, &stime); err != nil {
		log.Fatalf("server CPU time: %v", err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// checkRequest builds the CheckRequest an Envoy sidecar would send, as JSON for ghz.
func checkRequest(method, path, token string, ext map[string]string) []byte {
	hdrs := map[string]string{":method": method, ":path": path, ":authority": "orders.demo",
		"x-request-id": "bench", "user-agent": "ghz"}
	if token != "" {
		hdrs["authorization"] = "Bearer " + token
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Host: "orders.demo", Scheme: "https", Headers: hdrs}},
		ContextExtensions: ext,
	}}
	b, err := protojson.Marshal(req)
	must(err)
	return b
}

func start(env []string, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	must(cmd.Start())
	return cmd
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

func waitReady(url string) {
	for range 200 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s never became ready", url)
}

func waitTCP(addr string) {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s never listened", addr)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
