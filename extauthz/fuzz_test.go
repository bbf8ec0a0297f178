package extauthz

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"

	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/demoidp"
)

// FuzzDecide feeds arbitrary CheckRequests through the whole decision path.
// The policies allow only verified users, and the fuzzer cannot forge a
// signature, so any enforced allow is a bug. It must never panic either.
func FuzzDecide(f *testing.F) {
	dir := f.TempDir()
	pol := `permit(principal is User, action, resource);`
	for _, p := range []string{"p.cedar", "orders/p.cedar"} {
		path := filepath.Join(dir, "policies", p)
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(pol), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	// The decision cache on, as a server runs.
	cfg, store, v, _ := testDeps(f, dir, policy.WithResultCache(DefaultDecisionCacheSize))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := NewAuthorizer(cfg, store, v, nil, nil, log)

	// Seeds: requests as Envoy sends them, one with a token from an untrusted issuer.
	other, _ := demoidp.Generate("k1")
	forged, _ := other.Mint(demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"admin"}, 3600e9))
	for _, c := range []creq{
		{method: "GET", path: "/", ext: ordersExt},
		{method: "POST", path: "/o?x=1", token: forged, ext: ordersExt},
		{method: "GET", path: "/", peer: "spiffe://td/ns/a/sa/b", ext: ext(ExtMode, "enforce", ExtAction, "x")},
		{method: "GET", path: "/", rawHeaders: true, headers: map[string]string{"authorization": "Bearer a.b.c"}, ext: ordersExt},
	} {
		b, _ := proto.Marshal(c.proto())
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var req authv3.CheckRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return
		}
		attrs, err := FromCheckRequest(&req)
		if err != nil {
			return
		}
		d := a.Decide(context.Background(), attrs)
		if d.Allow != (d.Status == 200) {
			t.Fatalf("allow=%v with status %d", d.Allow, d.Status)
		}
		if d.Status != 200 && d.Status != 401 && d.Status != 403 {
			t.Fatalf("status %d", d.Status)
		}
		if d.Allow && d.Mode != ModeShadow {
			t.Fatalf("garbage allowed in enforce mode: reason %s principal %s", d.Reason, d.Principal)
		}
		resp := CheckResponse(&d, &cfg.Response)
		if (resp.GetStatus().GetCode() == int32(code.Code_OK)) != d.Allow {
			t.Fatal("CheckResponse status disagrees with the decision")
		}
	})
}
