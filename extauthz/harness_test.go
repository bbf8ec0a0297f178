package extauthz

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/extauthz/decisionlog"
	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/demoidp"
	"github.com/meshguard/meshguard/internal/poll"
)

const (
	testIssuer   = "https://idp.meshguard.test"
	testAudience = "orders"
)

// harness runs a real Server on loopback and talks to it with Envoy's
// generated ext_authz client.
type harness struct {
	t       *testing.T
	dir     string
	cfg     *Config
	srv     *Server
	client  authv3.AuthorizationClient
	issuer  *demoidp.Issuer
	logPath string
}

// startServer starts a server for cfg (listeners forced to loopback :0).
func startServer(t *testing.T, cfg *Config) *harness {
	t.Helper()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.HTTPListen != "" {
		cfg.HTTPListen = "127.0.0.1:0"
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		stopCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Stop(stopCtx)
		cancel()
	})
	return &harness{t: t, cfg: cfg, srv: srv, client: authv3.NewAuthorizationClient(conn), logPath: cfg.DecisionLog.Path}
}

// newHarness writes policies into a temp dir, creates a demo issuer and
// starts a server trusting it.
func newHarness(t *testing.T, policies map[string]string, mut func(*Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	for name, body := range policies {
		p := filepath.Join(dir, "policies", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	iss, err := demoidp.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := iss.JWKS()
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		Policies:    filepath.Join(dir, "policies"),
		HTTPListen:  "127.0.0.1:0",
		DecisionLog: DecisionLogConfig{Path: filepath.Join(dir, "decisions.jsonl")},
		JWT: JWTConfig{Providers: []jwt.ProviderConfig{{
			Name: "test", Issuer: testIssuer, Audiences: []string{testAudience},
			JWKSFile: filepath.Join(dir, "jwks.json"), RolesClaim: "roles",
		}}},
	}
	if mut != nil {
		mut(cfg)
	}
	h := startServer(t, cfg)
	h.dir, h.issuer = dir, iss
	return h
}

func (h *harness) token(sub string, roles ...string) string {
	h.t.Helper()
	tok, err := h.issuer.Mint(demoidp.Claims(testIssuer, sub, []string{testAudience}, roles, time.Hour))
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) writePolicy(name, body string) {
	h.t.Helper()
	p := filepath.Join(h.cfg.Policies, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// creq describes a CheckRequest the way an Envoy sidecar sends it.
type creq struct {
	method, path string
	token        string
	peer         string // source.principal (mTLS peer SAN)
	dest         string // destination.principal (default: orders' SPIFFE ID)
	headers      map[string]string
	ext          map[string]string
	rawHeaders   bool // encode_raw_headers: headers in header_map
}

func (c creq) proto() *authv3.CheckRequest {
	hdrs := map[string]string{":method": c.method, ":path": c.path, ":authority": "orders.demo", "x-request-id": "req-1"}
	for k, v := range c.headers {
		hdrs[k] = v
	}
	if c.token != "" {
		hdrs["authorization"] = "Bearer " + c.token
	}
	http := &authv3.AttributeContext_HttpRequest{Method: c.method, Path: c.path, Host: "orders.demo", Scheme: "https", Protocol: "HTTP/1.1"}
	if c.rawHeaders {
		hm := &corev3.HeaderMap{}
		for k, v := range hdrs {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
		http.HeaderMap = hm
	} else {
		http.Headers = hdrs
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Principal: c.peer,
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "10.1.2.3", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41000}}}},
		},
		Destination:       &authv3.AttributeContext_Peer{Principal: cmp.Or(c.dest, "spiffe://meshguard.local/ns/demo/sa/orders")},
		Request:           &authv3.AttributeContext_Request{Http: http},
		ContextExtensions: c.ext,
	}}
}

func (h *harness) check(c creq) *authv3.CheckResponse {
	h.t.Helper()
	return h.checkRaw(c.proto())
}

func (h *harness) checkRaw(req *authv3.CheckRequest) *authv3.CheckResponse {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := h.client.Check(ctx, req)
	if err != nil {
		h.t.Fatalf("Check: %v", err)
	}
	return resp
}

// result summarises a CheckResponse the way Envoy acts on it.
type result struct {
	status  int // 200 allowed, else the denied HTTP status
	headers map[string]string
	removed []string
	body    string
	meta    map[string]any
}

func summarize(resp *authv3.CheckResponse) result {
	r := result{headers: map[string]string{}, meta: resp.GetDynamicMetadata().AsMap()}
	if resp.GetStatus().GetCode() == int32(code.Code_OK) {
		r.status = 200
		for _, hv := range resp.GetOkResponse().GetHeaders() {
			r.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
		}
		r.removed = resp.GetOkResponse().GetHeadersToRemove()
		return r
	}
	d := resp.GetDeniedResponse()
	r.status = int(d.GetStatus().GetCode())
	for _, hv := range d.GetHeaders() {
		r.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
	}
	r.body = d.GetBody()
	return r
}

func (h *harness) decide(c creq) result {
	h.t.Helper()
	return summarize(h.check(c))
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 5*time.Second, what, cond)
}

// decisions reads the decision log written so far (after flushing it by
// waiting for n entries).
func (h *harness) decisions(n int) []decisionlog.Entry {
	h.t.Helper()
	var out []decisionlog.Entry
	eventually(h.t, "decision log entries", func() bool {
		out = out[:0]
		f, err := os.Open(h.logPath)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e decisionlog.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				h.t.Fatalf("decision log line is not JSON: %q", sc.Text())
			}
			out = append(out, e)
		}
		return len(out) >= n
	})
	return out
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.srv.AdminAddr() + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metricLine(body, prefix string) bool {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testDeps is what an in-process Authorizer needs, over the policies
// already written under dir/policies (and entities in dir/entities.json,
// if written): a config whose one JWT provider trusts a fresh issuer (its
// JWKS written to dir/jwks.json), the loaded policy store (with opts) and
// the verifier.
func testDeps(tb testing.TB, dir string, opts ...policy.StoreOption) (*Config, *policy.Store, *jwt.Verifier, *demoidp.Issuer) {
	tb.Helper()
	iss, err := demoidp.Generate("k1")
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := iss.JWKS()
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg := &Config{Policies: filepath.Join(dir, "policies"), JWT: JWTConfig{Providers: []jwt.ProviderConfig{{
		Name: "t", Issuer: testIssuer, Audiences: []string{testAudience}, JWKSFile: filepath.Join(dir, "jwks.json"), RolesClaim: "roles"}}}}
	if _, err := os.Stat(filepath.Join(dir, "entities.json")); err == nil {
		cfg.Entities = filepath.Join(dir, "entities.json")
	}
	cfg.applyDefaults()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := policy.NewStore(cfg.Policies, cfg.Entities, append([]policy.StoreOption{policy.WithLogger(log)}, opts...)...)
	if err := store.Reload(); err != nil {
		tb.Fatal(err)
	}
	v, err := jwt.New(cfg.JWT.Providers, jwt.Options{Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg, store, v, iss
}
