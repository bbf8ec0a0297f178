package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/bootstrap"
	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/controlplane/source"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/internal/demoapp"
	"github.com/meshguard/meshguard/internal/demoidp"
	"github.com/meshguard/meshguard/internal/pbvalidate"
	"github.com/meshguard/meshguard/internal/proctest"
)

// TestQuickstartEndToEnd runs `meshguard up` on a copy of the quickstart, as
// `make run` does, and checks what the quickstart promises.
func TestQuickstartEndToEnd(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "meshguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	qs := filepath.Join(dir, "quickstart")
	copyTree(t, "../../examples/quickstart", qs)

	var out proctest.Output
	up := exec.Command(bin, "up", "--config", qs)
	up.Stdout, up.Stderr = &out, &out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = up.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- up.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("meshguard up exited with %v\n%s", err, out.String())
			}
		case <-time.After(15 * time.Second):
			_ = up.Process.Kill()
			t.Errorf("meshguard up did not stop within 15s of Ctrl-C")
		}
	}
	t.Cleanup(stop)
	waitFor(t, "meshguard up ready", 60*time.Second, func() bool { return strings.Contains(out.String(), "Ctrl-C stops everything") })
	if !strings.Contains(out.String(), "(ready)") {
		t.Fatalf("frontend not ready:\n%s", out.String())
	}

	iss, err := demoidp.Load(filepath.Join(qs, "demo-issuer.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(sub string, roles ...string) string {
		s, err := iss.Mint(demoidp.Claims("https://idp.meshguard.example", sub, []string{"meshguard-demo"}, roles, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}

	t.Run("proxyless gRPC over mTLS with the expected identities", func(t *testing.T) {
		cases := []struct {
			method, path, auth string
			status             int
			principal          string
		}{
			{"GET", "/catalog", "", 200, `Workload::"spiffe://meshguard.local/ns/demo/sa/frontend"`},
			{"GET", "/orders/42", "", 403, ""},
			{"GET", "/orders/42", token("alice"), 200, `User::"alice"`},
			{"POST", "/orders", token("alice"), 403, ""},
			{"POST", "/orders", token("sam", "staff"), 200, `User::"sam"`},
			{"POST", "/orders", "", 200, `Workload::"spiffe://meshguard.local/ns/demo/sa/frontend"`},
			{"GET", "/orders/1", "Bearer forged.token.here", 401, ""},
		}
		for _, c := range cases {
			status, body := httpDo(t, c.method, "http://127.0.0.1:8000"+c.path, c.auth)
			if status != c.status {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, status, body, c.status)
			}
			if c.status != 200 {
				continue
			}
			var r struct {
				Frontend string             `json:"frontend"`
				Orders   demoapp.OrderReply `json:"orders"`
			}
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatal(err)
			}
			if r.Orders.Caller != "spiffe://meshguard.local/ns/demo/sa/frontend" || r.Orders.Server != "spiffe://meshguard.local/ns/demo/sa/orders" {
				t.Fatalf("identities: %+v", r.Orders)
			}
			if r.Orders.Principal != c.principal {
				t.Fatalf("%s %s: principal %s, want %s", c.method, c.path, r.Orders.Principal, c.principal)
			}
		}
	})

	t.Run("an identity the mesh does not allow is refused", func(t *testing.T) {
		mesh, err := source.Parse(filepath.Join(qs, "mesh.yaml"), mustRead(t, filepath.Join(qs, "mesh.yaml")))
		if err != nil {
			t.Fatal(err)
		}
		ca, err := devca.LoadOrCreate(filepath.Join(qs, ".meshguard", "ca"), spiffeid.RequireTrustDomainFromString("meshguard.local"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := ca.Issue(spiffeid.RequireFromString("spiffe://meshguard.local/ns/demo/sa/intruder"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(dir, "intruder")
		files := bootstrap.GRPCFiles{Cert: filepath.Join(d, "cert.pem"), Key: filepath.Join(d, "key.pem"), CA: filepath.Join(d, "bundle.pem")}
		for p, b := range map[string][]byte{files.Cert: s.CertPEM, files.Key: s.KeyPEM, files.CA: ca.BundlePEM()} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// The intruder poses as frontend-0 to get its config, but holds its own SVID.
		bs, err := bootstrap.GRPC(mesh, "frontend-0", files)
		if err != nil {
			t.Fatal(err)
		}
		orders, _ := mesh.Service("orders")
		conn, err := demoapp.DialOrders(translate.ProxylessTarget(orders), bs)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = demoapp.CallOrders(ctx, conn, "/meshguard.demo.Orders/List", &demoapp.OrderRequest{}, "")
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("intruder call: %v, want PermissionDenied from orders' RBAC", err)
		}
	})

	mesh, err := source.Parse(filepath.Join(qs, "mesh.yaml"), mustRead(t, filepath.Join(qs, "mesh.yaml")))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every generated sidecar config validates", func(t *testing.T) {
		for _, w := range []string{"payments-0", "batch-0"} {
			res, err := translate.Workload(mesh, w)
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Check(); err != nil {
				t.Fatalf("%s: %v", w, err)
			}
			y := mustRead(t, filepath.Join(qs, ".meshguard", "bootstrap", w+".envoy.yaml"))
			var doc any
			if err := yaml.Unmarshal(y, &doc); err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(doc)
			var b bootstrapv3.Bootstrap
			if err := protojson.Unmarshal(js, &b); err != nil {
				t.Fatalf("%s bootstrap: %v", w, err)
			}
			if err := pbvalidate.Deep(&b); err != nil {
				t.Fatalf("%s bootstrap: %v", w, err)
			}
		}
	})

	conn, err := grpc.NewClient("127.0.0.1:9191", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authz := authv3.NewAuthorizationClient(conn)
	payments, err := translate.Workload(mesh, "payments-0")
	if err != nil {
		t.Fatal(err)
	}
	sidecar := newSidecarView(t, payments)
	ask := func(method, path, peer string, headers map[string]string) (int, map[string]any) {
		t.Helper()
		req, checked := sidecar.checkRequest(method, path, peer, headers)
		if !checked {
			return 200, nil // ext_authz disabled on this route: Envoy does not ask
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := authz.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		md := resp.GetDynamicMetadata().AsMap()
		switch code.Code(resp.GetStatus().GetCode()) {
		case code.Code_OK:
			return 200, md
		case code.Code_UNAUTHENTICATED:
			return 401, md
		}
		return 403, md
	}
	const batch, ordersID, frontendID = "spiffe://meshguard.local/ns/demo/sa/batch", "spiffe://meshguard.local/ns/demo/sa/orders", "spiffe://meshguard.local/ns/demo/sa/frontend"

	t.Run("sidecar CheckRequests get the promised decisions", func(t *testing.T) {
		cases := []struct {
			name, method, path, peer string
			headers                  map[string]string
			status                   int
			policy                   string
		}{
			{"batch charges", "POST", "/charge", batch, nil, 200, "payments/payments.cedar#batch-charges"},
			{"orders charges", "POST", "/charge", ordersID, nil, 200, "payments/payments.cedar#orders-charges"},
			{"frontend may not charge", "POST", "/charge", frontendID, nil, 403, ""},
			{"anonymous may not charge", "POST", "/charge", "", nil, 403, ""},
			{"health is public (no Check)", "GET", "/healthz", "", nil, 200, ""},
			{"admin reads payments", "GET", "/invoices", "", map[string]string{"authorization": token("dave", "admin")}, 200, "payments/payments.cedar#admin-read"},
			{"forged token", "POST", "/charge", batch, map[string]string{"authorization": "Bearer x.y.z"}, 401, ""},
		}
		for _, c := range cases {
			st, md := ask(c.method, c.path, c.peer, c.headers)
			if st != c.status {
				t.Fatalf("%s: %d (%v), want %d", c.name, st, md, c.status)
			}
			if c.policy != "" {
				if pol, _ := md["policies"].([]any); len(pol) == 0 || pol[0] != c.policy {
					t.Fatalf("%s: policies %v, want %s", c.name, md["policies"], c.policy)
				}
			}
		}
		// The shadow-mode route allows and records the would-be denial.
		st, md := ask("GET", "/invoices", frontendID, nil)
		if st != 200 || md["mode"] != "shadow" || md["would_allow"] != false {
			t.Fatalf("shadow route: %d %v", st, md)
		}
	})

	t.Run("a policy edit changes decisions within 2s; a broken edit changes nothing", func(t *testing.T) {
		policy := filepath.Join(qs, "policies", "payments", "frontend.cedar")
		good := []byte(`@id("frontend-charges") permit (principal == Workload::"` + frontendID + `", action == Action::"POST", resource == Service::"payments");`)
		if err := os.WriteFile(policy, good, 0o644); err != nil {
			t.Fatal(err)
		}
		edited := time.Now()
		waitFor(t, "the edit to take effect", 2*time.Second, func() bool { st, _ := ask("POST", "/charge", frontendID, nil); return st == 200 })
		t.Logf("policy edit applied in %s", time.Since(edited).Round(time.Millisecond))

		if err := os.WriteFile(policy, []byte(`permit (principal, action, resource`), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the broken edit to be reported", 5*time.Second, func() bool {
			_, body := httpDo(t, "GET", "http://127.0.0.1:9192/v1/status", "")
			return strings.Contains(body, "frontend.cedar:1:")
		})
		if st, _ := ask("POST", "/charge", frontendID, nil); st != 200 {
			t.Fatal("a broken edit changed decisions")
		}
		if st, _ := ask("POST", "/charge", "", nil); st != 403 {
			t.Fatal("a broken edit changed decisions")
		}
		// Mend it, so later subtests (policy replay) load every set.
		if err := os.WriteFile(policy, good, 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the mended edit to load", 5*time.Second, func() bool {
			_, body := httpDo(t, "GET", "http://127.0.0.1:9192/v1/status", "")
			return !strings.Contains(body, "frontend.cedar:1:")
		})
	})

	t.Run("meshguard status shows the running proxies", func(t *testing.T) {
		waitFor(t, "proxyless proxies SYNCED", 5*time.Second, func() bool {
			res, err := exec.Command(bin, "status").CombinedOutput()
			if err != nil {
				return false
			}
			for _, l := range strings.Split(string(res), "\n") {
				if strings.HasPrefix(l, "frontend-0") && strings.Contains(l, "true") && strings.Contains(l, "SYNCED") {
					return true
				}
			}
			return false
		})
	})

	t.Run("the README's rollout tour: orders-v2 from shadow to enforce", func(t *testing.T) {
		mg := func(args ...string) (string, int) {
			out, err := exec.Command(bin, args...).CombinedOutput()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return string(out), ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return string(out), 0
		}
		read := func(sub string, roles ...string) int {
			st, _ := httpDo(t, "GET", "http://127.0.0.1:8000/orders/42", token(sub, roles...))
			return st
		}
		row := func() string {
			out, code := mg("rollout", "status")
			if code != 0 {
				t.Fatalf("rollout status: %d\n%s", code, out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "orders/read ") {
					return strings.Join(strings.Fields(l), " ")
				}
			}
			t.Fatalf("no orders/read row:\n%s", out)
			return ""
		}
		counts := func() rollout.Counts {
			out, code := mg("rollout", "status", "--json")
			var rep controlplane.RolloutReport
			if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Rollouts) != 1 {
				t.Fatalf("rollout status --json: %d %v\n%s", code, err, out)
			}
			return rep.Rollouts[0].Counts
		}
		if r := row(); !strings.HasPrefix(r, "orders/read orders orders-v2 shadow - Progressing") {
			t.Fatalf("before: %s", r)
		}
		// Shadow: both read, and the candidate's would-be denials are
		// counted. The controller judges every 5s in meshguard up, so the
		// baseline is the authorizer's own count (earlier subtests read
		// orders too): the controller must catch up to exactly two more.
		authzCounts := func() (req, a2d uint64) {
			_, body := httpDo(t, "GET", "http://127.0.0.1:9192/v1/rollouts", "")
			var st struct {
				Steps []struct {
					Route       string `json:"route"`
					Requests    uint64 `json:"requests"`
					AllowToDeny uint64 `json:"allow_to_deny"`
				} `json:"steps"`
			}
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("authorizer /v1/rollouts: %v\n%s", err, body)
			}
			for _, s := range st.Steps {
				if s.Route == "orders/read" {
					req, a2d = req+s.Requests, a2d+s.AllowToDeny
				}
			}
			return req, a2d
		}
		baseReq, baseA2D := authzCounts()
		decisions := filepath.Join(qs, ".meshguard", "logs", "decisions.jsonl")
		tourStart := strings.Count(string(mustRead(t, decisions)), "\n")
		if read("alice") != 200 || read("bob") != 200 {
			t.Fatal("shadow stage changed a decision")
		}
		waitFor(t, "the counts in rollout status", 15*time.Second, func() bool {
			c := counts()
			return c.Requests == baseReq+2 && c.AllowToDeny == baseA2D+2
		})
		if r := row(); !strings.Contains(r, "none (commands only)") {
			t.Fatalf("status row: %s", r)
		}

		promote := func(want string) {
			if out, code := mg("rollout", "promote", "orders/read", "--reason", "tour"); code != 0 || !strings.Contains(out, want) {
				t.Fatalf("promote: %d %s, want %s", code, out, want)
			}
		}
		// Canary 10 %: bob's bucket is in the share, alice's is not.
		promote("Progressing at canary 10%")
		waitFor(t, "bob refused by the candidate", 5*time.Second, func() bool { return read("bob") == 403 })
		if read("alice") != 200 || read("dave", "customer") != 200 {
			t.Fatal("canary 10%: alice or dave refused")
		}
		promote("Progressing at canary 50%")
		promote("Completed at enforce")
		waitFor(t, "alice refused by the enforced candidate", 5*time.Second, func() bool { return read("alice") == 403 })
		if read("dave", "customer") != 200 {
			t.Fatal("enforce: a customer refused")
		}
		out, _ := mg("rollout", "status", "orders/read")
		for _, want := range []string{"Phase:      Completed", "shadow → canary 10% → canary 50% → [enforce]", "operator:"} {
			if !strings.Contains(out, want) {
				t.Fatalf("rollout status orders/read lacks %q:\n%s", want, out)
			}
		}
		audit := string(mustRead(t, filepath.Join(qs, ".meshguard", "rollouts", "audit.jsonl")))
		if strings.Count(audit, "\n") != 4 || !strings.Contains(audit, `"to":"enforce"`) {
			t.Fatalf("audit trail:\n%s", audit)
		}

		// Replay: the recorded log against its own policies changes nothing;
		// against orders-v2 it shows what the rollout changed.
		// The earlier subtests' decisions were made under policy edits
		// since undone: replay the tour's own decisions.
		lines := strings.SplitAfter(string(mustRead(t, decisions)), "\n")
		log := filepath.Join(t.TempDir(), "tour.jsonl")
		if err := os.WriteFile(log, []byte(strings.Join(lines[tourStart:], "")), 0o644); err != nil {
			t.Fatal(err)
		}
		pol := filepath.Join(qs, "policies")
		if out, code := mg("policy", "replay", "--log", log, "--policies", pol, "--entities", filepath.Join(qs, "entities.json")); code != 0 {
			t.Fatalf("self-replay: exit %d\n%s", code, out)
		}
		out, code := mg("policy", "replay", "--log", log, "--policies", pol, "--entities", filepath.Join(qs, "entities.json"), "--set", "orders-v2", "-q")
		if code != 1 || !strings.Contains(out, "allow→deny") {
			t.Fatalf("replay against orders-v2: exit %d\n%s", code, out)
		}
		if out, code := mg("policy", "test", pol, "--entities", filepath.Join(qs, "entities.json")); code != 0 || !strings.Contains(out, "PASS: ") {
			t.Fatalf("policy test: exit %d\n%s", code, out)
		}

		// Roll back: everyone reads again.
		if out, code := mg("rollout", "rollback", "orders/read", "--reason", "end of the tour"); code != 0 {
			t.Fatalf("rollback: %d %s", code, out)
		}
		waitFor(t, "alice reads again", 5*time.Second, func() bool { return read("alice") == 200 })
	})

	t.Run("shared state: revoking a user's tokens, the rate-limit service", func(t *testing.T) {
		if _, err := exec.LookPath("redis-server"); err != nil {
			// The documented fallback: the quickstart runs without it and says how to get it.
			if !strings.Contains(out.String(), "shared state    off: redis-server is not installed") {
				t.Fatalf("without redis-server the quickstart must say so:\n%s", out.String())
			}
			return
		}
		if !strings.Contains(out.String(), "rate-limit service 127.0.0.1:8081") {
			t.Fatalf("the rate-limit service is not announced:\n%s", out.String())
		}
		erin := token("erin", "customer")
		if st, _ := httpDo(t, "GET", "http://127.0.0.1:8000/orders/7", erin); st != 200 {
			t.Fatalf("before the revocation: %d", st)
		}
		res, err := exec.Command(bin, "revoke", "--sub", "erin", "--reason", "the tour").CombinedOutput()
		if err != nil || !strings.Contains(string(res), `revoked sub "erin"`) {
			t.Fatalf("meshguard revoke: %v\n%s", err, res)
		}
		waitFor(t, "erin's token refused", 2*time.Second, func() bool {
			st, _ := httpDo(t, "GET", "http://127.0.0.1:8000/orders/7", erin)
			return st == 401
		})
		if st, _ := httpDo(t, "GET", "http://127.0.0.1:8000/orders/7", token("sam", "staff")); st != 200 {
			t.Fatalf("another user after erin's revocation: %d", st)
		}
		// The rate-limit service serves the quickstart's limits.
		_, body := httpDo(t, "GET", "http://127.0.0.1:6070/v1/status", "")
		if !strings.Contains(body, `"quickstart"`) || !strings.Contains(body, `"redis": "ok"`) {
			t.Fatalf("rate-limit service status: %s", body)
		}
	})

	// Ctrl-C stops everything; a second start reuses the CA.
	caCert := mustRead(t, filepath.Join(qs, ".meshguard", "ca", "ca.crt"))
	stop()
	up2 := exec.Command(bin, "up", "--config", qs)
	var out2 proctest.Output
	up2.Stdout, up2.Stderr = &out2, &out2
	if err := up2.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second start", 60*time.Second, func() bool {
		return strings.Contains(out2.String(), "Ctrl-C stops everything")
	})
	_ = up2.Process.Signal(syscall.SIGINT)
	_ = up2.Wait()
	if !bytes.Equal(caCert, mustRead(t, filepath.Join(qs, ".meshguard", "ca", "ca.crt"))) {
		t.Fatal("the second start created a new CA")
	}
}

