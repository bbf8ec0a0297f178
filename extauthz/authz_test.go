package extauthz

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

var basePolicies = map[string]string{
	"orders/p.cedar": `
@id("users-read") permit(principal is User, action == Action::"GET", resource == Service::"orders");
@id("admin-write") permit(principal in Role::"admin", action == Action::"POST", resource == Service::"orders");
@id("workloads") permit(principal is Workload, action == Action::"GET", resource == Service::"orders")
  when { principal.namespace == "demo" && context.source.spiffe_id == "spiffe://meshguard.local/ns/demo/sa/frontend" };
@id("anon-catalog") permit(principal is Anonymous, action == Action::"GET", resource)
  when { context.request.path like "/catalog*" };
@id("read-action") permit(principal, action == Action::"read-report", resource);
`,
	"candidate/p.cedar": `@id("all") permit(principal, action, resource);`,
}

var ordersExt = map[string]string{ExtService: "orders", ExtPolicy: "orders", ExtRoute: "orders/api"}

func ext(kv ...string) map[string]string {
	m := map[string]string{ExtService: "orders", ExtPolicy: "orders", ExtRoute: "orders/api"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func TestCedarModel(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	cases := []struct {
		name   string
		req    creq
		status int
		prin   string
	}{
		{"user reads", creq{method: "GET", path: "/o/1", token: h.token("alice"), ext: ordersExt}, 200, `User::"alice"`},
		{"user without role cannot write", creq{method: "POST", path: "/o", token: h.token("alice"), ext: ordersExt}, 403, ""},
		{"role from the roles claim", creq{method: "POST", path: "/o", token: h.token("root", "admin"), ext: ordersExt}, 200, `User::"root"`},
		{"workload with namespace attribute", creq{method: "GET", path: "/o/1", peer: "spiffe://meshguard.local/ns/demo/sa/frontend", ext: ordersExt}, 200, `Workload::"spiffe://meshguard.local/ns/demo/sa/frontend"`},
		{"other workload", creq{method: "GET", path: "/o/1", peer: "spiffe://meshguard.local/ns/demo/sa/batch", ext: ordersExt}, 403, ""},
		{"non-SPIFFE peer is anonymous", creq{method: "GET", path: "/catalog", peer: "orders.example.com", ext: ordersExt}, 200, `Anonymous::"anonymous"`},
		{"anonymous catalog", creq{method: "GET", path: "/catalog/x?q=1", ext: ordersExt}, 200, `Anonymous::"anonymous"`},
		{"anonymous elsewhere", creq{method: "GET", path: "/o/1", ext: ordersExt}, 403, ""},
		{"action override", creq{method: "POST", path: "/reports", ext: ext(ExtAction, "read-report")}, 200, `Anonymous::"anonymous"`},
		{"headers in header_map (encode_raw_headers)", creq{method: "GET", path: "/o/1", token: h.token("alice"), ext: ordersExt, rawHeaders: true}, 200, `User::"alice"`},
		{"non-bearer authorization is no token", creq{method: "GET", path: "/catalog", headers: map[string]string{"authorization": "Basic YTpi"}, ext: ordersExt}, 200, `Anonymous::"anonymous"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.decide(tc.req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; meta %v", r.status, tc.status, r.meta)
			}
			if tc.prin != "" && r.headers["x-meshguard-principal"] != tc.prin {
				t.Fatalf("principal %q, want %q", r.headers["x-meshguard-principal"], tc.prin)
			}
			if r.status == 200 && r.headers[DecisionIDHeader] == "" {
				t.Fatal("no decision id upstream")
			}
		})
	}
}

func TestFailClosed(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	cases := []struct {
		name   string
		req    creq
		status int
		reason string
	}{
		{"missing meshguard.service", creq{method: "GET", path: "/catalog", ext: ext(ExtService, "")}, 403, ReasonBadRoute},
		{"no context extensions at all", creq{method: "GET", path: "/catalog"}, 403, ReasonBadRoute},
		{"unknown mode", creq{method: "GET", path: "/catalog", ext: ext(ExtMode, "permissive")}, 403, ReasonBadRoute},
		{"unknown policy set", creq{method: "GET", path: "/catalog", ext: ext(ExtPolicy, "nope")}, 403, ReasonUnknownSet},
		{"unknown policy set in shadow mode", creq{method: "GET", path: "/catalog", ext: ext(ExtPolicy, "nope", ExtMode, "shadow")}, 403, ReasonUnknownSet},
		{"invalid policy set name", creq{method: "GET", path: "/catalog", ext: ext(ExtPolicy, "../etc")}, 403, ReasonBadRoute},
		{"malformed SPIFFE ID", creq{method: "GET", path: "/catalog", peer: "spiffe://Bad Domain/ns/x", ext: ordersExt}, 403, ReasonInvalidSPIFFEID},
		{"SPIFFE ID with root path", creq{method: "GET", path: "/catalog", peer: "spiffe://meshguard.local/", ext: ordersExt}, 403, ReasonInvalidSPIFFEID},
		{"SPIFFE ID with dot segment", creq{method: "GET", path: "/catalog", peer: "spiffe://meshguard.local/ns/../sa", ext: ordersExt}, 403, ReasonInvalidSPIFFEID},
		{"SPIFFE ID with query", creq{method: "GET", path: "/catalog", peer: "spiffe://meshguard.local/ns/a?x=1", ext: ordersExt}, 403, ReasonInvalidSPIFFEID},
		{"invalid token", creq{method: "GET", path: "/catalog", token: "abc.def.ghi", ext: ordersExt}, 401, ReasonInvalidToken},
		{"empty bearer", creq{method: "GET", path: "/catalog", headers: map[string]string{"authorization": "Bearer "}, ext: ordersExt}, 401, ReasonInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.decide(tc.req)
			if r.status != tc.status || r.meta["reason"] != tc.reason {
				t.Fatalf("status %d reason %v, want %d %s", r.status, r.meta["reason"], tc.status, tc.reason)
			}
			if tc.status == 401 && r.headers["www-authenticate"] != `Bearer error="invalid_token"` {
				t.Fatalf("www-authenticate = %q", r.headers["www-authenticate"])
			}
			if strings.Contains(r.body, "policy") || strings.Contains(r.body, tc.reason) {
				t.Fatalf("deny body leaks internals: %s", r.body)
			}
		})
	}
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`meshguard_authz_fail_closed_total{reason="bad_route"} 4`,
		`meshguard_authz_fail_closed_total{reason="unknown_policy_set"} 2`,
	} {
		if !metricLine(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMalformedCheckRequestDenies(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	req := creq{method: "GET", path: "/catalog", ext: ordersExt}.proto()
	req.Attributes.Request = nil
	r := summarize(h.checkRaw(req))
	if r.status != 403 || r.meta["reason"] != ReasonBadRequest {
		t.Fatalf("status %d reason %v", r.status, r.meta["reason"])
	}
}

func TestRequiredToken(t *testing.T) {
	h := newHarness(t, basePolicies, func(c *Config) { c.JWT.Required = true })
	r := h.decide(creq{method: "GET", path: "/catalog", ext: ordersExt})
	if r.status != 401 || r.meta["reason"] != ReasonNoToken || r.headers["www-authenticate"] != "Bearer" {
		t.Fatalf("missing required token: status %d reason %v challenge %q", r.status, r.meta["reason"], r.headers["www-authenticate"])
	}
	if r := h.decide(creq{method: "GET", path: "/o", token: h.token("alice"), ext: ordersExt}); r.status != 200 {
		t.Fatalf("valid token with required=true: %d", r.status)
	}
}

func TestShadowMode(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	r := h.decide(creq{method: "DELETE", path: "/o/1", ext: ext(ExtMode, ModeShadow)})
	if r.status != 200 || r.meta["would_allow"] != false || r.meta["mode"] != "shadow" {
		t.Fatalf("shadow deny: status %d meta %v", r.status, r.meta)
	}
	// An invalid token in shadow mode is allowed, but not as the token's subject.
	r = h.decide(creq{method: "GET", path: "/o/1", token: "a.b.c", ext: ext(ExtMode, ModeShadow)})
	if r.status != 200 || r.headers["x-meshguard-principal"] != `Anonymous::"anonymous"` || r.meta["would_allow"] != false {
		t.Fatalf("shadow invalid token: status %d headers %v meta %v", r.status, r.headers, r.meta)
	}
	// A candidate set is evaluated beside the enforced one without changing the outcome.
	r = h.decide(creq{method: "DELETE", path: "/o/1", ext: ext(ExtShadow, "candidate")})
	if r.status != 403 {
		t.Fatalf("candidate set changed enforcement: %d", r.status)
	}
	entries := h.decisions(3)
	last := entries[len(entries)-1]
	if last.Shadow == nil || last.Shadow.PolicySet != "candidate" || !last.Shadow.Allowed || last.Allowed {
		t.Fatalf("candidate outcome not logged: %+v", last)
	}
	first := entries[0]
	if first.WouldAllow == nil || *first.WouldAllow || first.WouldReason != ReasonPolicyDenied || !first.Allowed {
		t.Fatalf("shadow-mode would-deny not logged: %+v", first)
	}
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`meshguard_authz_shadow_decisions_total{kind="mode",policy_set="orders",would="deny"} 2`,
		`meshguard_authz_shadow_decisions_total{kind="candidate",policy_set="candidate",would="allow"} 1`,
	} {
		if !metricLine(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestResponseHeaders(t *testing.T) {
	h := newHarness(t, basePolicies, func(c *Config) {
		c.Response.RemoveAuthorization = true
		c.Response.ClaimHeaders = map[string]string{"email": "x-user-email", "tenant": "x-tenant"}
	})
	tok, err := h.issuer.Mint(map[string]any{"iss": testIssuer, "sub": "alice", "aud": testAudience,
		"exp": time.Now().Add(time.Hour).Unix(), "email": "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	r := h.decide(creq{method: "GET", path: "/o/1", token: tok, ext: ordersExt})
	if r.status != 200 || r.headers["x-user-email"] != "alice@example.com" {
		t.Fatalf("status %d headers %v", r.status, r.headers)
	}
	removed := strings.Join(r.removed, ",")
	if !strings.Contains(removed, "authorization") || !strings.Contains(removed, "x-tenant") {
		t.Fatalf("headers_to_remove = %v; want authorization and the absent claim's header", r.removed)
	}
}

func TestHotReload(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	eventually(t, "ready", h.srv.Authz.Ready)
	req := creq{method: "DELETE", path: "/o/1", ext: ordersExt}
	if h.decide(req).status != 403 {
		t.Fatal("DELETE allowed before the edit")
	}
	h.writePolicy("orders/extra.cedar", `permit(principal, action == Action::"DELETE", resource);`)
	eventually(t, "policy edit applied", func() bool { return h.decide(req).status == 200 })

	// A broken edit keeps the last good version, is reported and counted.
	h.writePolicy("orders/extra.cedar", `permit(principal, action == Action::"DELETE", resource`)
	eventually(t, "reload error reported", func() bool {
		_, body := h.get("/v1/status")
		return strings.Contains(body, "extra.cedar:1:")
	})
	if h.decide(req).status != 200 {
		t.Fatal("broken edit changed decisions")
	}
	_, metrics := h.get("/metrics")
	if !metricLine(metrics, `meshguard_authz_policy_reload_errors_total{policy_set="orders"}`) {
		t.Fatal("reload error not counted")
	}
	if code, _ := h.get("/readyz"); code != 200 {
		t.Fatal("a broken edit after a good load must not make the server unready")
	}
}

func TestReadinessWaitsForFirstGoodLoad(t *testing.T) {
	h := newHarness(t, map[string]string{"orders/p.cedar": `permit(principal, action, resource`}, nil)
	if code, _ := h.get("/readyz"); code != 503 {
		t.Fatalf("/readyz = %d with broken policies, want 503", code)
	}
	if code, _ := h.get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	conn, err := grpc.NewClient(h.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	st, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || st.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("gRPC health = %v, %v; want NOT_SERVING", st, err)
	}
	if r := h.decide(creq{method: "GET", path: "/", ext: ordersExt}); r.status != 403 {
		t.Fatal("request allowed while not ready")
	}
	h.writePolicy("orders/p.cedar", `permit(principal, action, resource);`)
	eventually(t, "ready after a fix", func() bool { code, _ := h.get("/readyz"); return code == 200 })
	eventually(t, "gRPC health SERVING", func() bool {
		st, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && st.Status == healthpb.HealthCheckResponse_SERVING
	})
}

func TestReflectionListsAuthorization(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	conn, err := grpc.NewClient(h.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "envoy.service.auth.v3.Authorization") {
		t.Fatalf("reflection services = %v", names)
	}
}

func TestDecisionLogNeverHoldsTokens(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	good := h.token("alice", "admin")
	h.decide(creq{method: "GET", path: "/o/1?api_key=s3cr3t", token: good, ext: ordersExt})
	h.decide(creq{method: "GET", path: "/o/1", token: good[:len(good)-4] + "AAAA", ext: ordersExt})
	entries := h.decisions(2)
	if entries[0].Principal != `User::"alice"` || entries[0].DecisionID == "" || entries[0].Path != "/o/1" {
		t.Fatalf("entry = %+v", entries[0])
	}
	if entries[1].JWTError != "bad_signature" || entries[1].Status != 401 {
		t.Fatalf("entry = %+v", entries[1])
	}
	data, err := os.ReadFile(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{good, good[:len(good)-4], "s3cr3t", strings.Split(good, ".")[2]} {
		if strings.Contains(string(data), secret) {
			t.Fatal("decision log contains a token or query secret")
		}
	}
}

func TestHTTPServiceMode(t *testing.T) {
	h := newHarness(t, basePolicies, func(c *Config) { c.Response.RemoveAuthorization = true })
	do := func(method, path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(method, "http://"+h.srv.HTTPAddr()+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	route := map[string]string{"x-meshguard-service": "orders", "x-meshguard-policy": "orders", "x-meshguard-route": "orders/api"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range route {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	if r := do("GET", "/catalog/x", with(nil)); r.StatusCode != 200 || r.Header.Get("x-meshguard-principal") != `Anonymous::"anonymous"` {
		t.Fatalf("anonymous catalog: %d %v", r.StatusCode, r.Header)
	}
	r := do("GET", "/o/1", with(map[string]string{"authorization": "Bearer " + h.token("alice")}))
	if r.StatusCode != 200 || r.Header.Get("x-meshguard-principal") != `User::"alice"` || r.Header.Get(authHeadersToRemove) != "authorization" {
		t.Fatalf("user: %d %v", r.StatusCode, r.Header)
	}
	xfcc := `By=spiffe://meshguard.local/ns/demo/sa/orders;Hash=abc;Subject="O=x,CN=y";URI=spiffe://meshguard.local/ns/demo/sa/frontend`
	if r := do("GET", "/o/1", with(map[string]string{"x-forwarded-client-cert": xfcc})); r.StatusCode != 200 ||
		r.Header.Get("x-meshguard-principal") != `Workload::"spiffe://meshguard.local/ns/demo/sa/frontend"` {
		t.Fatalf("workload via XFCC: %d %v", r.StatusCode, r.Header)
	}
	r = do("GET", "/o/1", with(map[string]string{"authorization": "Bearer nope.nope.nope"}))
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 401 || r.Header.Get("www-authenticate") != `Bearer error="invalid_token"` || !strings.Contains(string(body), "decision_id") {
		t.Fatalf("invalid token: %d %v %s", r.StatusCode, r.Header, body)
	}
	if r := do("GET", "/catalog", nil); r.StatusCode != 403 {
		t.Fatalf("no route headers: %d, want 403", r.StatusCode)
	}
}

func TestXFCCURI(t *testing.T) {
	cases := map[string]string{
		"":                                     "",
		"URI=spiffe://td/a":                    "spiffe://td/a",
		`By=spiffe://td/b;URI="spiffe://td/a"`: "spiffe://td/a",
		`URI=spiffe://td/first,By=x;Subject="CN=a,O=b;c";URI=spiffe://td/last`: "spiffe://td/last",
		`Hash=abc`: "",
		`Subject="unterminated;URI=spiffe://td/x`: "",
	}
	for in, want := range cases {
		if got := XFCCURI(in); got != want {
			t.Errorf("XFCCURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPanicDenies(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	h.srv.Authz.decide = func(context.Context, Attributes) Decision { panic("boom") }
	r := h.decide(creq{method: "GET", path: "/catalog", ext: ordersExt})
	if r.status != 403 || r.meta["reason"] != ReasonPanic {
		t.Fatalf("panic: status %d reason %v", r.status, r.meta["reason"])
	}
	// The server survives.
	h.srv.Authz.decide = nil
	if r := h.decide(creq{method: "GET", path: "/catalog", ext: ordersExt}); r.status != 200 {
		t.Fatalf("after panic: %d", r.status)
	}
}

func TestDecisionTimeoutDenies(t *testing.T) {
	// A JWKS endpoint that never answers: the unknown-kid refetch blocks until the decision deadline.
	hang := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})}
	lis := listenLoopback(t)
	go srv.Serve(lis)
	t.Cleanup(func() { close(hang); srv.Close() })

	h := newHarness(t, basePolicies, func(c *Config) {
		c.DecisionTimeout = 100 * time.Millisecond
		c.JWT.Providers[0].JWKSFile = ""
		c.JWT.Providers[0].JWKSURI = "http://" + lis.Addr().String() + "/jwks"
	})
	r := h.decide(creq{method: "GET", path: "/catalog", token: h.token("alice"), ext: ordersExt})
	if r.status != 403 || r.meta["reason"] != ReasonTimeout {
		t.Fatalf("status %d reason %v, want 403 timeout", r.status, r.meta["reason"])
	}
}

func TestConfigFileIsStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "authz.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct{ body, want string }{
		{"policies: ./p\nlisten: 127.0.0.1:1\nlisen: x\n", "line 3: field lisen not found"},
		{"policies: ./p\njwt:\n  providers:\n    - name: a\n      isuer: x\n", "field isuer not found"},
		{"listen: 127.0.0.1:1\n", "policies: required"},
		{"policies: ./p\nlisten: nonsense\n", "listen"},
		{"policies: ./p\nrequest_headers: [authorization]\n", "never exposed"},
		{"policies: ./p\njwt:\n  providers:\n    - name: a\n      issuer: https://i\n", "audiences"},
		{"policies: ./p\ntracing:\n  exporter: zipkin\n", "tracing.exporter"},
		{"policies: ./p\nresponse:\n  principal_header: \"bad header\"\n", "response.principal_header"},
		{"policies: ./p\n---\npolicies: ./q\n", "more than one"},
		{"policies: ./p\ndecision_cache_size: 2000000\n", "decision_cache_size"},
		{"", "empty"},
	}
	for _, tc := range cases {
		_, err := LoadConfig(write(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: err = %v, want mention of %q", tc.body, err, tc.want)
		}
	}
	cfg, err := LoadConfig(write("policies: ./p\nentities: e.json\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policies != filepath.Join(dir, "p") || cfg.Entities != filepath.Join(dir, "e.json") {
		t.Fatalf("relative paths not resolved against the file: %q %q", cfg.Policies, cfg.Entities)
	}
	if cfg.Listen != DefaultListen || cfg.JWT.Leeway != 30*time.Second || cfg.JWT.MaxTokenBytes != 8192 || cfg.DecisionCacheSize != 8192 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

// Metrics name a policy set only when it was loaded, so label values stay
// bounded whatever the routes ask for.
func TestMetricsLabelOnlyLoadedSets(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	eventually(t, "ready", h.srv.Authz.Ready)
	h.decide(creq{method: "GET", path: "/o/1", ext: ordersExt})
	h.decide(creq{method: "GET", path: "/o/1", ext: ext(ExtService, "orders", ExtPolicy, "no-such-set")})
	h.decide(creq{method: "GET", path: "/o/1", ext: ext(ExtService, "orders", ExtPolicy, "orders", ExtShadow, "no-such-candidate")})
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`meshguard_authz_decisions_total{mode="enforce",policy_set="orders",`,
		`meshguard_authz_decisions_total{mode="enforce",policy_set="_unknown",reason="unknown_policy_set",`,
		`meshguard_authz_shadow_decisions_total{kind="candidate",policy_set="_unknown",`,
	} {
		if !metricLine(metrics, want) {
			t.Errorf("no metric line %s", want)
		}
	}
	if strings.Contains(metrics, "no-such-") {
		t.Error("a set that is not loaded was named in a label")
	}
}
