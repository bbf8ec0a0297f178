// Package authztest runs a real meshguard authorizer for tests outside the
// authorizer's own package: configuration from YAML as a user writes it,
// policies in a temporary directory, a demo token issuer, loopback
// listeners, and the gRPC client Envoy's API generates.
package authztest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/internal/demoidp"
)

// Issuer and Audience of the tokens Token mints.
const (
	Issuer   = "https://idp.meshguard.test"
	Audience = "orders"
)

// Authorizer is a running authorizer.
type Authorizer struct {
	t       testing.TB
	Dir     string // holds policies/, authz.yaml, jwks.json, decisions.jsonl
	Server  *extauthz.Server
	Client  authv3.AuthorizationClient
	Issuer  *demoidp.Issuer
	LogPath string
	stop    func()
}

// Start writes policies (paths relative to the policy directory) and an
// authorizer configuration with extra (more top-level YAML keys) into a
// temporary directory, and starts the authorizer. It trusts one token
// provider ("test", roles in the roles claim) and logs decisions to
// LogPath.
func Start(t testing.TB, policies map[string]string, extra string) *Authorizer {
	t.Helper()
	return StartIn(t, t.TempDir(), policies, extra)
}

// StartIn is Start in dir: a second authorizer over the same files (a replica).
func StartIn(t testing.TB, dir string, policies map[string]string, extra string) *Authorizer {
	t.Helper()
	a := &Authorizer{t: t, Dir: dir, LogPath: filepath.Join(dir, "decisions.jsonl")}
	for p, body := range policies {
		Write(t, filepath.Join(dir, "policies", p), body)
	}
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	iss, err := demoidp.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	Write(t, filepath.Join(dir, "jwks.json"), string(jwks))
	a.Issuer = iss
	cfgPath := filepath.Join(dir, "authz.yaml")
	if _, err := os.Stat(cfgPath); err != nil {
		Write(t, cfgPath, fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
policies: ./policies
decision_log: {path: %s, record_request: true}
jwt:
  providers:
    - {name: test, issuer: %q, audiences: [%s], jwks_file: ./jwks.json, roles_claim: roles}
%s`, a.LogPath, Issuer, Audience, extra))
	}
	cfg, err := extauthz.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	if a.Server, err = extauthz.NewServer(ctx, cfg, log); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := a.Server.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(a.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.Client = authv3.NewAuthorizationClient(conn)
	stopped := false
	a.stop = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		a.Server.Stop(sctx)
		cancel()
	}
	t.Cleanup(a.stop)
	return a
}

// Stop stops the authorizer, writing out its decision log.
func (a *Authorizer) Stop() { a.stop() }

// Token mints a token for sub with roles, valid for an hour.
func (a *Authorizer) Token(sub string, roles ...string) string {
	a.t.Helper()
	tok, err := a.Issuer.Mint(demoidp.Claims(Issuer, sub, []string{Audience}, roles, time.Hour))
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// Request is a CheckRequest as an Envoy sidecar sends it.
type Request struct {
	Method, Path string
	Token        string // bearer token
	Peer         string // the mTLS peer's URI SAN (source.principal)
	Headers      map[string]string
	Ext          map[string]string // context extensions
}

// Check sends r and returns Envoy's answer: the HTTP status it applies
// (200 when allowed) and the dynamic metadata.
func (a *Authorizer) Check(r Request) (int, map[string]any) {
	a.t.Helper()
	headers := map[string]string{":method": r.Method, ":path": r.Path, ":authority": "orders.demo", "x-request-id": "req-1"}
	for k, v := range r.Headers {
		headers[k] = v
	}
	if r.Token != "" {
		headers["authorization"] = "Bearer " + r.Token
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := a.Client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Principal: r.Peer, Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: r.Method, Path: r.Path, Host: "orders.demo", Scheme: "https", Headers: headers}},
		ContextExtensions: r.Ext,
	}})
	if err != nil {
		a.t.Fatalf("Check %s %s: %v", r.Method, r.Path, err)
	}
	meta := resp.GetDynamicMetadata().AsMap()
	if resp.GetStatus().GetCode() == int32(code.Code_OK) {
		return 200, meta
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), meta
}

// Write writes body to path, creating its directory.
func Write(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
