// Command xdsscale measures the control plane under a simulated fleet:
// N lightweight ADS clients (one SotW ADS stream each, ACKing like Envoy)
// against `meshguard controlplane` running as its own process, for a mesh of
// M services. It reports time to initial sync, time from a change to every
// affected proxy ACKing it, and the control plane's CPU and RSS.
//
//	go run ./bench/xdsscale -meshguard bin/meshguard -proxies 1000 -services 100
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	bin      = flag.String("meshguard", "bin/meshguard", "meshguard binary")
	proxies  = flag.Int("proxies", 1000, "simulated sidecars")
	services = flag.Int("services", 100, "services in the mesh")
	deps     = flag.Int("deps", 5, "services each service calls")
	conns    = flag.Int("conns", 0, "client TCP connections (default: one per proxy)")
)

const (
	ldsType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	rdsType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	cdsType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	edsType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	sdsType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "xdsscale")
	must(err)
	defer os.RemoveAll(dir)
	xdsAddr := freeAddr()
	meshPath := filepath.Join(dir, "mesh.yaml")
	must(os.WriteFile(meshPath, []byte(genMesh(xdsAddr, "250ms", 0)), 0o644))

	// The simulated sidecars subscribe to their SVIDs over plaintext loopback.
	cmd := exec.Command(*bin, "controlplane", "--mesh", meshPath, "--admin", freeAddr(), "--log-level", "warn", "--insecure-loopback-sds",
		"--ca-dir", filepath.Join(dir, "ca"))
	cmd.Stderr = os.Stderr
	start := time.Now()
	must(cmd.Start())
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	waitTCP(xdsAddr)
	log.Printf("control plane up in %s (mesh: %d proxies × %d services)", time.Since(start).Round(time.Millisecond), *proxies, *services)

	f := newFleet(xdsAddr)
	t0 := time.Now()
	f.connectAll()
	f.waitAll(func(p *proxy) bool { return p.synced(nil) }, 10*time.Minute)
	initial := time.Since(t0)
	cpu0, rss0, hwm0 := procStats(cmd.Process.Pid)
	log.Printf("initial sync of %d proxies: %s; control plane RSS %d MiB", *proxies, initial.Round(time.Millisecond), rss0>>20)

	// Change 1: one route of service 0 (its workloads' RDS changes).
	affected := f.snapshotVersions()
	must(os.WriteFile(meshPath, []byte(genMesh(xdsAddr, "250ms", 1)), 0o644))
	t1 := time.Now()
	f.waitAll(func(p *proxy) bool { return !p.isService(0) || p.changed(affected, rdsType) }, 10*time.Minute)
	routeConv := time.Since(t1)
	cpu1, _, _ := procStats(cmd.Process.Pid)

	// Change 2: the authorizer timeout (every inbound listener changes).
	before := f.snapshotVersions()
	must(os.WriteFile(meshPath, []byte(genMesh(xdsAddr, "300ms", 1)), 0o644))
	t2 := time.Now()
	f.waitAll(func(p *proxy) bool { return p.changed(before, ldsType) }, 10*time.Minute)
	globalConv := time.Since(t2)
	cpu2, rss2, hwm2 := procStats(cmd.Process.Pid)

	fmt.Printf("| %d | %d | %s | %s | %.2f | %s | %.2f | %d | %d |\n",
		*proxies, *services, initial.Round(time.Millisecond),
		routeConv.Round(time.Millisecond), (cpu1 - cpu0).Seconds(),
		globalConv.Round(time.Millisecond), (cpu2 - cpu1).Seconds(),
		max(rss0, rss2)>>20, max(hwm0, hwm2)>>20)
	log.Printf("responses received: %d", f.responses.Load())
}

// genMesh writes M services with N workloads spread over them; variant 1
// adds a method to one route of service 0.
func genMesh(xdsAddr, timeout string, variant int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: meshguard.dev/v1alpha1\nkind: Mesh\nmetadata: {name: scale}\nspec:\n  trustDomain: scale.test\n")
	fmt.Fprintf(&b, "  authz: {address: 127.0.0.1:9191, timeout: %s}\n  xds: {address: %s}\n  services:\n", timeout, xdsAddr)
	per := (*proxies + *services - 1) / *services
	n := 0
	for s := 0; s < *services; s++ {
		fmt.Fprintf(&b, "    - name: svc%d\n      port: %d\n      calls: [", s, 10000+s)
		for d := 1; d <= *deps; d++ {
			if d > 1 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "svc%d", (s+d)%*services)
		}
		b.WriteString("]\n      routes:\n")
		methods := "GET"
		if variant == 1 && s == 0 {
			methods = "GET, HEAD"
		}
		fmt.Fprintf(&b, "        - {match: {prefix: /api, methods: [%s]}}\n        - {match: {prefix: /}}\n      workloads:\n", methods)
		for w := 0; w < per && n < *proxies; w++ {
			fmt.Fprintf(&b, "        - {name: svc%d-%d, address: 10.%d.%d.%d}\n", s, w, n>>16&255, n>>8&255, n&255)
			n++
		}
		if per == 0 || n >= *proxies && s < *services-1 {
			// services past the fleet keep one workload so the mesh stays valid
			if n >= *proxies {
				fmt.Fprintf(&b, "        - {name: idle%d, address: 10.255.%d.%d}\n", s, s>>8&255, s&255)
			}
		}
	}
	return b.String()
}

type fleet struct {
	addr      string
	proxies   []*proxy
	conns     []*grpc.ClientConn
	responses atomic.Int64
}

