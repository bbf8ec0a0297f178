package extauthz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/identity/devca"
)

// jwtSVIDIssuer signs JWT-SVIDs for a trust domain and publishes its JWT bundle.
type jwtSVIDIssuer struct {
	key *ecdsa.PrivateKey
	kid string
}

func (i *jwtSVIDIssuer) bundle(t *testing.T, dir string) string {
	t.Helper()
	doc := map[string]any{"keys": []jose.JSONWebKey{{Key: &i.key.PublicKey, KeyID: i.kid, Use: "jwt-svid"}}}
	b, _ := json.Marshal(doc)
	p := filepath.Join(dir, "jwt-bundle.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (i *jwtSVIDIssuer) sign(t *testing.T, sub string, aud []string, exp time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: i.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", i.kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(signer).Claims(josejwt.Claims{Subject: sub, Audience: aud, Expiry: josejwt.NewNumericDate(exp)}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newJWTSVIDIssuer(kid string) *jwtSVIDIssuer {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &jwtSVIDIssuer{key: k, kid: kid}
}

func TestJWTSVIDPrincipal(t *testing.T) {
	iss := newJWTSVIDIssuer("spire-1")
	dir := t.TempDir()
	bundle := iss.bundle(t, dir)
	h := newHarness(t, map[string]string{"orders/p.cedar": `
@id("batch") permit(principal == Workload::"spiffe://meshguard.local/ns/jobs/sa/batch", action, resource == Service::"orders");`},
		func(c *Config) {
			c.JWTSVID = &JWTSVIDConfig{Audiences: []string{"meshguard-authz"}, Bundles: map[string]string{"meshguard.local": bundle}}
		})
	batch := "spiffe://meshguard.local/ns/jobs/sa/batch"
	hour := time.Now().Add(time.Hour)
	rogue := newJWTSVIDIssuer("spire-1")
	cases := []struct {
		name   string
		token  string
		status int
		prin   string
	}{
		{"valid JWT-SVID", iss.sign(t, batch, []string{"meshguard-authz"}, hour), 200, `Workload::"` + batch + `"`},
		{"audience of another service", iss.sign(t, batch, []string{"payments"}, hour), 401, ""},
		{"expired", iss.sign(t, batch, []string{"meshguard-authz"}, time.Now().Add(-time.Minute)), 401, ""},
		{"signed by an untrusted key", rogue.sign(t, batch, []string{"meshguard-authz"}, hour), 401, ""},
		{"foreign trust domain", iss.sign(t, "spiffe://evil.org/ns/jobs/sa/batch", []string{"meshguard-authz"}, hour), 401, ""},
		{"another workload", iss.sign(t, "spiffe://meshguard.local/ns/jobs/sa/other", []string{"meshguard-authz"}, hour), 403, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.decide(creq{method: "GET", path: "/o", token: tc.token, ext: ordersExt})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%v)", r.status, tc.status, r.meta)
			}
			if tc.prin != "" && r.headers["x-meshguard-principal"] != tc.prin {
				t.Fatalf("principal %q", r.headers["x-meshguard-principal"])
			}
		})
	}
}

func TestAuthorizerOverMTLS(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("meshguard.local")
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	authzID := spiffeid.RequireFromString("spiffe://meshguard.local/meshguard/authz")
	s, _ := ca.Issue(authzID, time.Hour)
	for name, data := range map[string][]byte{"cert.pem": s.CertPEM, "key.pem": s.KeyPEM, "bundle.pem": ca.BundlePEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, basePolicies, func(c *Config) {
		c.TLS = &TLSConfig{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), BundleFile: filepath.Join(dir, "bundle.pem"),
			Policy: identity.Policy{IDs: []string{"spiffe://meshguard.local/ns/demo/sa/orders"}}}
	})
	check := func(creds grpc.DialOption) error {
		conn, err := grpc.NewClient(h.srv.GRPCAddr(), creds)
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = authv3.NewAuthorizationClient(conn).Check(ctx, creq{method: "GET", path: "/catalog", ext: ordersExt}.proto())
		return err
	}
	sidecar, _ := identity.NewDevCASource(ca, spiffeid.RequireFromString("spiffe://meshguard.local/ns/demo/sa/orders"), time.Hour)
	pin := identity.Policy{IDs: []string{authzID.String()}}
	if err := check(grpc.WithTransportCredentials(credentials.NewTLS(identity.ClientTLS(sidecar, sidecar, pin)))); err != nil {
		t.Fatalf("allowed sidecar over mTLS: %v", err)
	}
	other, _ := identity.NewDevCASource(ca, spiffeid.RequireFromString("spiffe://meshguard.local/ns/demo/sa/payments"), time.Hour)
	if err := check(grpc.WithTransportCredentials(credentials.NewTLS(identity.ClientTLS(other, other, pin)))); err == nil {
		t.Fatal("a workload outside allowed_ids reached the authorizer")
	}
	if err := check(grpc.WithTransportCredentials(insecure.NewCredentials())); err == nil {
		t.Fatal("a plaintext client reached the authorizer")
	}
}
