//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/internal/xdstest"
)

// proxylessMesh: frontend (a gRPC-Go xDS client) calls orders (a gRPC-Go
// xDS server), when CALLS lists orders.
const proxylessMesh = `apiVersion: meshguard.dev/v1alpha1
kind: Mesh
metadata: {name: chaos}
spec:
  trustDomain: meshguard.test
  authz: {address: 127.0.0.1:9191}
  xds: {address: %s}
  services:
    - name: frontend
      protocol: grpc
      port: 1
      calls: [%s]
      workloads: [{name: frontend-0, address: 127.0.0.1, appPort: 1, proxyless: true}]
    - name: orders
      protocol: grpc
      port: %d
      workloads: [{name: orders-0, address: 127.0.0.1, appPort: %d, proxyless: true}]
    - name: storm
      protocol: grpc
      port: 2
      calls: [orders]
      workloads:
%s`

// stormWorkloads are the 100 nodes of the NACK storm.
func stormWorkloads() string {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "        - {name: storm-%d, address: 127.0.1.%d, appPort: 2, proxyless: true}\n", i, i+1)
	}
	return b.String()
}

type cpEnv struct {
	t          *testing.T
	dir, mesh  string
	xds, admin string
	port       int
	cp         *proc
}

func (e *cpEnv) writeMesh(calls string) {
	write(e.t, e.mesh, fmt.Sprintf(proxylessMesh, e.xds, calls, e.port, e.port, stormWorkloads()))
}

// lastError is the control plane's reported mesh error ("" when none).
func (e *cpEnv) lastError() string {
	resp, err := http.Get("http://" + e.admin + "/v1/proxies")
	if err != nil {
		return "unreachable: " + err.Error()
	}
	defer resp.Body.Close()
	var st struct {
		LastError string `json:"last_error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st.LastError
}

// synced reports whether every node is connected and has ACKed the
// current version of every type it was sent.
func (e *cpEnv) synced(nodes ...string) bool {
	resp, err := http.Get("http://" + e.admin + "/v1/proxies")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Proxies []struct {
			Node      string `json:"node"`
			Connected bool   `json:"connected"`
			Types     map[string]struct {
				State, Current, Acked string
			} `json:"types"`
		} `json:"proxies"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return false
	}
	ok := 0
	for _, p := range st.Proxies {
		for _, n := range nodes {
			if p.Node != n || !p.Connected || p.Types["Listener"].State != xds.Synced {
				continue
			}
			good := true
			for _, ty := range p.Types {
				good = good && (ty.State == xds.Synced || ty.State == xds.NotSent)
			}
			if good {
				ok++
			}
		}
	}
	return ok == len(nodes)
}