type proxy struct {
	node    string
	service int
	mu      sync.Mutex
	acked   map[string]string // type → version ACKed
	names   map[string][]string
	stream  discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

func newFleet(addr string) *fleet {
	f := &fleet{addr: addr}
	per := (*proxies + *services - 1) / *services
	n := 0
	for s := 0; s < *services && n < *proxies; s++ {
		for w := 0; w < per && n < *proxies; w++ {
			f.proxies = append(f.proxies, &proxy{node: fmt.Sprintf("svc%d-%d", s, w), service: s, acked: map[string]string{}, names: map[string][]string{}})
			n++
		}
	}
	c := *conns
	if c <= 0 {
		c = len(f.proxies)
	}
	for i := 0; i < c; i++ {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		must(err)
		f.conns = append(f.conns, conn)
	}
	return f
}

func (f *fleet) connectAll() {
	for i, p := range f.proxies {
		conn := f.conns[i%len(f.conns)]
		go f.run(conn, p)
	}
}

// run behaves like Envoy's ADS client: CDS and LDS wildcard, then EDS for
// the EDS clusters, RDS for the listeners' route configurations, SDS for
// the two secrets; every response ACKed.
func (f *fleet) run(conn *grpc.ClientConn, p *proxy) {
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		log.Fatalf("%s: %v", p.node, err)
	}
	p.stream = stream
	node := &corev3.Node{Id: p.node, Cluster: fmt.Sprintf("svc%d", p.service)}
	send := func(typ, version, nonce string, names []string) {
		if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names}); err != nil {
			log.Fatalf("%s: send: %v", p.node, err)
		}
	}
	send(cdsType, "", "", nil)
	send(ldsType, "", "", nil)
	send(sdsType, "", "", []string{"default", "ROOTCA"})
	requested := map[string]bool{}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return
		}
		f.responses.Add(1)
		typ := resp.GetTypeUrl()
		var names []string
		for _, r := range resp.GetResources() {
			names = append(names, resourceName(typ, r.GetValue()))
		}
		send(typ, resp.GetVersionInfo(), resp.GetNonce(), p.subscribedNames(typ))
		p.mu.Lock()
		p.acked[typ] = resp.GetVersionInfo()
		p.names[typ] = names
		p.mu.Unlock()
		// Follow-up subscriptions, as Envoy makes them.
		switch typ {
		case cdsType:
			var eds []string
			for _, n := range names {
				if strings.HasPrefix(n, "outbound|") {
					eds = append(eds, n)
				}
			}
			if !requested[edsType] {
				requested[edsType] = true
				p.setSubscribed(edsType, eds)
				send(edsType, "", "", eds)
			}
		case ldsType:
			var rds []string
			for _, n := range names {
				switch {
				case strings.HasPrefix(n, "outbound|"):
					rds = append(rds, n)
				case n == "inbound":
					rds = append(rds, fmt.Sprintf("inbound|svc%d", p.service))
				}
			}
			if !requested[rdsType] {
				requested[rdsType] = true
				p.setSubscribed(rdsType, rds)
				send(rdsType, "", "", rds)
			}
		}
	}
}

func (p *proxy) setSubscribed(typ string, names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names["sub:"+typ] = names
}

func (p *proxy) subscribedNames(typ string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch typ {
	case sdsType:
		return []string{"default", "ROOTCA"}
	case edsType, rdsType:
		return p.names["sub:"+typ]
	}
	return nil
}

// resourceName reads field 1 (name / cluster_name) of a serialized resource
// without unmarshalling all of it: the load generator must stay cheap.
func resourceName(_ string, b []byte) string {
	for i := 0; i < len(b); {
		key, n := uvarint(b[i:])
		i += n
		field, wt := key>>3, key&7
		switch wt {
		case 2:
			l, n := uvarint(b[i:])
			i += n
			if field == 1 {
				return string(b[i : i+int(l)])
			}
			i += int(l)
		case 0:
			_, n := uvarint(b[i:])
			i += n
		case 1:
			i += 8
		case 5:
			i += 4
		default:
			return ""
		}
	}
	return ""
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i, c := range b {
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, len(b)
}

func (p *proxy) synced(_ map[string]map[string]string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range []string{cdsType, ldsType, edsType, rdsType, sdsType} {
		if p.acked[t] == "" {
			return false
		}
	}
	return true
}

func (p *proxy) isService(s int) bool { return p.service == s }

func (p *proxy) changed(before map[string]map[string]string, typ string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked[typ] != before[p.node][typ]
}

func (f *fleet) snapshotVersions() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, p := range f.proxies {
		p.mu.Lock()
		m := map[string]string{}
		for k, v := range p.acked {
			m[k] = v
		}
		p.mu.Unlock()
		out[p.node] = m
	}
	return out
}

func (f *fleet) waitAll(cond func(*proxy) bool, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		done := 0
		for _, p := range f.proxies {
			if cond(p) {
				done++
			}
		}
		if done == len(f.proxies) {
			return
		}
		if time.Now().After(deadline) {
			log.Fatalf("only %d of %d proxies converged within %s", done, len(f.proxies), limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procStats returns CPU time, current RSS and peak RSS of pid.
func procStats(pid int) (cpu time.Duration, rss, hwm uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(err)
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseUint(fields[11], 10, 64)
	st, _ := strconv.ParseUint(fields[12], 10, 64)
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	must(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = kib(v)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = kib(v)
		}
	}
	return cpu, rss, hwm
}

func kib(s string) uint64 {
	n, _ := strconv.ParseUint(strings.Fields(s)[0], 10, 64)
	return n << 10
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

func waitTCP(addr string) {
	for range 600 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s never listened", addr)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
