package extauthz

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/contract"
)

// Policies for rollout tests: the current set "orders" allows GET to
// anyone and DELETE to workload w-1; the candidate "orders-v2" denies
// GET /private, allows DELETE to every workload, and errors on
// /broken (a record attribute that does not exist).
var rolloutPolicies = map[string]string{
	"orders/p.cedar": `
@id("get") permit(principal, action == Action::"GET", resource);
@id("delete-w1") permit(principal == Workload::"spiffe://meshguard.local/ns/demo/sa/w-1", action == Action::"DELETE", resource);
`,
	"orders-v2/p.cedar": `
@id("get") permit(principal, action == Action::"GET", resource) unless { context.request.path == "/private" };
@id("delete") permit(principal is Workload, action == Action::"DELETE", resource);
@id("broken") permit(principal, action == Action::"GET", resource) when { context.request.path == "/broken" && context.request.nope == "x" };
`,
}

func rolloutExt(stage, canary string) map[string]string {
	m := ext(ExtCandidate, "orders-v2", ExtStage, stage, ExtRollout, "step-1")
	if canary != "" {
		m[ExtCanary] = canary
	}
	return m
}

func workload(i int) string { return fmt.Sprintf("spiffe://meshguard.local/ns/demo/sa/w-%d", i) }

func TestRolloutExtensionsAreCheckedAndDenyWhenInconsistent(t *testing.T) {
	h := newHarness(t, rolloutPolicies, nil)
	for _, c := range []struct {
		name string
		ext  map[string]string
	}{
		{"stage without candidate", ext(ExtStage, "shadow")},
		{"canary share without candidate", ext(ExtCanary, "10")},
		{"step id without candidate", ext(ExtRollout, "x")},
		{"unknown stage", ext(ExtCandidate, "orders-v2", ExtStage, "enforce")},
		{"missing stage", ext(ExtCandidate, "orders-v2")},
		{"canary without a share", ext(ExtCandidate, "orders-v2", ExtStage, "canary")},
		{"share at the shadow stage", ext(ExtCandidate, "orders-v2", ExtStage, "shadow", ExtCanary, "10")},
		{"share over 100", rolloutExt("canary", "100.01")},
		{"negative share", rolloutExt("canary", "-1")},
		{"exponent", rolloutExt("canary", "1e1")},
		{"three decimals", rolloutExt("canary", "1.125")},
		{"trailing dot", rolloutExt("canary", "10.")},
		{"no integer part", rolloutExt("canary", ".5")},
		{"percent sign", rolloutExt("canary", "10%")},
		{"invalid candidate name", ext(ExtCandidate, "../x", ExtStage, "shadow")},
		{"candidate beside a meshguard.shadow set", ext(ExtCandidate, "orders-v2", ExtStage, "shadow", ExtShadow, "orders-v2")},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.decide(creq{method: "GET", path: "/x", ext: c.ext})
			if r.status != 403 || r.meta["reason"] != ReasonBadRoute {
				t.Fatalf("status %d reason %v, want 403 %s", r.status, r.meta["reason"], ReasonBadRoute)
			}
		})
	}
}