// sidecarView answers what a payments-0 Envoy sidecar with the generated
// config would send to the authorizer: the route it matches, the merged
// context extensions, and only the headers its ext_authz filter allows.
type sidecarView struct {
	routes  *routev3.RouteConfiguration
	allowed map[string]bool
}

func newSidecarView(t *testing.T, res *translate.Resources) *sidecarView {
	t.Helper()
	v := &sidecarView{allowed: map[string]bool{}}
	for _, r := range res.Routes {
		if r.GetName() == translate.InboundRoutes("payments") {
			v.routes = r
		}
	}
	for _, l := range res.Listeners {
		if l.GetName() != translate.IngressListener {
			continue
		}
		var hcm hcmv3.HttpConnectionManager
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatal(err)
		}
		for _, f := range hcm.GetHttpFilters() {
			if f.GetName() != translate.ExtAuthzFilter {
				continue
			}
			var ea extauthzv3.ExtAuthz
			if err := f.GetTypedConfig().UnmarshalTo(&ea); err != nil {
				t.Fatal(err)
			}
			for _, p := range ea.GetAllowedHeaders().GetPatterns() {
				v.allowed[p.GetExact()] = true
			}
		}
	}
	if v.routes == nil || len(v.allowed) == 0 {
		t.Fatal("payments-0 has no inbound routes or ext_authz filter")
	}
	return v
}

