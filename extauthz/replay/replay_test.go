package replay_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/extauthz/replay"
	"github.com/meshguard/meshguard/internal/authztest"
	"github.com/meshguard/meshguard/internal/contract"
)

// The policies the log is recorded with: they read the path, a header, the
// query, a claim, the source address, a workload's attributes, roles from
// the token and from entities.json, and one of them fails to evaluate.
var recorded = map[string]string{
	"orders/p.cedar": `
@id("catalog") permit (principal, action == Action::"GET", resource) when { context.request.path like "/catalog*" };
@id("users") permit (principal is User, action == Action::"GET", resource) when { context.jwt.sub != "mallory" };
@id("staff") permit (principal in Role::"staff", action, resource);
@id("demo-ns") permit (principal is Workload, action == Action::"GET", resource) when { principal has namespace && principal.namespace == "demo" };
@id("tenant") forbid (principal, action, resource) when { context.request.headers has "x-tenant" && context.request.headers["x-tenant"] == "evil" };
@id("debug") forbid (principal, action, resource) when { context.request.query like "*debug=1*" };
@id("net") forbid (principal, action == Action::"DELETE", resource) unless { context.source.ip.isInRange(ip("10.0.0.0/8")) };
@id("broken") permit (principal, action == Action::"PATCH", resource) when { context.request.nope == 1 };
`,
	"orders-v2/p.cedar": `
@id("catalog") permit (principal, action == Action::"GET", resource) when { context.request.path like "/catalog*" };
@id("staff") permit (principal in Role::"staff", action, resource);
`,
}

const entities = `[{"uid": {"type": "User", "id": "carol"}, "parents": [{"type": "Role", "id": "staff"}], "attrs": {}}]`