// At the shadow stage the current set is enforced and each request is
// counted by how the candidate would have decided it.
func TestRolloutShadowCountsEachOutcome(t *testing.T) {
	h := newHarness(t, rolloutPolicies, nil)
	shadow := rolloutExt(contract.StageShadow, "")
	for _, c := range []struct {
		method, path, peer string
		status             int
		outcome            string
	}{
		{"GET", "/public", "", 200, OutcomeSame},
		{"GET", "/private", "", 200, OutcomeAllowToDeny},         // the candidate would deny; the current set is enforced
		{"DELETE", "/o/1", workload(2), 403, OutcomeDenyToAllow}, // the candidate would allow
		{"DELETE", "/o/1", workload(1), 200, OutcomeSame},
		{"GET", "/broken", "", 200, OutcomeError},
		{"POST", "/o", "", 403, OutcomeSame},
	} {
		r := h.decide(creq{method: c.method, path: c.path, peer: c.peer, ext: shadow})
		if r.status != c.status || r.meta["policy_set"] != "orders" {
			t.Fatalf("%s %s: status %d meta %v, want %d with the current set enforced", c.method, c.path, r.status, r.meta, c.status)
		}
	}
	entries := h.decisions(6)
	if ro := entries[1].Rollout; ro == nil || ro.Outcome != OutcomeAllowToDeny || ro.Enforced != "orders" || !ro.CurrentAllowed || ro.CandidateAllowed || ro.Revision != "step-1" {
		t.Fatalf("decision log rollout block: %+v", entries[1].Rollout)
	}
	if ro := entries[4].Rollout; ro == nil || ro.Outcome != OutcomeError || ro.CandidateErrors != 1 {
		t.Fatalf("an erroring candidate is logged as an error: %+v", entries[4].Rollout)
	}
	st := h.rolloutSteps()
	if len(st) != 1 {
		t.Fatalf("want one step, got %+v", st)
	}
	s := st[0]
	if s.Route != "orders/api" || s.Revision != "step-1" || s.PolicySet != "orders" || s.Candidate != "orders-v2" || s.Stage != "shadow" ||
		s.Requests != 6 || s.Same != 3 || s.AllowToDeny != 1 || s.DenyToAllow != 1 || s.Errors != 1 || s.CandidateEnforced != 0 {
		t.Fatalf("counts: %+v", s)
	}
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`meshguard_authz_rollout_decisions_total{candidate="orders-v2",outcome="same",route="orders/api",set="orders"} 3`,
		`meshguard_authz_rollout_decisions_total{candidate="orders-v2",outcome="allow_to_deny",route="orders/api",set="orders"} 1`,
		`meshguard_authz_rollout_decisions_total{candidate="orders-v2",outcome="deny_to_allow",route="orders/api",set="orders"} 1`,
		`meshguard_authz_rollout_decisions_total{candidate="orders-v2",outcome="error",route="orders/api",set="orders"} 1`,
	} {
		if !metricLine(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A canary enforces the candidate for its share of callers, the same
// callers every time and on every replica, and the current set for the
// rest.
func TestRolloutCanaryEnforcesTheCandidateForAStableShare(t *testing.T) {
	h := newHarness(t, rolloutPolicies, nil)
	replica := startServer(t, &Config{Policies: h.cfg.Policies})
	canary := rolloutExt(contract.StageCanary, "10")
	const n = 2000
	in := map[string]bool{}
	for i := range n {
		// DELETE: the candidate allows every workload, the current set only w-1.
		r := h.decide(creq{method: "DELETE", path: "/o/1", peer: workload(i), ext: canary})
		// Envoy's metadata names the set that decided.
		enforced := r.meta["policy_set"] == "orders-v2"
		if enforced != (r.status == 200) && i != 1 {
			t.Fatalf("caller %d: status %d but decided by %v", i, r.status, r.meta["policy_set"])
		}
		in[workload(i)] = enforced
	}
	share := 0
	for _, e := range in {
		if e {
			share++
		}
	}
	if share < n*7/100 || share > n*13/100 {
		t.Fatalf("candidate enforced for %d of %d callers, want 10 %% ± 3 %%", share, n)
	}
	for i := range n {
		for _, a := range []*harness{h, replica} {
			r := a.decide(creq{method: "DELETE", path: "/o/2", peer: workload(i), ext: canary})
			if (r.meta["policy_set"] == "orders-v2") != in[workload(i)] {
				t.Fatalf("caller %d changed sides on a repeat", i)
			}
		}
	}
	st := h.rolloutSteps()
	if len(st) != 1 || st[0].Requests != 2*n || st[0].CandidateEnforced != uint64(2*share) || st[0].Canary != "10" {
		t.Fatalf("counts: %+v (share %d)", st, share)
	}
	// A larger share keeps every caller the smaller one had.
	wider := rolloutExt(contract.StageCanary, "50")
	for w, e := range in {
		if r := h.decide(creq{method: "DELETE", path: "/o/1", peer: w, ext: wider}); e && r.meta["policy_set"] != "orders-v2" {
			t.Fatalf("%s left the candidate's side when the share grew", w)
		}
	}
}

// A candidate that is not loaded cannot decide: the callers in the
// canary's share are denied (fail closed), the rest get the current set,
// and every request counts as an error.
func TestRolloutCanaryWithAMissingCandidateFailsClosed(t *testing.T) {
	h := newHarness(t, rolloutPolicies, nil)
	missing := ext(ExtCandidate, "nope", ExtStage, contract.StageCanary, ExtCanary, "50", ExtRollout, "s")
	var denied, allowed int
	for i := range 200 {
		r := h.decide(creq{method: "GET", path: "/x", peer: workload(i), ext: missing})
		switch {
		case r.meta["policy_set"] == "nope":
			if r.status != 403 || r.meta["reason"] != ReasonUnknownSet {
				t.Fatalf("caller %d in the share: status %d reason %v", i, r.status, r.meta["reason"])
			}
			denied++
		default:
			if r.status != 200 {
				t.Fatalf("caller %d outside the share: status %d", i, r.status)
			}
			allowed++
		}
	}
	if denied == 0 || allowed == 0 {
		t.Fatalf("denied %d, allowed %d: want both sides", denied, allowed)
	}
	if st := h.rolloutSteps(); len(st) != 1 || st[0].Errors != 200 {
		t.Fatalf("counts: %+v", st)
	}
}

// A share of 100 enforces the candidate for everybody, 0 for nobody.
func TestRolloutCanaryEdges(t *testing.T) {
	h := newHarness(t, rolloutPolicies, nil)
	for share, want := range map[string]bool{"0": false, "100": true} {
		for i := range 50 {
			r := h.decide(creq{method: "GET", path: "/x", peer: workload(i), ext: rolloutExt(contract.StageCanary, share)})
			if (r.meta["policy_set"] == "orders-v2") != want {
				t.Fatalf("share %s, caller %d: decided by %v", share, i, r.meta["policy_set"])
			}
		}
	}
}

func TestRolloutStepsAreBounded(t *testing.T) {
	tab := newRolloutTable(nil)
	for i := range maxRolloutSteps + 10 {
		r := Route{ID: "r", PolicySet: "a", Candidate: "b", Stage: "shadow", Rollout: fmt.Sprint(i)}
		tab.count(&r, &RolloutOutcome{})
	}
	st := tab.status()
	if len(st.Steps) != maxRolloutSteps {
		t.Fatalf("%d steps kept, want %d", len(st.Steps), maxRolloutSteps)
	}
	for _, s := range st.Steps {
		if s.Revision == "0" || s.Revision == "9" {
			t.Fatalf("the oldest steps must go first; %q is still there", s.Revision)
		}
	}
}

func (h *harness) rolloutSteps() []RolloutStepSeen {
	h.t.Helper()
	code, body := h.get("/v1/rollouts")
	if code != 200 {
		h.t.Fatalf("/v1/rollouts: %d %s", code, body)
	}
	var st RolloutStatus
	if err := json.NewDecoder(strings.NewReader(body)).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	if st.Instance == "" {
		h.t.Fatal("no instance id")
	}
	return st.Steps
}
