//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/internal/xdstest"
)

// soakDuration is MESHGUARD_SOAK (default 30s; bench/RESULTS.md has a
// 10-minute run).
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("MESHGUARD_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("MESHGUARD_SOAK: %v", err)
		}
		return d
	}
	return 30 * time.Second
}

// The authorizer and the control plane under steady load while their
// policies and mesh are rewritten without pause: their memory stays flat
// (no leak per request, per reload or per pushed version), and decisions
// stay right throughout.
func TestSoakWithReloads(t *testing.T) {
	dur := soakDuration(t)
	dir := t.TempDir()
	grpcAddr, authzAdmin := freeAddr(t), freeAddr(t)
	policy := filepath.Join(dir, "policies", "orders", "read.cedar")
	write(t, policy, ordersPolicy)
	write(t, filepath.Join(dir, "authz.yaml"), fmt.Sprintf("listen: %s\nadmin_listen: %s\npolicies: ./policies\ndecision_log: {path: ./decisions.jsonl, max_size_mb: 5, max_backups: 2}\nlog_level: warn\n", grpcAddr, authzAdmin))
	authz := start(t, "authz", "authz", "--config", filepath.Join(dir, "authz.yaml"))
	waitHTTP(t, "http://"+authzAdmin+"/readyz", 20*time.Second)

	lis, port := xdstest.FreeListener(t)
	lis.Close()
	e := &cpEnv{t: t, dir: dir, mesh: filepath.Join(dir, "mesh.yaml"), xds: xdstest.FreeAddr(t), admin: xdstest.FreeAddr(t), port: port}
	e.writeMesh("orders")
	cp := start(t, "controlplane", "controlplane", "--mesh", e.mesh, "--listen", e.xds, "--admin", e.admin, "--ca-dir", filepath.Join(dir, "ca"), "--log-level", "warn")
	waitHTTP(t, "http://"+e.admin+"/readyz", 20*time.Second)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var checks, wrong, reloads, versions atomic.Int64
	// Load on the authorizer: reads allowed for users... anonymous here,
	// so every request is denied by the policy — and must stay denied.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
					Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "POST", Path: "/orders/1",
						Headers: map[string]string{":method": "POST", ":path": "/orders/1"}}},
					ContextExtensions: map[string]string{contract.ExtService: "orders", contract.ExtPolicy: "orders", contract.ExtRoute: "orders/write"},
				}})
				cancel()
				checks.Add(1)
				if err == nil && resp.GetStatus().GetCode() == 0 {
					wrong.Add(1)
				}
			}
		})
	}
	// 20 proxies that ACK every version the control plane pushes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ads := xdstest.Dial(t, e.xds)
	for i := range 20 {
		a := xdstest.NewADS(ctx, t, ads, fmt.Sprintf("storm-%d", i), "storm", xds.ListenerType)
		wg.Go(func() {
			// One wait at a time: a response comes every second; the
			// context's end stops the last wait.
			for !stop.Load() {
				if _, err := a.TryFetch(time.Minute); err != nil {
					return
				}
				a.Ack()
				versions.Add(1)
			}
		})
	}
	// Reloads: the policy rewritten every 250 ms (two valid versions and a
	// broken one in turn), the mesh every second (frontend may call storm,
	// or not: every storm proxy's server listener changes).
	wg.Go(func() {
		bodies := []string{ordersPolicy, ordersPolicy + "\n// v2\n", "permit ( broken"}
		for i := 0; !stop.Load(); i++ {
			write(t, policy, bodies[i%len(bodies)])
			reloads.Add(1)
			time.Sleep(250 * time.Millisecond)
			if i%4 == 0 {
				e.writeMesh([]string{"orders", "orders, storm"}[(i/4)%2])
			}
		}
	})

	type sample struct {
		at         time.Duration
		authz, cpK int
	}
	var samples []sample
	began := time.Now()
	every := max(dur/30, time.Second)
	for time.Since(began) < dur {
		time.Sleep(every)
		authz.alive()
		cp.alive()
		samples = append(samples, sample{time.Since(began).Round(time.Second), authz.rssKiB(), cp.rssKiB()})
	}
	stop.Store(true)
	cancel()
	wg.Wait()

	var b strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&b, "\n%8s  authz %7d KiB  controlplane %7d KiB", s.at, s.authz, s.cpK)
	}
	t.Logf("soak %s: %d checks (%d wrongly allowed), %d policy rewrites, %d versions ACKed; RSS:%s",
		dur, checks.Load(), wrong.Load(), reloads.Load(), versions.Load(), b.String())
	if wrong.Load() > 0 {
		t.Errorf("%d requests wrongly allowed during reloads", wrong.Load())
	}
	if le := e.lastError(); le != "" {
		t.Errorf("the control plane refused a soak mesh: %s", le)
	}
	if versions.Load() <= 20 || reloads.Load() == 0 {
		t.Fatal("the soak did not reload anything")
	}
	// Flat: after the first third (warm-up: caches, pools, GC pacing),
	// neither process grows by more than 15% (and 8 MiB).
	peak := func(from, to int, f func(sample) int) int {
		m := 0
		for _, s := range samples[from:to] {
			m = max(m, f(s))
		}
		return m
	}
	third := len(samples) / 3
	for _, p := range []struct {
		name string
		f    func(sample) int
	}{{"authz", func(s sample) int { return s.authz }}, {"controlplane", func(s sample) int { return s.cpK }}} {
		early, late := peak(third, 2*third, p.f), peak(2*third, len(samples), p.f)
		if float64(late) > float64(early)*1.15 && late-early > 8*1024 {
			t.Errorf("%s RSS grew from %d KiB to %d KiB over the soak", p.name, early, late)
		}
	}
}