// record runs traffic through a real authorizer and returns its log.
func record(t *testing.T) (*authztest.Authorizer, []byte) {
	t.Helper()
	dir := t.TempDir()
	authztest.Write(t, filepath.Join(dir, "entities.json"), entities)
	a := authztest.StartIn(t, dir, recorded, "entities: ./entities.json\nrequest_headers: [x-tenant, user-agent]\n")
	ext := map[string]string{extauthz.ExtService: "orders", extauthz.ExtPolicy: "orders", extauthz.ExtRoute: "orders/api"}
	shadowMode := map[string]string{extauthz.ExtService: "orders", extauthz.ExtPolicy: "orders", extauthz.ExtMode: "shadow"}
	canary := map[string]string{extauthz.ExtService: "orders", extauthz.ExtPolicy: "orders", extauthz.ExtRoute: "orders/api",
		extauthz.ExtCandidate: "orders-v2", extauthz.ExtStage: contract.StageCanary, extauthz.ExtCanary: "50", extauthz.ExtRollout: "r1"}
	for _, r := range []authztest.Request{
		{Method: "GET", Path: "/catalog/1", Ext: ext},
		{Method: "GET", Path: "/orders/1", Ext: ext},
		{Method: "GET", Path: "/orders/1", Token: a.Token("alice"), Ext: ext},
		{Method: "GET", Path: "/orders/1", Token: a.Token("mallory"), Ext: ext},
		{Method: "POST", Path: "/orders", Token: a.Token("sam", "staff"), Ext: ext},
		{Method: "POST", Path: "/orders", Token: a.Token("carol"), Ext: ext},
		{Method: "GET", Path: "/orders/1", Peer: "spiffe://meshguard.local/ns/demo/sa/web", Ext: ext},
		{Method: "GET", Path: "/orders/1", Peer: "spiffe://meshguard.local/ns/prod/sa/web", Ext: ext},
		{Method: "GET", Path: "/catalog/1", Headers: map[string]string{"x-tenant": "evil"}, Ext: ext},
		{Method: "GET", Path: "/catalog/1?debug=1", Ext: ext},
		{Method: "DELETE", Path: "/orders/1", Token: a.Token("sam", "staff"), Ext: ext},
		{Method: "PATCH", Path: "/orders/1", Ext: ext},
		{Method: "DELETE", Path: "/orders/2", Ext: shadowMode},
		{Method: "GET", Path: "/orders/1", Token: "forged.token.x", Ext: ext},
		{Method: "GET", Path: "/x", Ext: map[string]string{}},
	} {
		a.Check(r)
	}
	for i := range 40 {
		a.Check(authztest.Request{Method: "GET", Path: "/orders/1", Token: a.Token("user-" + string(rune('a'+i%26)) + string(rune('a'+i/26))), Ext: canary})
	}
	a.Stop()
	log, err := os.ReadFile(a.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return a, log
}

func store(t *testing.T, dir string) *policy.Store {
	t.Helper()
	s := policy.NewStore(filepath.Join(dir, "policies"), filepath.Join(dir, "entities.json"), policy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReplayingALogAgainstItsOwnPoliciesChangesNothing(t *testing.T) {
	a, log := record(t)
	var skipped []string
	sum, changes, err := replay.Replay(bytes.NewReader(log), store(t, a.Dir), replay.Options{Skipped: func(line int, why string) { skipped = append(skipped, why) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Changed() || len(changes) != 0 {
		t.Fatalf("self-replay changed decisions: %+v\n%+v", sum, changes)
	}
	// The forged token and the request without a route were never evaluated.
	if sum.Entries != 55 || sum.Skipped != 2 || sum.Replayed != 53 || sum.Same != 53 || len(skipped) != 2 {
		t.Fatalf("summary %+v, skipped %v", sum, skipped)
	}
}

func TestReplayAgainstACandidateReportsEachChange(t *testing.T) {
	a, log := record(t)
	sum, changes, err := replay.Replay(bytes.NewReader(log), store(t, a.Dir), replay.Options{Set: "orders-v2"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.AllowToDeny == 0 || sum.DenyToAllow == 0 || sum.Errors != 0 {
		t.Fatalf("summary %+v", sum)
	}
	var alice, debug *replay.Change
	for i, c := range changes {
		switch {
		case c.Principal == `User::"alice"`:
			alice = &changes[i]
		case c.Path == "/catalog/1" && c.Principal == `Anonymous::"anonymous"` && !c.Was:
			debug = &changes[i]
		}
	}
	// orders-v2 has no "users" permit: alice's read is now denied.
	if alice == nil || alice.Outcome != replay.AllowToDeny || strings.Join(alice.WasPolicies, ",") != "orders/p.cedar#users" || alice.Now {
		t.Fatalf("alice: %+v", alice)
	}
	// Nor the debug-query forbid: the query was recorded, so its removal shows.
	if debug == nil || debug.Outcome != replay.DenyToAllow || strings.Join(debug.NowPolicies, ",") != "orders-v2/p.cedar#catalog" {
		t.Fatalf("debug query: %+v (changes %+v)", debug, changes)
	}
}

func TestReplayReportsNewEvaluationErrors(t *testing.T) {
	a, log := record(t)
	authztest.Write(t, filepath.Join(a.Dir, "policies", "orders-v3", "p.cedar"),
		`@id("all") permit (principal, action, resource) when { context.request.missing == 1 };`)
	sum, changes, err := replay.Replay(bytes.NewReader(log), store(t, a.Dir), replay.Options{Set: "orders-v3"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != sum.Replayed || len(changes) != sum.Replayed || changes[0].Errors[0].PolicyID != "orders-v3/p.cedar#all" {
		t.Fatalf("summary %+v, first change %+v", sum, changes[0])
	}
}

func TestReplayRefusesWhatIsNotADecisionLog(t *testing.T) {
	a, log := record(t)
	for name, in := range map[string]string{
		"garbage line":   string(log) + "not json\n",
		"line too long":  `{"decision_id":"` + strings.Repeat("x", replay.MaxLine) + `"}`,
		"broken request": `{"decision_id":"d","mode":"enforce","allowed":true,"status":200,"reason":"allowed","duration_us":1,"request":{"principal":{"uid":{"type":"User","id":"a"}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := replay.Replay(strings.NewReader(in), store(t, a.Dir), replay.Options{}); err == nil || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
