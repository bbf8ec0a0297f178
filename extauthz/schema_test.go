package extauthz

import (
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/meshguard/meshguard/extauthz/schema"
	"github.com/meshguard/meshguard/internal/demoidp"
)

// The built-in schema describes what the authorizer really builds: every
// request it records (each kind of principal, every context record filled)
// fits the schema, and so does its principal entity. The one exception is
// the aud claim, which the schema leaves out (a string or an array,
// depending on the issuer).
func TestTheRequestsTheAuthorizerBuildsFitTheSchema(t *testing.T) {
	headers := []string{"user-agent", "x-tenant"}
	h := newHarness(t, map[string]string{"orders/all.cedar": `permit (principal, action, resource);`}, func(c *Config) {
		c.DecisionLog.RecordRequest = true
		c.RequestHeaders = headers
	})
	claims := demoidp.Claims(testIssuer, "alice", []string{testAudience}, []string{"staff"}, time.Hour)
	claims["email"], claims["email_verified"], claims["groups"], claims["jti"], claims["scope"] = "a@example.com", true, []string{"ops"}, "j-1", "read write"
	tok, err := h.issuer.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"meshguard.service": "orders", "meshguard.policy": "orders", "meshguard.route": "orders/read"}
	reqs := []creq{
		{method: "GET", path: "/orders/1?page=2", token: tok, headers: map[string]string{"user-agent": "t", "x-tenant": "acme"}, ext: ext},
		{method: "POST", path: "/orders", peer: "spiffe://meshguard.local/ns/demo/sa/frontend", ext: ext},
		{method: "DELETE", path: "/orders/1", peer: "spiffe://meshguard.local/batch/nightly", ext: ext},
		{method: "PATCH", path: "/", ext: ext},
	}
	for _, r := range reqs {
		if d := h.decide(r); d.status != 200 {
			t.Fatalf("%s %s: %d", r.method, r.path, d.status)
		}
	}
	sc := schema.Builtin(schema.Options{Headers: headers})
	kinds := map[cedar.EntityType]bool{}
	for _, e := range h.decisions(len(reqs)) {
		rec := e.Request
		if rec == nil {
			t.Fatalf("decision %s recorded no request", e.DecisionID)
		}
		principal := rec.Principal
		principal.Attributes = withoutAud(principal.Attributes)
		ctx := rec.Context
		if j, ok := ctx.Get("jwt"); ok {
			m := ctx.Map()
			m["jwt"] = withoutAud(j.(cedar.Record))
			ctx = cedar.NewRecord(m)
		}
		req := cedar.Request{Principal: principal.UID, Action: cedar.EntityUID(rec.Action), Resource: cedar.EntityUID(rec.Resource), Context: ctx}
		if err := sc.CheckRequest(req); err != nil {
			t.Errorf("%s %s: the request does not fit the schema: %v", e.Method, e.Path, err)
		}
		if err := sc.CheckEntity(principal); err != nil {
			t.Errorf("%s %s: the principal does not fit the schema: %v", e.Method, e.Path, err)
		}
		kinds[principal.UID.Type] = true
	}
	if len(kinds) != 3 {
		t.Fatalf("principal kinds checked: %v, want User, Workload and Anonymous", kinds)
	}
}

func withoutAud(r cedar.Record) cedar.Record {
	m := r.Map()
	delete(m, "aud")
	return cedar.NewRecord(m)
}

// With strict_schema, a set that does not type-check is refused like one
// that does not parse: requests for it are denied, and the status says
// which file and line.
func TestStrictSchemaRefusesASetThatDoesNotTypeCheck(t *testing.T) {
	h := newHarness(t, map[string]string{
		"orders/read.cedar": "@id(\"read\")\npermit (principal is Workload, action, resource)\nwhen { principal.namepsace == \"demo\" };",
		"other/ok.cedar":    `permit (principal, action, resource);`,
	}, func(c *Config) { c.StrictSchema = true })
	ext := func(set string) map[string]string {
		return map[string]string{"meshguard.service": set, "meshguard.policy": set}
	}
	peer := "spiffe://meshguard.local/ns/demo/sa/frontend"
	if d := h.decide(creq{method: "GET", path: "/", peer: peer, ext: ext("orders")}); d.status != 403 {
		t.Fatalf("a request for the refused set: %d, want 403", d.status)
	}
	if d := h.decide(creq{method: "GET", path: "/", peer: peer, ext: ext("other")}); d.status != 200 {
		t.Fatalf("a request for a set that type-checks: %d, want 200", d.status)
	}
	_, body := h.get("/v1/status")
	if !strings.Contains(body, "read.cedar:1:1: policy orders/read.cedar#read: attribute `namepsace` on entity type `Workload` not found") {
		t.Fatalf("status does not say where:\n%s", body)
	}
}
