package extauthz

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/internal/demoidp"
)

// The quickstart's decisions, as docs/policy-model.md promises them.
func TestQuickstartDecisions(t *testing.T) {
	cfg, err := LoadConfig("../examples/quickstart/authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DecisionLog.Path = filepath.Join(t.TempDir(), "decisions.jsonl")
	h := startServer(t, cfg)
	iss, err := demoidp.Load("../examples/quickstart/demo-issuer.jwk")
	if err != nil {
		t.Fatal(err)
	}
	tok := func(sub string, roles ...string) string {
		s, err := iss.Mint(demoidp.Claims("https://idp.meshguard.example", sub, []string{"meshguard-demo"}, roles, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	eventually(t, "ready", h.srv.Authz.Ready)

	orders := map[string]string{ExtService: "orders", ExtPolicy: "orders", ExtRoute: "orders/api"}
	payments := map[string]string{ExtService: "payments", ExtPolicy: "payments", ExtRoute: "payments/charge"}
	frontendWL := "spiffe://meshguard.local/ns/demo/sa/frontend"
	ordersWL := "spiffe://meshguard.local/ns/demo/sa/orders"

	cases := []struct {
		name      string
		req       creq
		status    int
		principal string
		policy    string
	}{
		{"anonymous reads the catalog", creq{method: "GET", path: "/catalog/books?page=2", ext: orders}, 200, `Anonymous::"anonymous"`, "orders/read.cedar#public-catalog"},
		{"anonymous cannot read orders", creq{method: "GET", path: "/orders/42", ext: orders}, 403, "", ""},
		{"a signed-in user reads orders", creq{method: "GET", path: "/orders/42", token: tok("alice"), ext: orders}, 200, `User::"alice"`, "orders/read.cedar#users-read"},
		{"a user without a role cannot write", creq{method: "POST", path: "/orders", token: tok("alice"), ext: orders}, 403, "", ""},
		{"staff may write", creq{method: "POST", path: "/orders", token: tok("sam", "staff"), ext: orders}, 200, `User::"sam"`, "orders/write.cedar#staff-write"},
		{"admin is staff through entities.json", creq{method: "DELETE", path: "/orders/42", token: tok("dave", "admin"), ext: orders}, 200, `User::"dave"`, "orders/write.cedar#staff-write"},
		{"a suspended admin is forbidden", creq{method: "GET", path: "/orders/42", token: tok("carol", "admin"), ext: orders}, 403, "", "orders/write.cedar#suspended"},
		{"the frontend workload places orders", creq{method: "POST", path: "/orders", peer: frontendWL, ext: orders}, 200, `Workload::"` + frontendWL + `"`, "orders/write.cedar#frontend-places-orders"},
		{"the frontend workload cannot delete", creq{method: "DELETE", path: "/orders/1", peer: frontendWL, ext: orders}, 403, "", ""},
		{"orders charges payments", creq{method: "POST", path: "/charge", peer: ordersWL, ext: payments}, 200, `Workload::"` + ordersWL + `"`, "payments/payments.cedar#orders-charges"},
		{"frontend cannot charge payments", creq{method: "POST", path: "/charge", peer: frontendWL, ext: payments}, 403, "", ""},
		{"a user token wins over the workload identity", creq{method: "POST", path: "/charge", peer: ordersWL, token: tok("alice"), ext: payments}, 403, "", ""},
		{"health is public in the default set", creq{method: "GET", path: "/healthz", ext: map[string]string{ExtService: "payments"}}, 200, `Anonymous::"anonymous"`, "default/health.cedar#health"},
		{"forged token is 401", creq{method: "GET", path: "/orders/1", token: tok("alice")[:40] + "x.y.z", ext: orders}, 401, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.decide(tc.req)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d (meta %v)", r.status, tc.status, r.meta)
			}
			if tc.principal != "" && r.headers["x-meshguard-principal"] != tc.principal {
				t.Fatalf("principal header = %q, want %q", r.headers["x-meshguard-principal"], tc.principal)
			}
			if tc.policy != "" {
				pol, _ := r.meta["policies"].([]any)
				if len(pol) == 0 || pol[0] != tc.policy {
					t.Fatalf("determining policies = %v, want %s", pol, tc.policy)
				}
			}
			if r.status != 200 && !strings.Contains(r.body, `"decision_id"`) {
				t.Fatalf("deny body %q lacks a decision id", r.body)
			}
		})
	}
}
