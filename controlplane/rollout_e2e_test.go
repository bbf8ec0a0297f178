package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sotwclient "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/internal/authztest"
	"github.com/meshguard/meshguard/internal/xds"
)

const rolloutMesh = `apiVersion: meshguard.dev/v1alpha1
kind: Mesh
metadata: {name: rollout}
spec:
  trustDomain: meshguard.local
  policies: ./policies
  authz: {address: 127.0.0.1:9191}
  services:
    - name: web
      namespace: demo
      port: 8081
      calls: [orders]
      workloads: [{name: web-0, address: 127.0.0.21, outboundAddress: 127.0.0.21, adminPort: 15021}]
    - name: orders
      namespace: demo
      port: 8082
      policy: orders
      routes:
        - id: orders/read
          match: {prefix: /orders, methods: [GET]}
          rollout:
            candidate: orders-v2
            stage: shadow
            percent: 10
            gates: {minRequests: 2000, maxAllowToDeny: 1, maxDenyToAllow: 0, maxErrors: 0}
      workloads: [{name: orders-0, address: 127.0.0.22, outboundAddress: 127.0.0.22, adminPort: 15022}]
`

// The current set lets every workload read; the candidate no longer lets
// the legacy-* service accounts.
var rolloutSets = map[string]string{
	"orders/read.cedar": `@id("read") permit (principal is Workload, action == Action::"GET", resource == Service::"orders");`,
	"orders-v2/read.cedar": `@id("read") permit (principal is Workload, action == Action::"GET", resource == Service::"orders")
unless { principal has service_account && principal.service_account like "legacy-*" };`,
}

// rolloutEnv is a real authorizer and a real control plane over one mesh,
// and a raw ADS client as the orders sidecar.
type rolloutEnv struct {
	t        *testing.T
	dir      string
	authz    *extauthz.Server
	check    authv3.AuthorizationClient
	cp       *Server
	cpConn   *grpc.ClientConn
	rds      sotwclient.ADSClient
	stopCP   func()
	adminURL string
	opts     []func(*Config)
}

func newRolloutEnv(t *testing.T, opts ...func(*Config)) *rolloutEnv {
	e := &rolloutEnv{t: t, dir: t.TempDir(), opts: opts}
	write(t, filepath.Join(e.dir, "mesh.yaml"), rolloutMesh)
	a := authztest.StartIn(t, e.dir, rolloutSets, "")
	e.authz, e.check = a.Server, a.Client
	e.startCP()
	return e
}

// startCP starts the control plane (again) over the same mesh and
// rollout state. Its gates are judged when the test ticks, not by a timer.
func (e *rolloutEnv) startCP() {
	t := e.t
	cfg := Config{MeshPath: filepath.Join(e.dir, "mesh.yaml"), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		CADir: filepath.Join(e.dir, "ca"), AuthzAdmin: []string{e.authz.AdminAddr()}, RolloutInterval: time.Hour}
	for _, o := range e.opts {
		o(&cfg)
	}
	cp, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := cp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(cp.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.cp, e.cpConn, e.adminURL = cp, conn, "http://"+cp.AdminAddr()
	e.rds = sotwclient.NewADSClient(ctx, &corev3.Node{Id: "orders-0", Cluster: "orders"}, xds.RouteType)
	if err := e.rds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	stopped := false
	e.stopCP = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		stopWithin(cp.Stop)
		cancel()
	}
	t.Cleanup(e.stopCP)
}

// extensions fetches the orders sidecar's routes over ADS (the next
// version, after the first) and returns what orders/read carries, virtual
// host and route merged as Envoy merges them.
func (e *rolloutEnv) extensions() map[string]string {
	e.t.Helper()
	resp := fetch(e.t, e.rds)
	if err := e.rds.Ack(); err != nil {
		e.t.Fatal(err)
	}
	for _, a := range resp.Resources {
		var rc routev3.RouteConfiguration
		if err := a.UnmarshalTo(&rc); err != nil {
			e.t.Fatal(err)
		}
		if rc.GetName() != translate.InboundRoutes("orders") {
			continue
		}
		vh := rc.GetVirtualHosts()[0]
		ext := perRouteExtensions(e.t, vh.GetTypedPerFilterConfig())
		for _, r := range vh.GetRoutes() {
			if r.GetName() == "orders/read" {
				maps.Copy(ext, perRouteExtensions(e.t, r.GetTypedPerFilterConfig()))
				return ext
			}
		}
	}
	e.t.Fatal("no orders/read route in RDS")
	return nil
}