func perRoute(t map[string]*anypb.Any) (*extauthzv3.ExtAuthzPerRoute, bool) {
	a, ok := t[translate.ExtAuthzFilter]
	if !ok {
		return nil, false
	}
	var pr extauthzv3.ExtAuthzPerRoute
	if err := a.UnmarshalTo(&pr); err != nil {
		return nil, false
	}
	return &pr, true
}

func (v *sidecarView) checkRequest(method, path, peer string, headers map[string]string) (*authv3.CheckRequest, bool) {
	vh := v.routes.GetVirtualHosts()[0]
	ext := map[string]string{}
	if pr, ok := perRoute(vh.GetTypedPerFilterConfig()); ok {
		for k, val := range pr.GetCheckSettings().GetContextExtensions() {
			ext[k] = val
		}
	}
	for _, r := range vh.GetRoutes() {
		if !matches(r.GetMatch(), method, path) {
			continue
		}
		if pr, ok := perRoute(r.GetTypedPerFilterConfig()); ok {
			if pr.GetDisabled() {
				return nil, false
			}
			for k, val := range pr.GetCheckSettings().GetContextExtensions() {
				ext[k] = val
			}
		}
		break
	}
	all := map[string]string{":method": method, ":path": path, ":authority": "payments.demo", "x-request-id": "e2e", "user-agent": "e2e", "cookie": "secret"}
	for k, val := range headers {
		all[k] = val
	}
	sent := map[string]string{}
	for k, val := range all {
		if strings.HasPrefix(k, ":") || v.allowed[k] {
			sent[k] = val
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Principal: peer, Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.14", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Host: "payments.demo", Scheme: "https", Headers: sent}},
		ContextExtensions: ext,
	}}, true
}

func matches(m *routev3.RouteMatch, method, path string) bool {
	switch {
	case m.GetPath() != "" && m.GetPath() != path:
		return false
	case m.GetPrefix() != "" && !strings.HasPrefix(path, m.GetPrefix()):
		return false
	}
	for _, h := range m.GetHeaders() {
		if h.GetName() != ":method" {
			continue
		}
		sm := h.GetStringMatch()
		if e := sm.GetExact(); e != "" && e != method {
			return false
		}
		if re := sm.GetSafeRegex().GetRegex(); re != "" && !contains(strings.Split(re, "|"), method) {
			return false
		}
	}
	return true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func httpDo(t *testing.T, method, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if auth != "" {
		req.Header.Set("authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if strings.HasPrefix(rel, ".meshguard") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