// A control plane that is killed, restarted, fed corrupt meshes and a
// storm of NACKs while proxyless workloads call each other through it:
// calls never fail for it, a corrupt edit changes nothing, the proxies
// reconverge within 5 s of its restart, and no NACK is answered with the
// same version again.
func TestControlPlaneUnderChaos(t *testing.T) {
	dir := t.TempDir()
	lis, port := xdstest.FreeListener(t)
	e := &cpEnv{t: t, dir: dir, mesh: filepath.Join(dir, "mesh.yaml"), xds: xdstest.FreeAddr(t), admin: xdstest.FreeAddr(t), port: port}
	e.writeMesh("orders")
	ca, err := devca.LoadOrCreate(filepath.Join(dir, "ca"), spiffeid.RequireTrustDomainFromString("meshguard.test"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"controlplane", "--mesh", e.mesh, "--listen", e.xds, "--admin", e.admin, "--ca-dir", filepath.Join(dir, "ca"), "--log-level", "warn"}
	e.cp = start(t, "controlplane", args...)
	waitHTTP(t, "http://"+e.admin+"/readyz", 20*time.Second)

	meshNow := func() *model.Mesh {
		data, _ := os.ReadFile(e.mesh)
		m, err := model.Parse(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	px := &xdstest.Proxyless{T: t, Dir: dir, CA: ca, Mesh: meshNow}
	px.Serve("orders-0", "spiffe://meshguard.test/ns/default/sa/orders", lis)
	frontend := px.Dial("frontend-0", "spiffe://meshguard.test/ns/default/sa/frontend", fmt.Sprintf("orders.default:%d", port))
	deadline := time.Now().Add(20 * time.Second)
	for xdstest.Call(frontend) != nil {
		if time.Now().After(deadline) {
			t.Fatal("frontend never reached orders")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The load: frontend calls orders without pause.
	type counts struct{ ok, denied, failed atomic.Int64 }
	var mu sync.Mutex
	phases := map[string]*counts{}
	var order []string
	cur := &atomic.Pointer[counts]{}
	setPhase := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		c := &counts{}
		phases[name], order = c, append(order, name)
		cur.Store(c)
	}
	setPhase("steady")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			err := xdstest.Call(frontend)
			c := cur.Load()
			switch {
			case err == nil:
				c.ok.Add(1)
			case status.Code(err) == codes.PermissionDenied:
				c.denied.Add(1)
			default:
				c.failed.Add(1)
			}
		}
	})
	defer func() {
		stop.Store(true)
		wg.Wait()
		var b strings.Builder
		for _, p := range order {
			c := phases[p]
			fmt.Fprintf(&b, "\n%-28s ok %6d  denied %6d  failed %6d", p, c.ok.Load(), c.denied.Load(), c.failed.Load())
		}
		t.Logf("frontend → orders calls by phase:%s", b.String())
	}()
	time.Sleep(time.Second)

	// Corrupt mesh edits: nothing served changes, the error is reported.
	setPhase("corrupt mesh edits")
	for _, bad := range []string{"{{{ not yaml", strings.Replace(fmt.Sprintf(proxylessMesh, e.xds, "orders", port, port, stormWorkloads()), "protocol: grpc", "protocol: smtp", 1), ""} {
		write(t, e.mesh, bad)
		time.Sleep(700 * time.Millisecond)
		if e.lastError() == "" {
			t.Errorf("corrupt mesh %q: no error reported", bad[:min(len(bad), 20)])
		}
	}
	e.writeMesh("orders")
	time.Sleep(500 * time.Millisecond)

	// NACK storm: 100 proxies reject every listener version.
	setPhase("NACK storm (100 proxies)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := xdstest.Dial(t, e.xds)
	var storm []*xdstest.ADS
	for i := range 100 {
		a := xdstest.NewADS(ctx, t, conn, fmt.Sprintf("storm-%d", i), "storm", xds.ListenerType)
		r, err := a.TryFetch(5 * time.Second)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if len(xdstest.Names(t, r, &listenerv3.Listener{})) == 0 {
			t.Fatalf("stream %d got no listener", i)
		}
		a.Nack("chaos: rejected")
		storm = append(storm, a)
	}
	before := metric(t, e.admin, `meshguard_xds_pushes_total{type="Listener"}`)
	time.Sleep(2 * time.Second)
	if _, err := storm[0].TryFetch(time.Second); err == nil {
		t.Error("a NACKed version was sent again")
	}
	if after := metric(t, e.admin, `meshguard_xds_pushes_total{type="Listener"}`); after != before {
		t.Errorf("%v listener pushes after the NACKs, want none (no resend loop)", after-before)
	}
	t.Logf("NACKs counted: %v; control plane RSS %d KiB", metric(t, e.admin, "meshguard_xds_nacks_total"), e.cp.rssKiB())
	cancel()
	e.cp.alive()

	// Killed: the workloads keep their configuration.
	setPhase("control plane down")
	e.cp.kill()
	// A supervisor restarts a crashed process within about a second (the
	// kubelet does at once the first time); the proxies' own reconnect
	// backoff (gRPC-Go: 1 s, ×1.6, jittered) is part of the measurement.
	time.Sleep(time.Second)
	// While it is down, the mesh changes: frontend may no longer call orders.
	e.writeMesh("")

	// Restarted: the workloads reconnect and take the change.
	setPhase("restarted, calls revoked")
	restarted := time.Now()
	e.cp.start()
	waitHTTP(t, "http://"+e.admin+"/readyz", 10*time.Second)
	ready := time.Since(restarted)
	deadline = time.Now().Add(15 * time.Second)
	for !e.synced("frontend-0", "orders-0") {
		if time.Now().After(deadline) {
			t.Fatal("the workloads did not reconverge within 15 s of the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(restarted); took > 5*time.Second {
		t.Errorf("reconverged %s after the restart (ready after %s), want ≤ 5 s", took.Round(10*time.Millisecond), ready.Round(10*time.Millisecond))
	} else {
		t.Logf("every workload reconnected and ACKed the new mesh %s after the control plane restarted (it was ready after %s)",
			took.Round(10*time.Millisecond), ready.Round(10*time.Millisecond))
	}
	// The revocation governs: a new frontend channel cannot reach orders.
	// (An existing gRPC-Go channel keeps the listener it has: see
	// docs/controlplane.md.)
	fresh := px.Dial("frontend-0", "spiffe://meshguard.test/ns/default/sa/frontend", fmt.Sprintf("orders.default:%d", port))
	if err := xdstest.Call(fresh); err == nil {
		t.Error("a new frontend channel still reaches orders after its calls were revoked")
	}

	setPhase("calls allowed again")
	e.writeMesh("orders")
	deadline = time.Now().Add(5 * time.Second)
	for xdstest.Call(frontend) != nil {
		if time.Now().After(deadline) {
			t.Fatal("calls not allowed again within 5 s of the edit")
		}
	}
	time.Sleep(500 * time.Millisecond)
	e.cp.alive()

	for _, p := range []string{"steady", "corrupt mesh edits", "NACK storm (100 proxies)", "control plane down"} {
		c := phases[p]
		if c.failed.Load() > 0 || c.denied.Load() > 0 || c.ok.Load() == 0 {
			t.Errorf("%s: %d calls failed, %d denied (%d ok): the workloads must keep their configuration", p, c.failed.Load(), c.denied.Load(), c.ok.Load())
		}
	}
}