func perRouteExtensions(t *testing.T, cfg map[string]*anypb.Any) map[string]string {
	t.Helper()
	var pr extauthzv3.ExtAuthzPerRoute
	if err := cfg[translate.ExtAuthzFilter].UnmarshalTo(&pr); err != nil {
		t.Fatal(err)
	}
	return maps.Clone(pr.GetCheckSettings().GetContextExtensions())
}

// call sends the Check a sidecar would for GET /orders/1 from the
// workload with service account sa; it reports whether it was allowed and
// whether the candidate decided.
func (e *rolloutEnv) call(ext map[string]string, sa string) (allowed, candidate bool) {
	e.t.Helper()
	resp, err := e.check.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Principal: "spiffe://meshguard.local/ns/demo/sa/" + sa},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/orders/1", Host: "orders.demo", Scheme: "https"}},
		ContextExtensions: ext,
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	// The metadata names the set that decided: the candidate for callers
	// in the canary's share.
	enforced := resp.GetDynamicMetadata().AsMap()["policy_set"] == ext[extauthz.ExtCandidate]
	return resp.GetStatus().GetCode() == int32(code.Code_OK), enforced
}

func (e *rolloutEnv) rollout() rollout.Rollout {
	e.t.Helper()
	r, err := e.cp.Rollouts.Get("orders/read")
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *rolloutEnv) command(verb string) int {
	e.t.Helper()
	body, _ := json.Marshal(RolloutCommand{Route: "orders/read", Actor: "test"})
	resp, err := http.Post(e.adminURL+"/v1/rollouts/"+verb, "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// A rollout driven through the control plane and the authorizer: the
// shadow stage's counts are the requests sent, its gates promote it to a
// canary that enforces the candidate for a stable 10 % of callers, the
// promotion survives a control plane restart, a gate failure rolls it back
// on the next judgement, and commands carry it to enforce.
func TestRolloutThroughControlPlaneAndAuthorizer(t *testing.T) {
	e := newRolloutEnv(t)
	ctx := context.Background()
	const n = 2000

	// Shadow: the control plane serves the candidate and stage.
	ext := e.extensions()
	shadow := e.rollout()
	if ext[extauthz.ExtCandidate] != "orders-v2" || ext[extauthz.ExtStage] != "shadow" || ext[extauthz.ExtRollout] != shadow.Revision {
		t.Fatalf("shadow stage extensions: %v", ext)
	}
	for i := range n {
		if allowed, cand := e.call(ext, fmt.Sprint("w-", i)); !allowed || cand {
			t.Fatalf("shadow stage: caller %d allowed %v, candidate decided %v", i, allowed, cand)
		}
	}
	e.cp.Rollouts.Tick(ctx)
	canary := e.rollout()
	if len(canary.Transitions) < 2 {
		t.Fatalf("not promoted: %+v", canary)
	}
	if left := canary.Transitions[len(canary.Transitions)-1]; left.Counts == nil || left.Counts.Requests != n || left.Counts.Same != n || left.From != "shadow" {
		t.Fatalf("the shadow counts must be the %d requests sent: %+v", n, left)
	}
	if canary.Phase != rollout.Progressing || canary.Step().String() != "canary 10%" {
		t.Fatalf("after a passing shadow stage: %s at %s (%s)", canary.Phase, canary.Step(), canary.Reason)
	}

	// The promotion reaches the sidecar, and survives a restart.
	ext = e.extensions()
	if ext[extauthz.ExtStage] != "canary" || ext[extauthz.ExtCanary] != "10" || ext[extauthz.ExtRollout] != canary.Revision {
		t.Fatalf("canary extensions: %v", ext)
	}
	e.stopCP()
	e.startCP()
	if r := e.rollout(); r.Revision != canary.Revision || r.Step().String() != "canary 10%" {
		t.Fatalf("after a restart: %+v", r)
	}
	if again := e.extensions(); !maps.Equal(again, ext) {
		t.Fatalf("after a restart the sidecar gets %v, had %v", again, ext)
	}

	// Canary: the candidate decides for 10 % ± 3 % of 2,000 callers, the
	// same ones each time.
	side := map[int]bool{}
	for i := range n {
		_, cand := e.call(ext, fmt.Sprint("w-", i))
		side[i] = cand
	}
	share := 0
	for i := range n {
		if side[i] {
			share++
		}
		if _, cand := e.call(ext, fmt.Sprint("w-", i)); cand != side[i] {
			t.Fatalf("caller %d changed sides", i)
		}
	}
	if share < n*7/100 || share > n*13/100 {
		t.Fatalf("the candidate decided for %d of %d callers, want 10 %% ± 3 %%", share, n)
	}

	// Legacy callers the candidate denies: over 1 % of the step's requests
	// changed allow→deny, so the next judgement rolls back.
	denied := 0
	for i := range 100 {
		if allowed, cand := e.call(ext, fmt.Sprint("legacy-", i)); !allowed {
			if !cand {
				t.Fatalf("legacy-%d denied by the current set", i)
			}
			denied++
		}
	}
	if denied == 0 {
		t.Fatal("no legacy caller fell in the canary's share: the candidate was never enforced for them")
	}
	e.cp.Rollouts.Tick(ctx)
	back := e.rollout()
	if back.Phase != rollout.RolledBack {
		t.Fatalf("after a failing gate: %s (%s), verdict %+v", back.Phase, back.Reason, back.Verdict)
	}
	ext = e.extensions()
	if _, ok := ext[extauthz.ExtCandidate]; ok || ext[extauthz.ExtPolicy] != "orders" {
		t.Fatalf("rolled back extensions: %v", ext)
	}
	for i := range 100 {
		if allowed, _ := e.call(ext, fmt.Sprint("legacy-", i)); !allowed {
			t.Fatalf("legacy-%d still denied after the rollback", i)
		}
	}

	// Commands: resume restarts at shadow; two promotions reach enforce.
	for _, c := range []struct {
		verb, phase, step string
	}{{"resume", rollout.Progressing, "shadow"}, {"promote", rollout.Progressing, "canary 10%"}, {"promote", rollout.Completed, "enforce"}} {
		if code := e.command(c.verb); code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", c.verb, code)
		}
		e.extensions()
		if r := e.rollout(); r.Phase != c.phase || r.Step().String() != c.step {
			t.Fatalf("%s: %s at %s", c.verb, r.Phase, r.Step())
		}
	}
	if code := e.command("promote"); code != http.StatusConflict {
		t.Fatalf("promoting a completed rollout: HTTP %d, want 409", code)
	}
	e.stopCP()
	e.startCP()
	ext = e.extensions()
	if ext[extauthz.ExtPolicy] != "orders-v2" || ext[extauthz.ExtCandidate] != "" {
		t.Fatalf("the enforced candidate after a restart: %v", ext)
	}
	if allowed, _ := e.call(ext, "legacy-1"); allowed {
		t.Fatal("the enforced candidate lets a legacy caller read")
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func stopWithin(stop func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stop(ctx)
}

// A rollout edit the control plane cannot take is refused with the field
// named, and the last good rollout keeps running.
func TestBadRolloutEditsKeepTheLastGoodRollout(t *testing.T) {
	e := newRolloutEnv(t)
	before := e.rollout()
	mesh := filepath.Join(e.dir, "mesh.yaml")
	write(t, filepath.Join(e.dir, "policies/orders-v3/read.cedar"), `permit (principal, action, resource) when { context.`)
	for _, c := range []struct{ old, new, want string }{
		{"candidate: orders-v2", "candidate: nope", `line 22: spec.services[1].routes[0].rollout.candidate: policy set "nope" does not exist`},
		{"percent: 10", "percent: 110", `line 24: spec.services[1].routes[0].rollout.percent: "110": want a percentage from 0 to 100`},
		{"candidate: orders-v2", "candidate: orders-v3", `spec.services[1].routes[0].rollout.candidate: policy set "orders-v3" cannot be rolled out: read.cedar: parser error: parse error at read.cedar:1:53`},
		{"stage: shadow", "stage: live", `rollout.stage: "live"`},
	} {
		write(t, mesh, strings.Replace(rolloutMesh, c.old, c.new, 1))
		err := e.cp.Reload()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s → %s: err = %v\nwant mention of %q", c.old, c.new, err, c.want)
		}
		if r := e.rollout(); r.Revision != before.Revision || r.Candidate != "orders-v2" {
			t.Fatalf("a refused edit moved the rollout: %+v", r)
		}
		if st := e.cp.Status(); !strings.Contains(st.LastError, c.want) {
			t.Fatalf("status does not report the refused edit: %q", st.LastError)
		}
	}
}
